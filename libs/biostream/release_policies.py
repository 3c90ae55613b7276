"""D46: signed, versioned release policies, the board's approval in a form the stream enforces.

A data review board's decision becomes a ``ReleasePolicyVersion`` (``schemas/avro/
release_policy_version.avsc``) on the compacted ``access.policies`` topic, keyed by dataset: the
policy document the pseudonymizer enforces, the application and approval it came from, its
validity, the project's Kafka principal, and an Ed25519 signature by a board key over all of it.
The pseudonymizer trusts only the board's public keys (files or the environment) and refuses
anything else; the access service (or ``biostream-dev policy publish``, for tests and the demo)
signs with the private key and publishes with ``biostream.policy_topic.publish``. No Kafka here:
the pseudonymizer's domain uses these rules.

Signed bytes: ``b"biostream-release-policy-v1"`` || 0x00 || canonical JSON of every field but
``policy_json`` and ``signature`` (keys sorted, no whitespace, UTF-8) || 0x00 || ``policy_json``.
JSON escapes control characters, so the first NUL after the header ends it: no two records share
signed bytes.

Board keys are versions ``k1``, ``k2``, ... like every other key of the project (D33, D34), each
with an activation time and, once replaced, a retirement time; the key id a record names is the
first 16 hex digits of SHA-256 of the raw public key (as the ledger's checkpoints, D34). A key is
accepted only between its activation and its retirement on the verifier's clock. Key material
never reaches a log or an error message; key ids and versions do.

Files: ``<board_keys_dir>/board.k<N>.pub`` (64 hex digits, the raw Ed25519 public key), optional
``board.k<N>.activates`` and ``board.k<N>.retires`` (RFC 3339 with zone). Environment:
``BIOSTREAM_BOARD_KEYS='{"k1": "<64 hex digits>"}'`` (active from the start, never retired). The
signer's private key: a file holding the 32-byte seed as 64 hex digits, readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from biostream.contracts import ReleasePolicyVersion, ReleaseStatus, WithdrawnReason
from biostream.keyring import KeyRingError, version_number

SIGNING_DOMAIN = b"biostream-release-policy-v1"
DATASET = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
PRINCIPAL = re.compile(r"^User:[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SIGNED_FIELDS = (
    "dataset",
    "version",
    "status",
    "withdrawn_reason",
    "application_id",
    "approval_ref",
    "valid_from_ms",
    "valid_until_ms",
    "principal",
    "issued_at_ms",
    "board_key_id",
)


class BoardKeyError(ValueError):
    """Board keys that cannot be used as given (missing, badly named, not a key, too open)."""


@dataclass(frozen=True)
class Refusal:
    """Why a policy version is not applied: a stable code and a message naming no key material
    and no person."""

    code: str
    message: str


def canonical_document(document: Mapping[str, Any]) -> bytes:
    """A policy document as the bytes that are signed and carried: keys sorted, no whitespace."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_bytes(record: ReleasePolicyVersion) -> bytes:
    """D46: what the board's signature covers: every field of the record but the signature."""
    header = {name: record[name] for name in _SIGNED_FIELDS}  # type: ignore[literal-required]
    return b"".join(
        (SIGNING_DOMAIN, b"\x00", canonical_document(header), b"\x00", record["policy_json"])
    )


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def policy_version(
    document: Mapping[str, Any],
    *,
    version: int,
    application_id: str,
    principal: str,
    valid_from_ms: int,
    valid_until_ms: int,
    issued_at_ms: int,
    status: ReleaseStatus = "ACTIVE",
    withdrawn_reason: WithdrawnReason | None = None,
) -> ReleasePolicyVersion:
    """An unsigned version of ``document`` (its dataset, approval and version fields are taken
    from it, the version written into it, so the two cannot disagree)."""
    body = dict(document)
    body["version"] = str(version)
    return ReleasePolicyVersion(
        dataset=str(body.get("dataset", "")),
        version=version,
        status=status,
        withdrawn_reason=withdrawn_reason,
        policy_json=canonical_document(body),
        application_id=application_id,
        approval_ref=str(body.get("approval_ref", "")),
        valid_from_ms=valid_from_ms,
        valid_until_ms=valid_until_ms,
        principal=principal,
        issued_at_ms=issued_at_ms,
        board_key_id="",
        signature=None,
    )


