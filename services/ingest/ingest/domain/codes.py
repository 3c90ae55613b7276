"""Clinical code systems hospitals send: KCD (with its version), HIRA EDI, KD drug codes, LOINC.

KR Core's canonical URIs where HL7 Korea publishes one (kostat-kcd-N, hira-edi-procedure,
hira-edi-medication); HL7 v2 coding-system names are mapped onto the same URIs so that every
format yields the same clinical record.
"""

from __future__ import annotations

import datetime as dt
import re

KCD_SYSTEM_PREFIX = "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-"
HIRA_EDI_PROCEDURE = "http://www.hl7korea.or.kr/CodeSystem/hira-edi-procedure"
HIRA_EDI_MEDICATION = "http://www.hl7korea.or.kr/CodeSystem/hira-edi-medication"
# D36: KR Core's KD code system (CodeSystem kpis-kdcode, HL7 Korea's FSH sources, 1.0.2); the
# URI ingest used before it was verified is read as the same system.
KD_CODE_SYSTEM = "http://www.hl7korea.or.kr/CodeSystem/kpis-kdcode"
LEGACY_KD_CODE_SYSTEM = "http://www.hl7korea.or.kr/CodeSystem/kd-code"
LOINC_SYSTEM = "http://loinc.org"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
KCD9_SINCE = dt.date(2026, 1, 1)
KCD_VERSIONS = frozenset({"6", "7", "8", "9"})

# HL7 v2 coding-system names (table 0396 and local habits) -> URI.
_V2_SYSTEMS = {
    "LN": LOINC_SYSTEM, "LOINC": LOINC_SYSTEM, "I10": ICD10_SYSTEM, "ICD10": ICD10_SYSTEM,
    "EDI": HIRA_EDI_PROCEDURE, "HIRA": HIRA_EDI_PROCEDURE, "EDI-PROC": HIRA_EDI_PROCEDURE,
    "EDI-MED": HIRA_EDI_MEDICATION, "KD": KD_CODE_SYSTEM, "KDCODE": KD_CODE_SYSTEM,
}  # fmt: skip
_V2_KCD = re.compile(r"^KCD[-_ ]?(\d{1,2})?$")
_KCD_CODE = re.compile(r"^[A-Z]\d{2}(\.?[0-9A-Z]{1,4})?$")


def infer_kcd_version(event_date: dt.date | None) -> str:
    """D7: the KCD version of a diagnosis sent without one, inferred from its date (and flagged):
    KCD-8 applied 2021-2025, KCD-9 since 2026-01-01; undated events get the older version."""
    return "9" if event_date is not None and event_date >= KCD9_SINCE else "8"


def v2_coding_system(name: str) -> tuple[str | None, str | None]:
    """(system URI, KCD version) of an HL7 v2 coding-system name; unknown names are kept as is."""
    text = name.strip().upper()
    if not text:
        return None, None
    kcd = _V2_KCD.match(text)
    if kcd:
        return KCD_SYSTEM_PREFIX + (kcd.group(1) or ""), kcd.group(1)
    return _V2_SYSTEMS.get(text, name.strip()), None


def kcd_flags(code: str) -> list[str]:
    """D-ingest-6: data-quality flags of a KCD code (the code itself is kept as sent)."""
    text = code.strip().upper()
    if not _KCD_CODE.match(text):
        return ["KCD_CODE_INVALID"]
    return [] if "." in text or len(text) == 3 else ["KCD_CODE_WITHOUT_DOT"]


def kd_code_valid(code: str) -> bool:
    """D-ingest-6: KD drug codes: 13 digits, 880 (Korea's GS1 prefix) + maker + item + EAN-13
    check digit (``KD_CODE_INVALID`` when not)."""
    if not re.fullmatch(r"880\d{10}", code):
        return False
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(code[:12]))
    return (10 - total % 10) % 10 == int(code[12])
