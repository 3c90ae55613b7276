"""D34: the ledger's versioned signing keys, from a directory of files or the single key of before.

Layout: ``<BIOSTREAM_LEDGER_SIGNING_KEYS_DIR>/ledger.<version>.key`` (version ``k1``, ``k2``, ...;
64 hex digits, the Ed25519 seed), flat so that a Kubernetes secret mounts as it is, like the
pseudonymizer's ``<domain>.<version>.key`` files (D-pseudonymizer-3). Files must not be readable
by group or others. The single key (``BIOSTREAM_LEDGER_SIGNING_KEY[_FILE]``) is version ``k1``.
Key values never reach a log or an error message; only versions and key ids do.
"""

from __future__ import annotations

import stat
from pathlib import Path

from audit.domain.checkpoint import Signer, private_key_from_secret
from audit.domain.rotation import Keyring, KeyringError, version_number
from audit.settings import AuditSettings

PREFIX = "ledger."


def load_keyring(settings: AuditSettings) -> Keyring:
    """D34: the signing keys the settings name: the keys directory, else the single key of
    before as ``k1``; both at once are refused."""
    single = settings.ledger_signing_key is not None or settings.ledger_signing_key_file is not None
    if settings.ledger_signing_keys_dir is None:
        return Keyring({"k1": Signer(private_key_from_secret(settings.signing_key()))})
    if single:
        raise KeyringError(
            "set either BIOSTREAM_LEDGER_SIGNING_KEYS_DIR or the single signing key, not both "
            "(the single key becomes ledger.k1.key in the directory)"
        )
    return Keyring(read_keys_dir(settings.ledger_signing_keys_dir))


def read_keys_dir(keys_dir: Path) -> dict[str, Signer]:
    if not keys_dir.is_dir():
        raise KeyringError(f"{keys_dir}: signing keys directory not found")
    signers: dict[str, Signer] = {}
    for path in sorted(keys_dir.glob("*.key")):
        name = path.name.removesuffix(".key")
        if not name.startswith(PREFIX):
            raise KeyringError(f"{path.name}: signing key files are named ledger.<version>.key")
        version = name.removeprefix(PREFIX)
        version_number(version)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(
                f"{path.name}: key file is accessible to group or others "
                f"(mode {stat.filemode(mode)}); chmod 600 or mount with defaultMode 0400"
            )
        try:
            signers[version] = Signer(private_key_from_secret(path.read_bytes()))
        except (ValueError, UnicodeDecodeError):
            raise KeyringError(f"{path.name}: not an Ed25519 seed (64 hex digits)") from None
    if not signers:
        raise KeyringError(f"{keys_dir}: no ledger.<version>.key file")
    return signers
