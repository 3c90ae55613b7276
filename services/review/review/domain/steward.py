"""What the steward's command line may do, and in whose name (D35). Pure: no Kafka, no clock.

The command line has no steward login (the web desk has): the only identity it holds is the
Kafka principal its credentials authenticate, so that principal is the account its decisions and
audit events name, and only the matrix's ``steward`` role may act there.
"""

from __future__ import annotations

STEWARD_ROLE = "steward"
CASE_MAX_LENGTH = 64


class NotASteward(PermissionError):
    pass


def command_line_steward(principal: str, prefix: str) -> str:
    """D35: the account a command-line decision or unsealing names: the authenticated principal
    (``User:<prefix>steward``) without ``User:``; any other role is refused (the desk's own
    ``svc-review`` decides only for a signed-in steward, on the web pages)."""
    account = principal.removeprefix("User:")
    if account != f"{prefix}{STEWARD_ROLE}":
        raise NotASteward(
            f"the steward's commands run as the {STEWARD_ROLE!r} principal; these credentials "
            f"authenticate {principal}"
        )
    return account


def case_reference(text: str) -> str:
    """D35: the case an unsealing is done for (a ticket or incident reference of the steward's
    own register): printable, no spaces, at most 64 characters, trimmed at the ends. The rule is
    named in the error, never the value."""
    case = text.strip()
    if not case:
        raise ValueError("a case reference is required (--case)")
    if len(case) > CASE_MAX_LENGTH or not case.isprintable() or any(c.isspace() for c in case):
        raise ValueError(
            f"a case reference is printable, without spaces, at most {CASE_MAX_LENGTH} characters"
        )
    return case
