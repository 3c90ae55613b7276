"""The patient reference (D4) and how it survives a rotation of its key (D33).

``patient_ref = "pr_" + HMAC(key, hospital \\x1f patient number)``: deterministic, so it is the
join key of everything downstream (linkage's source records, the pseudonymizer's decisions,
releases and withdrawals). Rotating the key changes every patient's ref; so each record carries,
besides the ref under the version in force, the refs under every older version ingest still
holds, and the services downstream recognise a patient they know under an older ref.
No clock: the versions in use (``biostream.keyring.KeyRing.in_use_at``: chosen by the input
record's time) come in as an argument.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from biostream.keyring import KeyVersion


def patient_ref(key: bytes, hospital: str, local_patient_no: str) -> str:
    """D4: the join between identity and clinical data, a keyed HMAC of (hospital, patient number):
    keyed, so the small space of patient numbers cannot be enumerated back from the ref."""
    mac = hmac.new(key, f"{hospital}\x1f{local_patient_no}".encode(), hashlib.sha256)
    return "pr_" + mac.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PatientRefs:
    """A hospital patient's ref under the version in force, and under each older one."""

    current: str
    previous: list[str]


def patient_refs(in_use: Sequence[KeyVersion], hospital: str, local_patient_no: str) -> PatientRefs:
    """D33: the ref under the patient-ref key version in force for the input (the first of
    ``in_use``: the feed message's Kafka time, or the desk's recording time, never a service's
    clock, so a replay chooses the same version), and ``previous``: the refs under every older
    version held (the rest, newest first), so a patient last seen under any of them is still
    recognised. Versions not active yet are not in ``in_use``: a staged key changes nothing until
    its time."""
    current, *older = in_use
    return PatientRefs(
        patient_ref(current.material, hospital, local_patient_no),
        [patient_ref(v.material, hospital, local_patient_no) for v in older],
    )