def withdrawal_of(
    active: ReleasePolicyVersion, reason: WithdrawnReason, issued_at_ms: int
) -> ReleasePolicyVersion:
    """The next version of ``active`` that withdraws it (unsigned): same document, principal
    and validity, one version higher."""
    body = json.loads(active["policy_json"])
    body["version"] = str(active["version"] + 1)
    withdrawn = active.copy()
    withdrawn["version"] = active["version"] + 1
    withdrawn["status"] = "WITHDRAWN"
    withdrawn["withdrawn_reason"] = reason
    withdrawn["policy_json"] = canonical_document(body)
    withdrawn["issued_at_ms"] = issued_at_ms
    withdrawn["board_key_id"] = ""
    withdrawn["signature"] = None
    return withdrawn


def sign(record: ReleasePolicyVersion, private_key: Ed25519PrivateKey) -> ReleasePolicyVersion:
    """The record with the board key's id and signature."""
    signed = record.copy()
    signed["board_key_id"] = key_id_of(private_key.public_key())
    signed["signature"] = private_key.sign(signed_bytes(signed))
    return signed


def shape_refusal(record: ReleasePolicyVersion) -> Refusal | None:
    """D46: a version whose fields contradict each other or their document is refused before
    its signature counts: a dataset id, a version from 1, a reason exactly when withdrawn, a
    validity that ends after it starts, a ``User:`` principal, and a JSON document naming the
    same dataset, version and approval as the record."""
    if not DATASET.match(record["dataset"]):
        return Refusal("POLICY_MALFORMED", "dataset id is not of the form [a-z0-9][a-z0-9-]+")
    if record["version"] < 1:
        return Refusal("POLICY_MALFORMED", "version must be 1 or more")
    if (record["status"] == "WITHDRAWN") != (record["withdrawn_reason"] is not None):
        return Refusal("POLICY_MALFORMED", "a withdrawn_reason is given exactly when WITHDRAWN")
    if record["valid_until_ms"] <= record["valid_from_ms"]:
        return Refusal("POLICY_MALFORMED", "valid_until_ms is not after valid_from_ms")
    if not PRINCIPAL.match(record["principal"]):
        return Refusal("POLICY_MALFORMED", "principal is not User:<name>")
    try:
        document = json.loads(record["policy_json"])
    except ValueError:
        return Refusal("POLICY_MALFORMED", "policy_json is not JSON")
    if not isinstance(document, dict):
        return Refusal("POLICY_MALFORMED", "policy_json is not a JSON object")
    for name, expected in (
        ("dataset", record["dataset"]),
        ("version", str(record["version"])),
        ("approval_ref", record["approval_ref"]),
    ):
        if document.get(name) != expected:
            return Refusal("POLICY_MALFORMED", f"the document's {name} differs from the record's")
    return None


@dataclass(frozen=True)
class BoardKey:
    version: str
    public_key: Ed25519PublicKey
    activates_at_ms: int = 0
    retires_at_ms: int | None = None

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def in_force_at(self, now_ms: int) -> bool:
        return self.activates_at_ms <= now_ms and (
            self.retires_at_ms is None or now_ms < self.retires_at_ms
        )


