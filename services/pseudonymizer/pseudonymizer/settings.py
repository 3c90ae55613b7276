"""Pseudonymizer settings (environment, read once by the command line)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import KafkaSettings, ServiceSettings
from pydantic import Field, SecretStr


class PseudonymizerSettings(ServiceSettings):
    # One release policy per dataset: every *.json file of the directory.
    policy_dir: Path = Path("policies")
    # Pseudonym-domain keys, kept apart from the curated data (PIPA's "additional information"):
    # files <domain>.<key_version>.key in a directory mounted from a secret, and/or the environment
    # (BIOSTREAM_PSEUDONYM_KEYS='{"<domain>/<version>": "<key>"}'); never the repository.
    keys_dir: Path | None = None
    pseudonym_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # D46: the programme's pseudonym root key; a domain key no file or entry gives is derived
    # from it (HKDF, info = "<domain>/<version>"), for datasets approved at runtime.
    pseudonym_root_key: SecretStr | None = None
    pseudonym_root_key_file: Path | None = None
    # D46: the data review board's public keys that sign release-policy versions on
    # access.policies: board.k<N>.pub files (with .activates/.retires) and/or
    # BIOSTREAM_BOARD_KEYS='{"k1": "<64 hex digits>"}'. None: every version is refused (UNKNOWN_KEY).
    board_keys_dir: Path | None = None
    board_keys: dict[str, str] = Field(default_factory=dict)
    # D46: the admin connection that grants and removes project principals' ACLs when a
    # dataset starts or stops (BIOSTREAM_ACL_ADMIN__BOOTSTRAP_SERVERS, __SASL_USERNAME, ...;
    # a principal with Alter and Describe on the cluster). None: ACLs are left to the operator.
    acl_admin: KafkaSettings | None = None
    # A clinical record that arrives before its person's link decision waits this long in memory
    # (uncommitted) for it, instead of being parked in the state store at once; 0 turns that off.
    # The decision is one linkage hop behind the record, so this is the common case.
    hold_for_decision_ms: int = Field(default=2000, ge=0, le=60_000)
