"""Dead letters' originals are sealed: readable with the key, bound to their record, tamper-evident."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import DEAD_LETTER
from biostream.envelopes import Envelopes, dead_letter_sealer
from biostream.schemas import SchemaRegistry
from biostream.sealing import Sealer, SealError, SealingKeys
from biostream.settings import ServiceSettings
from biostream.topics import Topics

KEY = secrets.token_hex(32).encode()
ORIGINAL = "PID|||00012345||홍길동||19971013|M|||서울특별시 종로구|||010-1234-5678|||||971013-1019901".encode()


def test_sealed_value_opens_with_the_key_and_its_record_only() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal(ORIGINAL, "ingest/feed.H001/0/7")
    assert ORIGINAL not in sealed and b"971013" not in sealed
    assert sealer.unseal(sealed, "ingest/feed.H001/0/7") == ORIGINAL
    with pytest.raises(SealError):
        sealer.unseal(sealed, "ingest/feed.H001/0/8")  # moved to another dead letter
    with pytest.raises(SealError):
        Sealer(secrets.token_hex(32).encode()).unseal(sealed, "ingest/feed.H001/0/7")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        sealer.unseal(tampered, "ingest/feed.H001/0/7")


def test_two_seals_of_the_same_bytes_differ() -> None:
    sealer = Sealer(KEY)
    assert sealer.seal(ORIGINAL, "a") != sealer.seal(ORIGINAL, "a")


@pytest.mark.parametrize("key", [b"short", b"z" * 64, b""])
def test_malformed_keys_are_refused(key: bytes) -> None:
    with pytest.raises(SealError):
        Sealer(key)


def test_a_sealed_dead_letter_carries_no_original_in_clear() -> None:
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes("ingest", "User:svc-ingest", codec, Topics(), SealingKeys.single(KEY))
    message = Inbound("feed.H001", 0, 7, b"M-1", ORIGINAL, (), 0)
    out = envelopes.dead_letter(
        message, "HL7_INVALID", "PID-7 is not a date", dt.datetime.now(dt.UTC), "H001"
    )
    assert ORIGINAL not in (out.value or b"")
    letter = codec.decode(out.value, DEAD_LETTER)
    assert letter["original"] == b""
    assert Sealer(KEY).unseal(letter["sealed_original"], letter["dead_letter_id"]) == ORIGINAL


def test_a_service_without_a_dead_letter_key_refuses_to_start_unless_told_to_keep_clear_text() -> (
    None
):
    with pytest.raises(ValueError, match="DEAD_LETTER_KEY"):
        dead_letter_sealer(ServiceSettings.model_validate({}))
    assert (
        dead_letter_sealer(ServiceSettings.model_validate({"dead_letter_cleartext": True})) is None
    )
    sealer = dead_letter_sealer(ServiceSettings.model_validate({"dead_letter_key": KEY.decode()}))
    assert sealer is not None and sealer.for_input(0).key_id == Sealer(KEY).key_id
