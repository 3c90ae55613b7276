"""D33: versioned keys with an activation time, and sealing keys rotating without losing the past."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import pytest
from biostream.codec import default_codec
from biostream.contract import Inbound
from biostream.contracts import DEAD_LETTER
from biostream.envelopes import Envelopes, dead_letter_sealer
from biostream.keyfiles import load_key_ring
from biostream.keyring import KeyRing, KeyRingError, KeyVersion
from biostream.sealing import Sealer, SealError, SealingKeys
from biostream.settings import ServiceSettings
from biostream.topics import Topics
from pydantic import SecretStr

ACTIVATION = dt.datetime(2027, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=9)))
T = int(ACTIVATION.timestamp() * 1000)


def hex_key() -> bytes:
    return secrets.token_hex(32).encode()


def key_file(directory: Path, name: str, material: bytes, activates: str | None = None) -> None:
    path = directory / f"{name}.key"
    path.write_bytes(material)
    path.chmod(0o600)
    if activates is not None:
        (directory / f"{name}.activates").write_text(activates)


def test_the_version_in_force_is_the_newest_whose_activation_time_has_come() -> None:
    ring = KeyRing("rrn", [KeyVersion("k1", b"a"), KeyVersion("k2", b"b", T),
                           KeyVersion("k3", b"c", T + 60_000)])  # fmt: skip
    assert ring.active_at(T - 1).version == "k1"
    assert ring.active_at(T).version == "k2"
    assert ring.active_at(T + 59_999).version == "k2"
    assert ring.active_at(T + 60_000).version == "k3"


def test_an_input_older_than_every_activation_is_handled_under_the_first_version() -> None:
    ring = KeyRing("rrn", [KeyVersion("k2", b"b", T), KeyVersion("k3", b"c", T + 1)])
    assert ring.active_at(0).version == "k2"


def test_a_later_version_may_not_activate_before_an_earlier_one() -> None:
    with pytest.raises(KeyRingError, match="k2 activates before k1"):
        KeyRing("rrn", [KeyVersion("k1", b"a", T), KeyVersion("k2", b"b", T - 1)])


def test_a_directory_holds_the_versions_and_their_activation_times(tmp_path: Path) -> None:
    key_file(tmp_path, "rrn.k1", hex_key())
    key_file(tmp_path, "rrn.k2", hex_key(), ACTIVATION.isoformat())
    key_file(tmp_path, "person.k1", hex_key())  # another key's files are not this key's
    ring = load_key_ring("rrn", tmp_path, None, None)
    assert [(v.version, v.activates_at_ms) for v in ring.versions] == [("k1", 0), ("k2", T)]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"rrn.one.key": None}, "key versions are k1, k2"),
        ({"rrn.k1.key": None, "rrn.k2.activates": "2027-01-01T00:00:00Z"}, "without its key"),
        ({"rrn.k1.key": None, "rrn.k1.activates": "2027-01-01T00:00:00"}, "needs its zone"),
        ({"rrn.k1.key": None, "rrn.k1.activates": "next monday"}, "not an RFC 3339 time"),
        ({"person.k1.key": None}, "no rrn.k<N>.key file"),
    ],
)
def test_a_badly_laid_out_directory_is_refused_with_the_reason(
    tmp_path: Path, files: dict[str, str | None], message: str
) -> None:
    for name, text in files.items():
        if name.endswith(".key"):
            key_file(tmp_path, name.removesuffix(".key"), hex_key())
        else:
            (tmp_path / name).write_text(text or "")
    with pytest.raises(KeyRingError, match=message):
        load_key_ring("rrn", tmp_path, None, None)


def test_a_key_file_others_may_read_is_refused_and_its_value_is_not_in_the_error(
    tmp_path: Path,
) -> None:
    material = hex_key()
    key_file(tmp_path, "rrn.k1", material)
    (tmp_path / "rrn.k1.key").chmod(0o644)
    with pytest.raises(KeyRingError, match="accessible to group or others") as refused:
        load_key_ring("rrn", tmp_path, None, None)
    assert material.decode() not in str(refused.value)


def test_the_single_key_of_before_is_version_k1_and_not_both_ways_at_once(tmp_path: Path) -> None:
    single = SecretStr(hex_key().decode())
    ring = load_key_ring("rrn", None, single, None)
    assert [(v.version, v.activates_at_ms) for v in ring.versions] == [("k1", 0)]
    key_file(tmp_path, "rrn.k1", hex_key())
    with pytest.raises(KeyRingError, match="not both"):
        load_key_ring("rrn", tmp_path, single, None)
    with pytest.raises(KeyRingError, match="no key configured"):
        load_key_ring("rrn", None, None, None)


def rotating_keys() -> tuple[SealingKeys, bytes, bytes]:
    old, new = hex_key(), hex_key()
    return SealingKeys(KeyRing("rrn", [KeyVersion("k1", old), KeyVersion("k2", new, T)])), old, new


def test_values_are_sealed_under_the_version_in_force_at_their_input_and_all_still_open() -> None:
    keys, old, new = rotating_keys()
    before, after = keys.for_input(T - 1), keys.for_input(T)
    assert (before.key_id, after.key_id) == (Sealer(old).key_id, Sealer(new).key_id)
    sealed = [(s.seal(b"9710131019901", "r1"), s.key_id) for s in (before, after)]
    assert [keys.unseal(value, "r1", key_id) for value, key_id in sealed] == [b"9710131019901"] * 2
    # A value written before key ids were recorded is tried under each held version.
    assert keys.unseal(sealed[1][0], "r1", None) == b"9710131019901"


def test_a_value_sealed_under_a_key_no_longer_held_fails_naming_the_key_id_only() -> None:
    keys, _old, _new = rotating_keys()
    retired = Sealer(hex_key())
    with pytest.raises(SealError, match=f"key id {retired.key_id}, which is not held"):
        keys.unseal(retired.seal(b"x", "r1"), "r1", retired.key_id)
    with pytest.raises(SealError):
        keys.unseal(retired.seal(b"x", "r1"), "r1", None)


def test_dead_letters_on_both_sides_of_a_rotation_name_their_key_and_all_open(
    tmp_path: Path,
) -> None:
    old, new = hex_key(), hex_key()
    key_file(tmp_path, "dead-letter.k1", old)
    key_file(tmp_path, "dead-letter.k2", new, ACTIVATION.isoformat())
    keys = dead_letter_sealer(ServiceSettings.model_validate({"dead_letter_keys_dir": tmp_path}))
    assert keys is not None
    codec = default_codec()
    envelopes = Envelopes("ingest", "User:svc-ingest", codec, Topics(), keys)
    now = dt.datetime.now(dt.UTC)
    letters = [
        codec.decode(
            envelopes.dead_letter(
                Inbound("feed.H001", 0, offset, None, b"MSH|canary-%d" % offset, (), at),
                "HL7_INVALID", "bad", now,
            ).value,
            DEAD_LETTER,
        )
        for offset, at in enumerate((T - 1000, T, T + 1000))
    ]  # fmt: skip
    assert [letter["seal_key_id"] for letter in letters] == [
        Sealer(old).key_id, Sealer(new).key_id, Sealer(new).key_id
    ]  # fmt: skip
    opened = [
        keys.unseal(letter["sealed_original"], letter["dead_letter_id"], letter["seal_key_id"])
        for letter in letters
    ]
    assert opened == [b"MSH|canary-0", b"MSH|canary-1", b"MSH|canary-2"]


def test_the_versions_in_use_are_the_one_in_force_and_the_older_ones_newest_first() -> None:
    ring = KeyRing("rrn", [KeyVersion("k1", b"a"), KeyVersion("k2", b"b", T),
                           KeyVersion("k3", b"c", T + 60_000)])  # fmt: skip
    assert [v.version for v in ring.in_use_at(T - 1)] == ["k1"]
    assert [v.version for v in ring.in_use_at(T)] == ["k2", "k1"]
    assert [v.version for v in ring.in_use_at(T + 60_000)] == ["k3", "k2", "k1"]
