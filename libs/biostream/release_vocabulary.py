"""The words a release policy is written in: what may be released and how it may be coarsened.

One place, because two services speak it: the pseudonymizer enforces release policies, and the
access service (D45) lets applicants request data and the board approve it in the same words, so
that an approved request is a policy the pseudonymizer can enforce exactly.
"""

from __future__ import annotations

from typing import Literal

RELEASABLE_RECORD_TYPES = frozenset(
    {"Condition", "Observation", "Encounter", "MedicationRequest", "Procedure", "Specimen"}
)
# Clinical content a policy may release. Quasi-identifiers (birth, sex, address, postal code,
# event date) are governed by ``generalisation`` instead; direct identifiers are never available.
RELEASABLE_FIELDS = frozenset(
    {
        "hospital",
        "event_date",
        "code_system",
        "code",
        "code_version",
        "value_number",
        "value_unit",
        "value_text",
        "specimen_ids",
    }
)
# The field holding free text (scrubbed or dropped, never released as written).
FREE_TEXT_FIELD = "value_text"

BirthGeneralisation = Literal["year", "age_band_5", "drop"]
SexGeneralisation = Literal["keep", "drop"]
AddressGeneralisation = Literal["province", "district", "drop"]
EventDateMethod = Literal["shift", "keep", "month", "drop"]
FreeTextHandling = Literal["drop", "scrub"]
MAX_POSTAL_DIGITS = 3
MAX_DATE_SHIFT_DAYS = 365
MAX_MIN_K = 1000
