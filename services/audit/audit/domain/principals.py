"""Whose events enter the ledger: the principal Kafka authenticated, never the one claimed."""

from __future__ import annotations

from collections.abc import Iterable


def principal_refusal(authenticated: str | None, claimed: Iterable[str]) -> str | None:
    """D31: why an audit message may not enter the ledger, or None when it may.

    ``authenticated`` is the principal of the topic the message was read from (only that
    principal may write there, by ACL); every event in the message must name exactly it. The
    text names principals only (role names, no personal data) and is the dead letter's reason.
    """
    if authenticated is None:
        return "read from a topic that is no principal's audit topic"
    others = sorted({name for name in claimed if name != authenticated})
    if others:
        return f"events claim {', '.join(others)} but were written by {authenticated}"
    return None
