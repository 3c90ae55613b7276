"""Every kind of tampering with the ledger or its checkpoints is detected and located."""

from __future__ import annotations

import datetime as dt

import pytest
from audit.domain.chain import ChainTip, append, verify
from audit.domain.checkpoint import Signer
from audit.domain.ledger import LedgerState
from biostream.contracts import LedgerCheckpoint, LedgerEntry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
SIGNER = Signer(Ed25519PrivateKey.generate())
KEY = SIGNER.public_key


def signed_ledger(n: int = 12, every: int = 4) -> tuple[list[LedgerEntry], list[LedgerCheckpoint]]:
    ledger = LedgerState()
    entries, checkpoints = [], []
    for i in range(n):
        entries.append(ledger.append(f"e{i}", f"payload-{i}".encode(), T0))
        if (i + 1) % every == 0:
            checkpoints.append(ledger.checkpoint(SIGNER, T0 + dt.timedelta(seconds=i)))
    return entries, checkpoints


def check(
    entries: list[LedgerEntry], checkpoints: list[LedgerCheckpoint]
) -> tuple[bool, int | None]:
    result = verify(entries, checkpoints=checkpoints, public_key=KEY)
    return result.ok, result.first_bad_sequence


def test_an_untouched_signed_ledger_verifies() -> None:
    entries, checkpoints = signed_ledger()
    result = verify(entries, checkpoints=checkpoints, public_key=KEY)
    assert result.ok and result.entries == 12 and result.checkpoints_checked == 3


@pytest.mark.parametrize("position", [0, 5, 11])
def test_one_changed_byte_is_detected_where_it_is(position: int) -> None:
    entries, checkpoints = signed_ledger()
    payload = bytearray(entries[position]["event_payload"])
    payload[3] ^= 0x01
    entries[position] = {**entries[position], "event_payload": bytes(payload)}
    assert check(entries, checkpoints) == (False, position)


def test_a_deleted_entry_is_detected() -> None:
    entries, checkpoints = signed_ledger()
    del entries[6]
    assert check(entries, checkpoints) == (False, 6)


def test_an_inserted_entry_is_detected() -> None:
    entries, checkpoints = signed_ledger()
    forged, _ = append(ChainTip(3, entries[2]["entry_hash"]), "forged", b"forged", T0)
    entries.insert(3, forged)
    assert check(entries, checkpoints) == (False, 4)


def test_two_swapped_entries_are_detected() -> None:
    entries, checkpoints = signed_ledger()
    entries[7], entries[8] = entries[8], entries[7]
    assert check(entries, checkpoints) == (False, 7)


def test_a_cut_tail_is_detected_against_the_latest_signed_checkpoint() -> None:
    entries, checkpoints = signed_ledger()
    result = verify(entries[:10], checkpoints=checkpoints, public_key=KEY)
    assert not result.ok and result.first_bad_sequence == 10
    assert "tail cut" in (result.problem or "")
    # Entries after the last checkpoint are not covered by a signature yet: cutting them alone
    # cannot be seen (the next checkpoint will cover them).
    entries, checkpoints = signed_ledger(n=14)
    assert verify(entries[:12], checkpoints=checkpoints, public_key=KEY).ok


def test_a_consistently_rewritten_chain_is_caught_by_the_checkpoint() -> None:
    entries, checkpoints = signed_ledger()
    # Rewrite entry 5 and recompute every later hash: the chain alone is intact again ...
    tip = ChainTip(5, entries[4]["entry_hash"])
    rewritten = entries[:5]
    for i in range(5, 12):
        payload = b"changed" if i == 5 else entries[i]["event_payload"]
        entry, tip = append(tip, entries[i]["event_id"], payload, T0)
        rewritten.append(entry)
    assert verify(rewritten).ok
    # ... but not with the signed checkpoints: entries 4..7 no longer match the one at size 8.
    result = verify(rewritten, checkpoints=checkpoints, public_key=KEY)
    assert not result.ok and result.first_bad_sequence == 4 and result.bad_checkpoint_size == 8


def test_a_checkpoint_with_a_bad_signature_is_rejected() -> None:
    entries, checkpoints = signed_ledger()
    sig = bytearray(checkpoints[1]["signature"])
    sig[0] ^= 0x01
    checkpoints[1] = {**checkpoints[1], "signature": bytes(sig)}
    result = verify(entries, checkpoints=checkpoints, public_key=KEY)
    assert not result.ok and result.bad_checkpoint_size == 8
    assert "invalid signature" in (result.problem or "")


def test_a_checkpoint_whose_content_was_changed_is_rejected() -> None:
    entries, checkpoints = signed_ledger()
    checkpoints[2] = {**checkpoints[2], "size": 100}  # claims a longer ledger, same signature
    result = verify(entries, checkpoints=checkpoints, public_key=KEY)
    assert not result.ok and "invalid signature" in (result.problem or "")


def test_a_validly_signed_checkpoint_from_another_key_is_rejected() -> None:
    entries, checkpoints = signed_ledger()
    intruder = Signer(Ed25519PrivateKey.generate())
    state = LedgerState()
    for e in entries[:4]:
        state.append(e["event_id"], e["event_payload"], T0)
    forged = state.checkpoint(intruder, T0)
    result = verify(entries, checkpoints=[*checkpoints, forged], public_key=KEY)
    assert not result.ok and "not the trusted key" in (result.problem or "")
    # Even if it lies about its key id, the signature does not verify under the trusted key.
    lying: LedgerCheckpoint = {**forged, "key_id": SIGNER.key_id}
    result = verify(entries, checkpoints=[lying], public_key=KEY)
    assert not result.ok and "invalid signature" in (result.problem or "")


def test_checkpoints_need_the_public_key() -> None:
    entries, checkpoints = signed_ledger()
    with pytest.raises(ValueError, match="public key"):
        verify(entries, checkpoints=checkpoints)
