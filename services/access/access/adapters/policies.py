"""D49: the board's signing key for the policy versions the service publishes on
``access.policies`` (the writing itself is the command's transaction, ``stream.py``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from biostream.release_policies import BoardKeyError, read_signing_key, sign
from pydantic import SecretStr

from access.handlers import PolicySigner


def board_signer(key_file: Path | None, key_hex: SecretStr | None) -> PolicySigner | None:
    """D49: ``sign`` with the board's Ed25519 key: from its file (64 hex digits, owner-only,
    ``biostream-dev policy keygen`` writes one) or the environment; None when neither is set
    (the service then records decisions and publishes no policy). Key material never reaches a
    log line or an error message."""
    if key_file is not None:
        return partial(sign, private_key=read_signing_key(key_file))
    if key_hex is None or not key_hex.get_secret_value():
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        seed = bytes.fromhex(key_hex.get_secret_value().strip())
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise BoardKeyError("BIOSTREAM_BOARD_SIGNING_KEY: not an Ed25519 seed (64 hex digits)")
    return partial(sign, private_key=Ed25519PrivateKey.from_private_bytes(seed))
