"""Steward passwords (scrypt) and signed sessions with CSRF tokens."""

from __future__ import annotations

import secrets

import pytest
from biostream.web_auth import Sessions, hash_password, parse_users, verify_password


def test_password_hash_verifies_only_the_password() -> None:
    password = secrets.token_urlsafe(12)
    stored = hash_password(password)
    assert password not in stored
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)
    assert not verify_password(password, "garbage")


def test_users_file_lines() -> None:
    stored = hash_password(secrets.token_urlsafe(12))
    assert parse_users(f"# stewards\n\nkim:{stored}\n") == {"kim": stored}
    with pytest.raises(ValueError):
        parse_users("kim:plaintext")


def test_sessions_are_signed_expire_and_bind_csrf() -> None:
    sessions = Sessions(secrets.token_bytes(32), lifetime_s=60)
    token = sessions.issue("kim", now_s=1000)
    session = sessions.read(token, now_s=1010)
    assert session is not None and session.account == "kim"
    assert sessions.read(token, now_s=1060) is None  # expired
    assert Sessions(secrets.token_bytes(32), 60).read(token, now_s=1010) is None  # other key
    payload, signature = token.rsplit(".", 1)
    assert sessions.read(f"{payload}.{signature[::-1]}", now_s=1010) is None
    assert sessions.read(None, 1010) is None and sessions.read("x", 1010) is None
    assert sessions.csrf_ok(session, sessions.csrf(session))
    other = sessions.read(sessions.issue("kim", 1000), 1010)
    assert other is not None and not sessions.csrf_ok(other, sessions.csrf(session))
    assert not sessions.csrf_ok(session, "") and not sessions.csrf_ok(session, None)
