"""HL7 v2.x ER7 messages: ADT A01/A04/A08/A28/A31 (patient registered or updated), A40 (merge),
ORU^R01 (results). Segments read: MSH, PID, PV1, DG1, OBR, OBX, SPM, MRG.

Parsing (encoding characters from MSH-1/MSH-2, repetitions, components, escape sequences) is
``hl7v2_reader``'s, which reads exactly what python-hl7 reads but at a fraction of its CPU cost
(D-ingest-8); this module only maps fields to the records. Every failure to read malformed input
becomes a rejection with a stable reason code.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from ingest.domain.codes import (
    KCD_SYSTEM_PREFIX,
    KCD_VERSIONS,
    infer_kcd_version,
    kcd_flags,
    v2_coding_system,
)
from ingest.domain.hl7v2_reader import Er7Message, Er7Segment, Er7Unreadable
from ingest.domain.identity import validate_identity
from ingest.domain.model import ClinicalEvent, ParsedMessage, PatientIdentity, RawIdentity, Rejected

SUPPORTED_TYPES = frozenset(
    {"ADT^A01", "ADT^A04", "ADT^A08", "ADT^A28", "ADT^A31", "ADT^A40", "ORU^R01"}
)
MRN_TYPES = frozenset({"MR", "PI", "PT", "MRN"})
RRN_TYPES = frozenset({"NNKOR", "RRN", "NI", "NN"})
PATIENT_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0004"
SPECIMEN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0487"
MLLP_START, MLLP_END = b"\x0b", b"\x1c"
_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_SEX = {"M": "M", "F": "F"}
_TS = re.compile(r"\d{8}(\d{2,6}(\.\d{1,4})?)?([+-]\d{4})?")


def split_hl7_stream(data: bytes) -> Iterator[bytes]:
    """Messages of a file or stream: MLLP frames (``0x0B ... 0x1C 0x0D``) or plain ER7 with any
    line break, several messages per file, batch/file header and trailer segments dropped.
    Lines before the first MSH stay together as one message (so they are rejected, not lost)."""
    frames = re.split(rb"[\x0b\x1c]", data) if MLLP_START in data or MLLP_END in data else [data]
    for frame in frames:
        current: list[bytes] = []
        for line in _LINE_BREAK.split(frame):
            segment = line.strip(b" \t\x00")
            if not segment or segment[:3] in _BATCH_SEGMENTS:
                continue
            if segment[:3] == b"MSH" and current:
                yield b"\r".join(current) + b"\r"
                current = []
            current.append(segment)
        if current:
            yield b"\r".join(current) + b"\r"


def parse_hl7v2(raw: bytes, fallback_message_id: str | None, received: dt.date) -> ParsedMessage:
    message, msh = read_er7(raw)
    message_type = f"{msh.get(9, 1)}^{msh.get(9, 2)}".upper()
    if message_type not in SUPPORTED_TYPES:
        raise Rejected(
            "HL7_MESSAGE_TYPE_UNSUPPORTED",
            "MSH-9 is not one of ADT^A01/A04/A08/A28/A31/A40 or ORU^R01",
        )
    message_id = msh.get(10) or fallback_message_id
    if not message_id:
        raise Rejected("MESSAGE_ID_MISSING", "MSH-10 (message control id) is empty")
    segments = _segments(message)
    pids = [s for name, s in segments if name == "PID"]
    if not pids:
        raise Rejected("HL7_PID_MISSING", "the message has no PID segment")
    pid = pids[0]
    sent = _ts_date(msh.get(7))
    if message_type == "ADT^A40":
        return _merge(message_id, segments, received)
    identity = validate_identity(_raw_identity(pid), received)
    events = _events(segments, sent)
    return ParsedMessage(message_id, identity, tuple(events), message_type=message_type)


def read_er7(raw: bytes) -> tuple[Er7Message, Er7Segment]:
    """D-ingest-8: the message's bytes (UTF-8, else EUC-KR/CP949) read by the ER7 reader, with its
    MSH segment; ``Rejected`` (HL7_ENCODING, HL7_NO_MSH, HL7_UNPARSEABLE) where python-hl7 could
    not read it either. Tests hold it to the python-hl7 reference."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            # Older Korean hospital systems send EUC-KR (KS X 1001); CP949 is its superset.
            text = raw.decode("cp949")
        except UnicodeDecodeError:
            raise Rejected("HL7_ENCODING", "the message is neither UTF-8 nor EUC-KR text") from None
    text = text.strip(" \t\r\n\x0b\x1c\x00")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if not text.startswith("MSH") or len(text) < 8:
        raise Rejected("HL7_NO_MSH", "the message does not start with an MSH segment")
    separator = text[3]
    if separator.isalnum() or separator.isspace() or separator in "\r":
        raise Rejected("HL7_UNPARSEABLE", "MSH-1 (field separator) is not a delimiter")
    encoding = text[4 : text.find(separator, 4)] if text.find(separator, 4) > 4 else ""
    if len(set(encoding)) != len(encoding) or separator in encoding or len(encoding) < 2:
        raise Rejected("HL7_UNPARSEABLE", "MSH-2 (encoding characters) is not usable")
    try:
        message = Er7Message(text)
        msh = message.segment("MSH")
    except Er7Unreadable:
        msh = None
    if msh is None:
        raise Rejected("HL7_UNPARSEABLE", "the message is not well-formed HL7 v2")
    return message, msh