class TrustedBoardKeys:
    """The board's public keys a verifier trusts, by key id."""

    def __init__(self, keys: Iterable[BoardKey]) -> None:
        self.keys = {key.key_id: key for key in keys}

    def __bool__(self) -> bool:
        return bool(self.keys)

    def signature_refusal(self, record: ReleasePolicyVersion, now_ms: int) -> Refusal | None:
        """D46: None when a board key this verifier trusts, in force now (activated, not
        retired), signed exactly this record; else why not (``UNSIGNED``, ``UNKNOWN_KEY``,
        ``RETIRED_KEY``, ``BAD_SIGNATURE``)."""
        signature = record["signature"]
        if not signature:
            return Refusal("UNSIGNED", "the policy version carries no signature")
        key = self.keys.get(record["board_key_id"])
        if key is None:
            return Refusal(
                "UNKNOWN_KEY", f"board key {record['board_key_id'][:16]!r} is not trusted"
            )
        if not key.in_force_at(now_ms):
            return Refusal(
                "RETIRED_KEY", f"board key {key.key_id} ({key.version}) is not in force now"
            )
        try:
            key.public_key.verify(signature, signed_bytes(record))
        except InvalidSignature:
            return Refusal("BAD_SIGNATURE", f"the signature does not verify under {key.key_id}")
        return None


def public_key_from_hex(text: str, what: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise BoardKeyError(f"{what}: not an Ed25519 public key (64 hex digits)")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_hex(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def load_board_keys(keys_dir: Path | None, env_keys: Mapping[str, str]) -> TrustedBoardKeys:
    """D46: the board's public keys from ``board.k<N>.pub`` files (with their optional
    ``.activates`` / ``.retires`` times) and from the environment (``{"k<N>": hex}``)."""
    keys: list[BoardKey] = []
    if keys_dir is not None:
        if not keys_dir.is_dir():
            raise BoardKeyError(f"{keys_dir}: board keys directory not found")
        for path in sorted(keys_dir.glob("board.*.pub")):
            version = path.name.removeprefix("board.").removesuffix(".pub")
            _check_version(version, path.name)
            key = public_key_from_hex(path.read_text(encoding="ascii", errors="replace"), path.name)
            activates = path.with_suffix(".activates")
            retires = path.with_suffix(".retires")
            keys.append(
                BoardKey(
                    version,
                    key,
                    _time_ms(activates) if activates.exists() else 0,
                    _time_ms(retires) if retires.exists() else None,
                )
            )
    for version, text in env_keys.items():
        _check_version(version, f"BIOSTREAM_BOARD_KEYS[{version}]")
        keys.append(BoardKey(version, public_key_from_hex(text, f"board key {version}")))
    versions = [key.version for key in keys]
    if len(set(versions)) != len(versions):
        raise BoardKeyError("a board key version is given twice (files and environment)")
    return TrustedBoardKeys(keys)


def _check_version(version: str, what: str) -> None:
    try:
        version_number(version)
    except KeyRingError:
        raise BoardKeyError(f"{what}: board key versions are k1, k2, ...") from None


def _time_ms(path: Path) -> int:
    text = path.read_text(encoding="utf-8").strip()
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BoardKeyError(f"{path.name}: not an RFC 3339 time") from None
    if at.tzinfo is None:
        raise BoardKeyError(f"{path.name}: the time needs its zone (Z or +09:00)")
    return int(at.timestamp() * 1000)


def read_signing_key(path: Path) -> Ed25519PrivateKey:
    """The board's private key: a file of 64 hex digits (the Ed25519 seed), owner-only."""
    if not path.is_file():
        raise BoardKeyError(f"{path}: board signing key file not found")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BoardKeyError(f"{path.name}: key file is accessible to group or others; chmod 600")
    try:
        seed = bytes.fromhex(path.read_text(encoding="ascii", errors="replace").strip())
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise BoardKeyError(f"{path.name}: not an Ed25519 seed (64 hex digits)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def write_signing_key(path: Path, private_key: Ed25519PrivateKey) -> None:
    """A new private key file, owner-only (refuses to overwrite one)."""
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    path.touch(mode=0o600, exist_ok=False)
    path.write_text(seed.hex() + "\n", encoding="ascii")
