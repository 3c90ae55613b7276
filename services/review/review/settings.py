"""Review desk settings (environment, read once by the command line)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import ServiceSettings
from pydantic import SecretStr


class ReviewSettings(ServiceSettings):
    # The stewards' web pages (the metrics/health server is metrics_host:metrics_port).
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    # Steward accounts: `account:scrypt$...` lines (`review hash-password`), or the same text
    # in an env variable. No account exists by default.
    users_file: Path | None = None
    users: SecretStr | None = None
    # Key signing session cookies and CSRF tokens; rotate it to log every steward out.
    session_key: SecretStr | None = None
    session_key_file: Path | None = None
    session_lifetime_s: int = 8 * 3600
    # Send the cookie only over HTTPS (the ingress terminates TLS); off for local runs and tests.
    secure_cookie: bool = True