def _segments(message: Er7Message) -> list[tuple[str, Er7Segment]]:
    return [(segment.name, segment) for segment in message.segments]


def _ts_text(value: str) -> str | None:
    """HL7 TS/DTM (``YYYYMMDD[HHMM[SS]][+ZZZZ]``) as ``YYYY-MM-DD`` for the shared validators;
    anything else is passed on unchanged so that the validator rejects it by name."""
    if not value:
        return None
    if _TS.fullmatch(value):
        return f"{value[0:4]}-{value[4:6]}-{value[6:8]}"
    return value


def _ts_date(value: str) -> dt.date | None:
    text = _ts_text(value)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _raw_identity(pid: Er7Segment) -> RawIdentity:
    """The PID segment's identity as sent. D-ingest-3: the patient number is PID-3's MR/PI/PT
    entry, else its first entry that is not a registration number (then PID-2)."""
    mrn = rrn = untyped = None
    for rep in range(1, max(pid.repetitions(3), 1) + 1):
        value = pid.get(3, 1, rep)
        kind = pid.get(3, 5, rep).upper()
        if not value:
            continue
        if kind in RRN_TYPES:
            rrn = rrn or value
        elif kind in MRN_TYPES:
            mrn = mrn or value
        else:
            untyped = untyped or value
    # PID-3 is the patient identifier list: without an MR-typed entry, its first other entry is
    # the hospital's patient number (many interfaces send no or local identifier type codes).
    mrn = mrn or untyped
    # Some Korean interfaces put the registration number in PID-19 (SSN) or PID-2.
    rrn = rrn or pid.get(19) or None
    mrn = mrn or pid.get(2) or None

    family = given = full = latin = None
    for rep in range(1, max(pid.repetitions(5), 1) + 1):
        name_family, name_given = pid.get(5, 1, rep), pid.get(5, 2, rep)
        text = " ".join(p for p in (name_family, name_given) if p)
        if not text:
            continue
        if text.isascii():
            latin = latin or text
        elif family is None and given is None and full is None:
            if name_given:
                family, given = name_family or None, name_given
            else:
                # Many Korean interfaces send the whole name in XPN-1: split it like name.text.
                full = name_family

    street, other, city, state, postal = (pid.get(11, c) for c in (1, 2, 3, 4, 5))
    address = " ".join(p for p in (state, city, street, other) if p) or None
    phone = (
        pid.get(13, 1)
        or pid.get(13, 12)
        or pid.get(13, 6) + pid.get(13, 7)
        or pid.get(14, 1)
        or None
    )
    return RawIdentity(
        local_patient_no=mrn,
        family_name=family,
        given_name=given,
        full_name=full,
        name_latin=latin,
        birth_date=_ts_text(pid.get(7)),
        sex=_SEX.get(pid.get(8).upper()),
        rrn=rrn,
        phone=phone,
        address=address,
        postal_code=postal or None,
        province_code=pid.get(11, 9) or None,  # XAD-9 county/parish code: 시도 code if sent
    )


def _merge(
    message_id: str, segments: list[tuple[str, Er7Segment]], received: dt.date
) -> ParsedMessage:
    """D-ingest-4: ADT^A40 carries one or more PID (surviving) + MRG (retired) pairs, each one
    merge (references only); the identity record too when the PID carries enough for one, and
    ``HL7_MERGE_INVALID`` without a usable MRG-1."""
    merges: list[tuple[str, str]] = []
    surviving: str | None = None
    first: RawIdentity | None = None
    for name, segment in segments:
        if name == "PID":
            raw = _raw_identity(segment)
            if not raw.local_patient_no:
                raise Rejected(
                    "PATIENT_NUMBER_MISSING", "a PID-3 of the merge has no patient number"
                )
            surviving = raw.local_patient_no.strip()
            first = first or raw
        elif name == "MRG" and surviving is not None:
            prior = next(
                (
                    segment.get(1, 1, rep)
                    for rep in range(1, max(segment.repetitions(1), 1) + 1)
                    if segment.get(1, 1, rep) and segment.get(1, 5, rep).upper() not in RRN_TYPES
                ),
                "",
            )
            if prior and prior != surviving and (surviving, prior) not in merges:
                merges.append((surviving, prior))
    if not merges or first is None:
        raise Rejected(
            "HL7_MERGE_INVALID", "ADT^A40 has no MRG-1 naming a patient other than its PID-3"
        )
    identity: PatientIdentity | None
    try:
        identity = validate_identity(first, received)
    except Rejected as rejected:
        if rejected.reason_code != "IDENTITY_INSUFFICIENT":
            raise
        identity = None  # a merge notice often carries only the number and name
    return ParsedMessage(message_id, identity, (), message_type="ADT^A40", merges=tuple(merges))


