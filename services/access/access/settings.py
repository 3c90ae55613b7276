"""Access service settings (environment, read once by the command line)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import ServiceSettings
from pydantic import Field, SecretStr


class AccessSettings(ServiceSettings):
    # The board: checklist, members, voting rule (config/access/board.yaml is the programme's).
    board_file: Path = Path("config/access/board.yaml")
    # D47: each dataset's own DUO terms (none: every application's DUO match needs review).
    catalogue_file: Path | None = None
    # The JSON API (the metrics/health server is metrics_host:metrics_port).
    web_host: str = "127.0.0.1"
    web_port: int = 8081
    # Accounts of applicants and board members: `account:scrypt$...` lines (`access
    # hash-password`), or the same text in an env variable. No account exists by default.
    users_file: Path | None = None
    users: SecretStr | None = None
    session_key: SecretStr | None = None
    session_key_file: Path | None = None
    session_lifetime_s: int = 8 * 3600
    secure_cookie: bool = True
    # How often approvals are checked for their end date.
    expiry_check_s: float = Field(default=60.0, gt=0)
    # D49: the board's Ed25519 signing key for access.policies (file of 64 hex digits, owner
    # only, or the same in the environment); neither: decisions are recorded, nothing published.
    board_signing_key_file: Path | None = None
    board_signing_key: SecretStr | None = None
    # The command line's account password (else asked on the terminal).
    password: SecretStr | None = None
    # D47: the board's visa signing key (Ed25519, PKCS#8 PEM), from a file or the environment;
    # none: no visas are issued. The issuer is the access service's public URL (the JWT's
    # ``iss``; its JWKS is ``<issuer>/.well-known/jwks.json``).
    visa_key_file: Path | None = None
    visa_key: SecretStr | None = None
    visa_issuer: str | None = None
