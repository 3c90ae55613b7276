"""D46: signed release-policy versions: what the signature covers, which keys count, and which
records are refused before their signature does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from biostream.codec import default_codec
from biostream.contracts import RELEASE_POLICY_VERSION, ReleasePolicyVersion
from biostream.release_policies import (
    BoardKey,
    BoardKeyError,
    TrustedBoardKeys,
    canonical_document,
    load_board_keys,
    policy_version,
    public_key_hex,
    read_signing_key,
    shape_refusal,
    sign,
    withdrawal_of,
    write_signing_key,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

NOW_MS = 1_790_000_000_000
DOCUMENT = {
    "dataset": "cohort-late",
    "version": "1",
    "approval_ref": "DRB-2026-014",
    "purpose": "diabetes outcomes",
    "pseudonym_domain": "cohort-late",
    "key_version": "k1",
    "record_types": ["Condition"],
    "fields": ["code"],
}
BOARD = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def unsigned(**changes: object) -> ReleasePolicyVersion:
    record = policy_version(
        DOCUMENT,
        version=1,
        application_id="APP-1",
        principal="User:project-cohort-late",
        valid_from_ms=NOW_MS - 1000,
        valid_until_ms=NOW_MS + 86_400_000,
        issued_at_ms=NOW_MS,
    )
    record.update(changes)  # type: ignore[typeddict-item]
    return record


def trusted(*keys: BoardKey) -> TrustedBoardKeys:
    return TrustedBoardKeys(keys or [BoardKey("k1", BOARD.public_key())])


def test_a_signed_version_verifies_and_survives_the_wire() -> None:
    signed = sign(unsigned(), BOARD)
    codec = default_codec()
    again = codec.decode(codec.encode(RELEASE_POLICY_VERSION, signed), RELEASE_POLICY_VERSION)
    assert shape_refusal(again) is None  # type: ignore[arg-type]
    assert trusted().signature_refusal(again, NOW_MS) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", 2),
        ("status", "WITHDRAWN"),
        ("valid_until_ms", NOW_MS + 10**12),
        ("principal", "User:project-other"),
        ("application_id", "APP-2"),
        ("policy_json", canonical_document({**DOCUMENT, "fields": ["code", "value_text"]})),
    ],
)
def test_every_field_is_covered_by_the_signature(field: str, value: object) -> None:
    tampered = sign(unsigned(), BOARD)
    tampered[field] = value  # type: ignore[literal-required]
    refusal = trusted().signature_refusal(tampered, NOW_MS)
    assert refusal is not None and refusal.code == "BAD_SIGNATURE"


def test_unsigned_unknown_and_retired_keys_are_refused() -> None:
    assert trusted().signature_refusal(unsigned(), NOW_MS).code == "UNSIGNED"  # type: ignore[union-attr]
    stranger = sign(unsigned(), Ed25519PrivateKey.generate())
    assert trusted().signature_refusal(stranger, NOW_MS).code == "UNKNOWN_KEY"  # type: ignore[union-attr]
    retired = trusted(BoardKey("k1", BOARD.public_key(), 0, NOW_MS - 1))
    refusal = retired.signature_refusal(sign(unsigned(), BOARD), NOW_MS)
    assert refusal is not None and refusal.code == "RETIRED_KEY"
    not_yet = trusted(BoardKey("k1", BOARD.public_key(), NOW_MS + 1))
    assert not_yet.signature_refusal(sign(unsigned(), BOARD), NOW_MS).code == "RETIRED_KEY"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "changes",
    [
        {"dataset": "Bad Name"},
        {"version": 0},
        {"withdrawn_reason": "REVOKED"},
        {"status": "WITHDRAWN"},
        {"valid_until_ms": NOW_MS - 1000},
        {"principal": "project-cohort-late"},
        {"policy_json": b"[1]"},
        {"policy_json": b"{not json"},
        {"approval_ref": "DRB-OTHER"},
        {"version": 2},
    ],
)
def test_records_that_contradict_themselves_are_malformed(changes: dict[str, object]) -> None:
    refusal = shape_refusal(unsigned(**changes))
    assert refusal is not None and refusal.code == "POLICY_MALFORMED"


def test_a_withdrawal_is_the_next_version_with_its_reason() -> None:
    active = sign(unsigned(), BOARD)
    withdrawn = sign(withdrawal_of(active, "REVOKED", NOW_MS + 5), BOARD)
    assert withdrawn["version"] == 2 and withdrawn["withdrawn_reason"] == "REVOKED"
    assert json.loads(withdrawn["policy_json"])["version"] == "2"
    assert shape_refusal(withdrawn) is None
    assert trusted().signature_refusal(withdrawn, NOW_MS) is None


def test_board_keys_from_files_and_environment(tmp_path: Path) -> None:
    second = Ed25519PrivateKey.generate()
    (tmp_path / "board.k1.pub").write_text(public_key_hex(BOARD.public_key()))
    (tmp_path / "board.k1.retires").write_text("2026-09-21T00:00:00Z")
    (tmp_path / "board.k2.pub").write_text(public_key_hex(second.public_key()))
    (tmp_path / "board.k2.activates").write_text("2026-09-21T09:00:00+09:00")
    third = Ed25519PrivateKey.generate()
    keys = load_board_keys(tmp_path, {"k3": public_key_hex(third.public_key())})
    by_version = {key.version: key for key in keys.keys.values()}
    assert by_version["k1"].retires_at_ms == by_version["k2"].activates_at_ms == 1_789_948_800_000
    assert by_version["k3"].in_force_at(0)
    with pytest.raises(BoardKeyError, match="twice"):
        load_board_keys(tmp_path, {"k1": public_key_hex(third.public_key())})
    (tmp_path / "board.k4.pub").write_text("not a key")
    with pytest.raises(BoardKeyError, match=r"board\.k4\.pub: not an Ed25519 public key"):
        load_board_keys(tmp_path, {})


def test_the_signing_key_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "board.key"
    write_signing_key(path, BOARD)
    assert read_signing_key(path).public_key() == BOARD.public_key()
    path.chmod(0o644)
    with pytest.raises(BoardKeyError, match="group or others"):
        read_signing_key(path)
