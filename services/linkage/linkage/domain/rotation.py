"""D33: a hospital patient whose patient_ref changed because ingest's patient-ref key rotated.

Ingest sends, with each ref, the same patient's refs under every older key version it holds
(newest first). The ref is HMAC(key, hospital, patient number): two refs of one record are the
hospital's own statement that they are one patient, as certain as a record of an already known
ref, so no comparison is asked for. Pure: which refs the index knows comes in as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

# The rule a continued ref's decision names (LinkDecision.rule, the audit event's reason code).
ROTATION_RULE: Final = "patient-ref-rotation"
ROTATION_REASON: Final = "PATIENT_REF_ROTATED"


def known_predecessors(
    previous_refs: Iterable[str], resolve: Callable[[str], str | None]
) -> list[str]:
    """D33: the refs the index knows for the patient's older refs (``resolve`` follows a hospital
    merge's alias to a known ref, or answers None), newest first, each once. Empty: the patient
    is new under every key version held, and is linked like any new record."""
    found: list[str] = []
    for ref in previous_refs:
        known = resolve(ref)
        if known is not None and known not in found:
            found.append(known)
    return found
