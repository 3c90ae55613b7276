"""Consent (D-pseudonymizer-5): what a person's consent entries allow, and what an event changes.

Consent events name a person_id (the programme's registry) or a patient_ref (a hospital); a
withdrawal by patient_ref that arrives before linkage decided the patient waits for the decision.
A list of datasets that is empty means every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ConsentAction = Literal["RECORD_ONLY", "PEND_WITHDRAWAL", "CLEAR_PENDING", "GRANT", "WITHDRAW"]


def covers(datasets: list[str] | None, dataset: str) -> bool:
    """D-pseudonymizer-5: an entry covers a dataset it names, or every dataset if it names none;
    no entry (None) covers nothing."""
    return datasets is not None and (not datasets or dataset in datasets)


@dataclass(frozen=True, slots=True)
class Consent:
    """A person's consent entries: the datasets withdrawn from and granted (None: no entry)."""

    withdrawn: list[str] | None
    granted: list[str] | None

    def withdrawn_from(self, dataset: str) -> bool:
        return covers(self.withdrawn, dataset)

    def granted_for(self, dataset: str) -> bool:
        return covers(self.granted, dataset)


def consent_action(kind: str, person_known: bool, names_patient: bool) -> ConsentAction:
    """D-pseudonymizer-5: what a consent event changes. A known person's grant replaces any
    withdrawal, a withdrawal revokes the grant and stops further release (with notices); for a
    patient_ref not linked yet a withdrawal waits for the decision and a grant cancels a waiting
    withdrawal; an event naming neither a known person nor a patient is only recorded."""
    if person_known:
        return "GRANT" if kind == "GRANTED" else "WITHDRAW"
    if not names_patient:
        return "RECORD_ONLY"
    return "PEND_WITHDRAWAL" if kind == "WITHDRAWN" else "CLEAR_PENDING"
