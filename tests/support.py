"""Plain helpers shared by tests in different folders (unit and integration); fixtures stay in the
conftest files. Imported relatively (``from ...support import strings``)."""

from __future__ import annotations

import base64
import contextlib


def strings(value: object) -> list[str]:
    """Every string in a JSON document, and what base64 text among them decodes to."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    if not isinstance(value, str):
        return []
    found = [value]
    with contextlib.suppress(ValueError):
        found.append(base64.b64decode(value, validate=True).decode("latin-1"))
    return found
