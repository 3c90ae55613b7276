"""Accounts and web sessions of the services' pages (the review desk's stewards, the access
service's applicants and board members, D45): scrypt password hashes, HMAC-signed session tokens
and CSRF tokens bound to the session. Pure functions over bytes; the clock is an argument.

A users file has one ``account:scrypt$n$r$p$salt$hash`` line per account (base64 salt and
hash); ``review hash-password`` and ``access hash-password`` write such a line. Passwords are
never stored or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """D-review-2: a steward's password as the users file keeps it (scrypt, random salt)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """D-review-2: the sign-in check against the users file's scrypt hash (constant time)."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, _unb64(expected))


def parse_users(text: str) -> dict[str, str]:
    """``account:hash`` lines; blank lines and ``#`` comments ignored."""
    users: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        account, _, stored = line.partition(":")
        if not account or not stored.startswith("scrypt$"):
            raise ValueError("users file: expected account:scrypt$... lines")
        users[account] = stored
    return users


@dataclass(frozen=True)
class Session:
    account: str
    nonce: str
    expires: int  # unix seconds


class Sessions:
    """D-review-2: HMAC-signed, expiring session tokens (the cookie value) and CSRF tokens bound
    to the session."""

    def __init__(self, key: bytes, lifetime_s: int) -> None:
        self._key = key
        self._lifetime = lifetime_s

    def _sign(self, purpose: str, payload: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{payload}".encode(), "sha256").digest())

    def issue(self, account: str, now_s: int) -> str:
        payload = f"{account}|{secrets.token_urlsafe(12)}|{now_s + self._lifetime}"
        return f"{_b64(payload.encode())}.{self._sign('session', payload)}"

    def read(self, token: str | None, now_s: int) -> Session | None:
        if not token or "." not in token:
            return None
        encoded, signature = token.rsplit(".", 1)
        try:
            payload = _unb64(encoded).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(signature, self._sign("session", payload)):
            return None
        account, nonce, expires = payload.rsplit("|", 2)
        if not expires.isdigit() or int(expires) <= now_s:
            return None
        return Session(account, nonce, int(expires))

    def csrf(self, session: Session) -> str:
        return self._sign("csrf", f"{session.account}|{session.nonce}")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))
