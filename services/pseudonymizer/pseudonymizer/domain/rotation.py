"""D33: records of a hospital patient whose patient_ref changed because ingest's patient-ref key
rotated.

Every clinical record and consent event by ref carries, besides its ref, the same patient's refs
under the older key versions ingest holds (newest first). Linkage decides a new ref only when an
identity record arrives under it; a patient who sends only clinical data after a rotation would
otherwise wait for a decision forever. The older ref's decision is the hospital patient's (the
same hospital and patient number), so it places the record. Pure: which refs have a decision
comes in as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def deciding_ref(
    patient_ref: str, previous_refs: Iterable[str], decided: Callable[[str], bool]
) -> str | None:
    """D33: the ref whose link decision places a record of ``patient_ref``: its own once linkage
    decided it, else the newest of its older refs that has a decision (the patient as last seen
    before the rotation: same person, same pseudonym), else None (the record waits, D18)."""
    if decided(patient_ref):
        return patient_ref
    return next((ref for ref in previous_refs if decided(ref)), None)