def _events(segments: list[tuple[str, Er7Segment]], sent: dt.date | None) -> list[ClinicalEvent]:
    events: list[ClinicalEvent] = []
    order_date: dt.date | None = None
    specimens: list[str] = []
    for index, (name, segment) in enumerate(segments):
        if name == "PV1":
            event = _encounter(segment)
            if event is not None:
                events.append(event)
        elif name == "DG1":
            events.append(_diagnosis(segment, f"segment {index + 1} ({name})", sent))
        elif name == "OBR":
            order_date = _ts_date(segment.get(7)) or order_date
            specimens = [v for v in (segment.get(3), segment.get(2)) if v][:1]
        elif name == "SPM":
            event = _specimen(segment)
            specimens = list(event.specimen_refs)
            events.append(event)
        elif name == "OBX":
            events.append(_observation(segment, order_date or sent, specimens))
    return events


def _date(value: str, flags: list[str]) -> dt.date | None:
    """An event date; an unreadable one is dropped and flagged (the event itself is kept)."""
    if not value:
        return None
    parsed = _ts_date(value)
    if parsed is None:
        flags.append("EVENT_DATE_INVALID")
    return parsed


def _encounter(pv1: Er7Segment) -> ClinicalEvent | None:
    flags: list[str] = []
    patient_class = pv1.get(2).upper()
    admitted = _date(pv1.get(44), flags)
    if not patient_class and admitted is None:
        return None
    return ClinicalEvent(
        resource_type="Encounter",
        event_date=admitted,
        code_system=PATIENT_CLASS_SYSTEM if patient_class else None,
        code=patient_class or None,
        quality_flags=tuple(flags),
    )


def _diagnosis(dg1: Er7Segment, position: str, sent: dt.date | None) -> ClinicalEvent:
    flags: list[str] = []
    code = dg1.get(3, 1) or None
    system_name = dg1.get(3, 3) or dg1.get(2)
    event_date = _date(dg1.get(5), flags) or sent
    system, version = v2_coding_system(system_name)
    if system is None:
        system = KCD_SYSTEM_PREFIX
        flags.append("KCD_SYSTEM_ASSUMED")
    if system.startswith(KCD_SYSTEM_PREFIX):
        version = version or dg1.get(3, 7) or None  # CE/CWE-7: coding system version id
        if version is not None and version not in KCD_VERSIONS:
            raise Rejected("KCD_VERSION_INVALID", f"{position}: DG1-3 KCD version is not 6-9")
        if version is None:
            version = infer_kcd_version(event_date)
            flags.append("KCD_VERSION_INFERRED")
        system = KCD_SYSTEM_PREFIX + version
        if code is not None:
            flags += kcd_flags(code)
    if code is None:
        flags.append("DIAGNOSIS_CODE_MISSING")
    return ClinicalEvent(
        resource_type="Condition",
        event_date=event_date,
        code_system=system,
        code=code,
        code_version=version,
        quality_flags=tuple(flags),
    )


def _observation(
    obx: Er7Segment, fallback_date: dt.date | None, specimens: list[str]
) -> ClinicalEvent:
    flags: list[str] = []
    value_type = obx.get(2).upper()
    system, _ = v2_coding_system(obx.get(3, 3))
    number: float | None = None
    text: str | None = None
    if value_type in ("NM", "SN"):
        # SN: comparator ^ number ^ separator ^ number; a bare comparator-less first number counts.
        candidate = obx.get(5, 2) if value_type == "SN" and obx.get(5, 2) else obx.get(5, 1)
        try:
            number = float(candidate) if candidate else None
        except ValueError:
            flags.append("OBSERVATION_VALUE_NOT_NUMERIC")
        if number is not None and number != number:  # NaN is no measurement
            number = None
            flags.append("OBSERVATION_VALUE_NOT_NUMERIC")
    elif value_type in ("CE", "CWE", "CNE"):
        text = obx.get(5, 1) or None
    elif obx.get(5, 1):
        text = obx.get(5, 1)
    return ClinicalEvent(
        resource_type="Observation",
        event_date=_date(obx.get(14), flags) or fallback_date,
        code_system=system,
        code=obx.get(3, 1) or None,
        value_number=number,
        value_unit=obx.get(6, 1) or None,
        value_text=text,
        specimen_refs=tuple(specimens),
        quality_flags=tuple(flags),
    )


def _specimen(spm: Er7Segment) -> ClinicalEvent:
    # SPM-2 is EIP: placer-assigned ^ filler-assigned identifier (each an EI whose first
    # sub-component is the id). Both are kept as references for the pseudonymizer to replace.
    flags: list[str] = []
    refs = tuple(dict.fromkeys(v for v in (spm.get(2, 1), spm.get(2, 2)) if v))
    kind = spm.get(4, 1)
    return ClinicalEvent(
        resource_type="Specimen",
        event_date=_date(spm.get(17), flags),
        quality_flags=tuple(flags),
        code_system=SPECIMEN_TYPE_SYSTEM if kind else None,
        code=kind or None,
        specimen_refs=refs,
    )
