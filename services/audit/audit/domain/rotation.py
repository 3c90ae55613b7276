"""D34: the ledger's signing key rotates through a signed hand-over.

The audit service holds versioned signing keys (``k1``, ``k2``, ...; the highest version is the
active one). When the key that signed the last checkpoint is not the active one, the next
checkpoint is a *hand-over checkpoint*: signed, like any checkpoint, by the key then in force
(the old one), and carrying a ``handover`` record in which the old key signs the new key's public
key, key id, version and activation time, bound to the checkpoint's size, root and tip. The new
key countersigns the same bytes (its holder took the key over). Every later checkpoint is signed
by the new key.

A verifier starts from the first public key it trusts (the one the programme published) and walks
the checkpoints in order: it accepts a checkpoint only under the key then trusted, and trusts a
new key only through a valid hand-over signed by the key then trusted. A hand-over signed by any
other key is forged; a checkpoint signed by a key no hand-over led to is signed by an unknown key;
one signed by a key after its hand-over is signed by a retired key.

Hand-over bytes: b"biostream-key-handover-v1" || old key id (UTF-8) || 0x00 || new key id
(UTF-8) || 0x00 || new key version (UTF-8) || 0x00 || new raw public key (32) || activated_at in
epoch ms (8 BE, signed) || size (8 BE) || root_hash || tip_hash.

Pure: no files, no environment, no clock (time is an argument).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from biostream.contracts import KeyHandover, LedgerCheckpoint
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.domain.checkpoint import Signer, check_signature, key_id_of

HANDOVER_DOMAIN = b"biostream-key-handover-v1"
VERSION = re.compile(r"^k([1-9][0-9]{0,5})$")


class KeyringError(ValueError):
    """Signing keys that cannot be used as given (no key, a bad version name, one key twice)."""


def version_number(version: str) -> int:
    """D34: key versions are ``k<N>`` (as the pseudonymizer's domain keys, D-pseudonymizer-3);
    N orders them."""
    match = VERSION.match(version)
    if match is None:
        raise KeyringError(f"{version!r}: signing key versions are k1, k2, ...")
    return int(match.group(1))


@dataclass(frozen=True)
class Keyring:
    """D34: the audit service's signing keys by version; the highest version is the active key,
    the others are kept so that the key which signed the last checkpoint can hand over."""

    signers: Mapping[str, Signer]

    def __post_init__(self) -> None:
        if not self.signers:
            raise KeyringError("no ledger signing key")
        for version in self.signers:
            version_number(version)
        ids = [s.key_id for s in self.signers.values()]
        if len(set(ids)) != len(ids):
            raise KeyringError("the same signing key is held under two versions")

    @property
    def versions(self) -> list[str]:
        return sorted(self.signers, key=version_number)

    @property
    def active_version(self) -> str:
        return self.versions[-1]

    @property
    def active(self) -> Signer:
        return self.signers[self.active_version]

    @property
    def oldest(self) -> Signer:
        return self.signers[self.versions[0]]

    def by_key_id(self, key_id: str) -> Signer | None:
        return next((s for s in self.signers.values() if s.key_id == key_id), None)


def previous_signer_id(recorded: str | None, keyring: Keyring, has_checkpoint: bool) -> str | None:
    """D34: the key id that signed the ledger's last checkpoint, None before the first one.

    The state records it from D34 on; a state written before D34 does not, and then the ledger's
    checkpoints were signed by the single key of before, which the operator keeps as the oldest
    version (``k1``)."""
    if recorded is not None:
        return recorded
    return keyring.oldest.key_id if has_checkpoint else None


@dataclass(frozen=True)
class HandoverPlan:
    """The old key signs the next checkpoint and hands over to ``new`` (version ``new_version``)."""

    old: Signer
    new: Signer
    new_version: str


def handover_plan(previous_id: str | None, keyring: Keyring) -> HandoverPlan | str | None:
    """D34: whether the next checkpoint hands the ledger over to the active key.

    None: no hand-over (no checkpoint yet, or the active key signed the last one). A plan: the key
    that signed the last checkpoint signs the next one and hands over, directly to the active key
    (versions in between that never signed are skipped). A string: the hand-over is needed but
    the key that signed the last checkpoint is not held, so no checkpoint can be signed at all
    until it is back: a checkpoint by the new key without a hand-over would not verify."""
    active = keyring.active
    if previous_id is None or previous_id == active.key_id:
        return None
    old = keyring.by_key_id(previous_id)
    if old is None:
        return (
            f"the key that signed the last checkpoint ({previous_id}) is not held: keep it "
            f"beside the new key until the hand-over to {active.key_id} is written"
        )
    return HandoverPlan(old, active, keyring.active_version)


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def handover_bytes(
    old_key_id: str,
    new_key_id: str,
    new_key_version: str,
    new_public_key: bytes,
    activated_at: dt.datetime,
    size: int,
    root_hash: bytes,
    tip_hash: bytes,
) -> bytes:
    """D34: what the old key signs and the new key countersigns."""
    return b"".join(
        (
            HANDOVER_DOMAIN,
            old_key_id.encode(),
            b"\x00",
            new_key_id.encode(),
            b"\x00",
            new_key_version.encode(),
            b"\x00",
            new_public_key,
            _millis(activated_at).to_bytes(8, "big", signed=True),
            size.to_bytes(8, "big"),
            root_hash,
            tip_hash,
        )
    )


def _bytes_of(checkpoint: LedgerCheckpoint, handover: KeyHandover) -> bytes:
    return handover_bytes(
        checkpoint["key_id"],
        handover["new_key_id"],
        handover["new_key_version"],
        handover["new_public_key"],
        handover["activated_at"],
        checkpoint["size"],
        checkpoint["root_hash"],
        checkpoint["tip_hash"],
    )


def hand_over(checkpoint: LedgerCheckpoint, plan: HandoverPlan) -> LedgerCheckpoint:
    """D34: ``checkpoint`` (signed by ``plan.old``) made the hand-over checkpoint to ``plan.new``,
    active from the checkpoint's own time."""
    if checkpoint["key_id"] != plan.old.key_id:
        raise ValueError("a hand-over is signed by the key that signs its checkpoint")
    unsigned: KeyHandover = {
        "new_key_id": plan.new.key_id,
        "new_key_version": plan.new_version,
        "new_public_key": raw_public_key(plan.new.public_key),
        "activated_at": checkpoint["checkpoint_at"],
        "signature": b"",
        "new_key_signature": b"",
    }
    message = _bytes_of(checkpoint, unsigned)
    handover: KeyHandover = {
        **unsigned,
        "signature": plan.old.private_key.sign(message),
        "new_key_signature": plan.new.private_key.sign(message),
    }
    return {**checkpoint, "handover": handover}


def check_handover(checkpoint: LedgerCheckpoint, trusted: Ed25519PublicKey) -> str | None:
    """D34: None when the checkpoint's hand-over is signed by ``trusted`` (the key then trusted),
    names a well-formed new key, and is countersigned by that new key; else what is wrong. The
    checkpoint's own signature is checked apart (``check_signature``)."""
    handover = checkpoint["handover"]
    size = checkpoint["size"]
    if handover is None:
        return f"checkpoint at size {size} is not a hand-over"
    trusted_id = key_id_of(trusted)
    if checkpoint["key_id"] != trusted_id:
        return (
            f"forged hand-over at size {size}: signed by key {checkpoint['key_id']}, not by the "
            f"trusted key {trusted_id}"
        )
    message = _bytes_of(checkpoint, handover)
    try:
        trusted.verify(handover["signature"], message)
    except InvalidSignature:
        return f"forged hand-over at size {size}: not signed by the trusted key {trusted_id}"
    try:
        new_key = Ed25519PublicKey.from_public_bytes(handover["new_public_key"])
    except ValueError:
        return f"hand-over at size {size}: the new public key is not an Ed25519 key"
    if key_id_of(new_key) != handover["new_key_id"]:
        return f"hand-over at size {size}: the new key id is not the new public key's"
    if handover["new_key_id"] == trusted_id:
        return f"hand-over at size {size}: hands the key over to itself"
    if handover["activated_at"] != checkpoint["checkpoint_at"]:
        return f"hand-over at size {size}: activated at another time than its checkpoint's"
    try:
        new_key.verify(handover["new_key_signature"], message)
    except InvalidSignature:
        return f"hand-over at size {size}: not countersigned by the new key {key_id_of(new_key)}"
    return None


@dataclass(frozen=True)
class KeyPeriod:
    """One signing key of the ledger's history: trusted from the checkpoint after ``from_size``'s
    hand-over (the first key: from the start, ``handover_size`` None)."""

    key_id: str
    public_key: Ed25519PublicKey
    version: str | None = None
    handover_size: int | None = None


@dataclass(frozen=True)
class KeyWalk:
    """The key history a verifier reached from its trusted first key, and the first problem."""

    keys: tuple[KeyPeriod, ...]
    problem: str | None = None
    bad_checkpoint_size: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def current(self) -> KeyPeriod:
        return self.keys[-1]


def walk_keys(checkpoints: Sequence[LedgerCheckpoint], first_key: Ed25519PublicKey) -> KeyWalk:
    """D34: checks every checkpoint's signature, in ledger order (by size, ties in the order
    given), under the key trusted at that point, starting from ``first_key``; a valid hand-over
    signed by the trusted key makes its new key the trusted one for the checkpoints after it.

    Fails at the first checkpoint signed by a key that is not the trusted one (a forged hand-over,
    a key no hand-over led to, or a retired key), with an invalid signature, or whose hand-over
    is invalid."""
    periods = [KeyPeriod(key_id_of(first_key), first_key)]
    retired: dict[str, int] = {}
    for position, checkpoint in enumerate(sorted(checkpoints, key=lambda c: c["size"])):
        trusted = periods[-1]
        size = checkpoint["size"]
        signer_id = checkpoint["key_id"]
        if signer_id != trusted.key_id:
            if checkpoint["handover"] is not None:
                problem = (
                    f"forged hand-over at size {size}: signed by key {signer_id}, not by the "
                    f"trusted key {trusted.key_id}"
                )
            elif signer_id in retired:
                problem = (
                    f"checkpoint at size {size} is signed by key {signer_id}, retired by the "
                    f"hand-over at size {retired[signer_id]}"
                )
            else:
                problem = (
                    f"checkpoint at size {size} is signed by unknown key {signer_id}, not the "
                    f"trusted key {trusted.key_id}: no hand-over leads to it"
                )
                if position == 0:
                    problem += " (verification starts from the ledger's first signing key)"
            return KeyWalk(tuple(periods), problem, size)
        invalid = check_signature(checkpoint, trusted.public_key)
        if invalid is None and checkpoint["handover"] is not None:
            invalid = check_handover(checkpoint, trusted.public_key)
        if invalid is not None:
            return KeyWalk(tuple(periods), invalid, size)
        handover = checkpoint["handover"]
        if handover is not None:
            retired[trusted.key_id] = size
            new_key = Ed25519PublicKey.from_public_bytes(handover["new_public_key"])
            periods.append(
                KeyPeriod(handover["new_key_id"], new_key, handover["new_key_version"], size)
            )
    return KeyWalk(tuple(periods))
