"""D33: a key's versions read from its keys directory (layout in ``biostream.keyring``), or the
single key of before as ``k1``. Apart from the rules so that domains may use those without
touching files or settings."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

from pydantic import SecretStr

from biostream.keyring import KeyRing, KeyRingError, KeyVersion, version_number
from biostream.settings import read_secret


def load_key_ring(
    name: str, keys_dir: Path | None, single: SecretStr | None, single_file: Path | None
) -> KeyRing:
    """D33: a key's versions from its keys directory, else the single key of before as ``k1``;
    both at once are refused (the single key becomes ``<name>.k1.key`` in the directory)."""
    has_single = single is not None or single_file is not None
    if keys_dir is None:
        if not has_single:
            raise KeyRingError(f"{name}: no key configured (set the keys directory or the key)")
        return KeyRing(name, [KeyVersion("k1", read_secret(single, single_file, name))])
    if has_single:
        raise KeyRingError(
            f"{name}: set either the keys directory or the single key, not both "
            f"(the single key becomes {name}.k1.key in the directory)"
        )
    return KeyRing(name, read_keys_dir(name, keys_dir))


def read_keys_dir(name: str, keys_dir: Path) -> list[KeyVersion]:
    if not keys_dir.is_dir():
        raise KeyRingError(f"{keys_dir}: {name} keys directory not found")
    versions: list[KeyVersion] = []
    for path in sorted(keys_dir.glob(f"{name}.*.key")):
        version = path.name.removeprefix(f"{name}.").removesuffix(".key")
        version_number(version)
        _check_private(path)
        material = path.read_bytes().strip()
        if not material:
            raise KeyRingError(f"{path.name}: key file is empty")
        activation = path.with_name(f"{name}.{version}.activates")
        at_ms = _activation_ms(activation) if activation.exists() else 0
        versions.append(KeyVersion(version, material, at_ms))
    for path in keys_dir.glob(f"{name}.*.activates"):
        if not path.with_suffix(".key").exists():
            raise KeyRingError(f"{path.name}: an activation time without its key file")
    if not versions:
        raise KeyRingError(f"{keys_dir}: no {name}.k<N>.key file")
    return versions


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyRingError(
            f"{path.name}: key file is accessible to group or others "
            f"(mode {stat.filemode(mode)}); chmod 600 or mount with defaultMode 0400"
        )


def _activation_ms(path: Path) -> int:
    text = path.read_text(encoding="utf-8").strip()
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise KeyRingError(f"{path.name}: not an RFC 3339 time: {text[:40]!r}") from None
    if at.tzinfo is None:
        raise KeyRingError(f"{path.name}: the activation time needs its zone (Z or +09:00)")
    return int(at.timestamp() * 1000)
