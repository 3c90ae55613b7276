"""HL7 v2.x ER7 messages (D36 widened the set): ADT A01-A08/A28/A31 (patient registered,
admitted, transferred, discharged or updated), A11-A13 (cancellations: identity only), A18/A34/
A39/A40/A47 (merges and identifier changes), ORU^R01 and OUL (results), ORM^O01 and OML (orders),
MDM (document metadata only); FHS/BHS batches of them in one message. Segments read: MSH, PID,
PV1, DG1, AL1, PR1, OBR, OBX, SPM, TXA, MRG.

Parsing (encoding characters from MSH-1/MSH-2, repetitions, components, escape sequences) is
``hl7v2_reader``'s, which reads exactly what python-hl7 reads but at a fraction of its CPU cost
(D-ingest-8); this module only maps fields to the records. Every failure to read malformed input
becomes a rejection with a stable reason code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from ingest.domain.model import (
    ClinicalEvent,
    ParsedMessage,
    PatientIdentity,
    PatientPart,
    RawIdentity,
    Rejected,
)

# Triggers whose PID is a patient registered or updated and whose PV1/DG1/OBX are events.
PATIENT_TYPES = frozenset(f"ADT^A{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 28, 31))
# Cancellations: the PID still updates the identity; the PV1 describes a visit that did not
# happen (A11 admit, A12 transfer, A13 discharge cancelled), so it is no event.
CANCEL_TYPES = frozenset({"ADT^A11", "ADT^A12", "ADT^A13"})
# PID (surviving/new) + MRG (retired/old) pairs: merges and identifier changes (D-ingest-4, D36).
MERGE_TYPES = frozenset({"ADT^A18", "ADT^A34", "ADT^A39", "ADT^A40", "ADT^A47"})
RESULT_TYPES = frozenset({"ORU^R01", "OUL^R21", "OUL^R22", "OUL^R23", "OUL^R24"})
ORDER_TYPES = frozenset({"ORM^O01", "OML^O21", "OML^O33", "OML^O35"})
DOCUMENT_TYPES = frozenset(f"MDM^T{n:02d}" for n in range(1, 12))
SUPPORTED_TYPES = (
    PATIENT_TYPES | CANCEL_TYPES | MERGE_TYPES | RESULT_TYPES | ORDER_TYPES | DOCUMENT_TYPES
)
MRN_TYPES = frozenset({"MR", "PI", "PT", "MRN"})
RRN_TYPES = frozenset({"NNKOR", "RRN", "NI", "NN"})
PATIENT_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0004"
SPECIMEN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0487"
DOCUMENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0270"
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


def content_message_id(raw: bytes) -> str:
    """D36: the id of a message without MSH-10 (or a batch without BHS-11/FHS-11): ``sha256-``
    and the first 32 hex digits of SHA-256 over its segments with line ends made ``\\r`` and
    MLLP framing removed, so a resend of the same message is the same message."""
    canonical = b"\r".join(
        segment
        for line in _LINE_BREAK.split(raw.strip(b" \t\r\n\x0b\x1c\x00"))
        if (segment := line.strip(b" \t\x00"))
    )
    return "sha256-" + hashlib.sha256(canonical).hexdigest()[:32]


def is_batch(raw: bytes) -> bool:
    """D36: a payload that starts with FHS or BHS is a batch. (Several MSH without a batch
    header stay one message, as before: files are split per MSH by ``split_hl7_stream``.)"""
    return raw.lstrip(b" \t\r\n\x0b\x00")[:3] in (b"FHS", b"BHS")


def parse_hl7v2(raw: bytes, fallback_message_id: str | None, received: dt.date) -> ParsedMessage:
    """D36: one HL7 v2 message, or an FHS/BHS batch of them (``parse_hl7_batch``)."""
    if is_batch(raw):
        return parse_hl7_batch(raw, fallback_message_id, received)
    return _parse_one(raw, fallback_message_id, received)


def parse_hl7_batch(
    raw: bytes, fallback_message_id: str | None, received: dt.date
) -> ParsedMessage:
    """D36: a batch (FHS/BHS ... BTS/FTS) is one message: its id
    is BHS-11 (batch control id), else FHS-11 (file control id), else the message key, else the
    content hash; its patients are every inner message's patients, in order. One inner message
    refused refuses the batch (reason of that message, its position named): a batch is applied
    whole or not at all, and the dead letter keeps all of it for the resend."""
    text = raw.decode("utf-8", "replace")
    headers: dict[str, list[str]] = {}
    for line in re.split(r"[\r\n\x0b\x1c]+", text):
        line = line.strip()
        if line[:3] in ("FHS", "BHS") and len(line) > 3:
            # The first of each: BHS-n (like MSH-n) is element n-1 after splitting.
            headers.setdefault(line[:3], line.split(line[3], 12))
    batch_id = next(
        (
            fields[10].strip()
            for name in ("BHS", "FHS")
            if len(fields := headers.get(name, [])) > 10 and fields[10].strip()
        ),
        None,
    )
    flags: tuple[str, ...] = ()
    if not batch_id:
        batch_id = fallback_message_id
    if not batch_id:
        batch_id, flags = content_message_id(raw), ("MESSAGE_ID_FROM_CONTENT",)
    messages = list(split_hl7_stream(raw))
    if not messages:
        raise Rejected("HL7_NO_MSH", "the batch holds no message")
    parts: list[PatientPart] = []
    for position, message in enumerate(messages, start=1):
        try:
            parsed = _parse_one(message, None, received)
        except Rejected as rejected:
            raise Rejected(
                rejected.reason_code, f"message {position} of the batch: {rejected.message}"
            ) from None
        parts.extend(parsed.parts())
    if not parts:
        raise Rejected("HL7_PID_MISSING", "no message of the batch names a patient")
    return ParsedMessage.of_parts(batch_id, parts, message_type="batch", flags=flags)


def _parse_one(raw: bytes, fallback_message_id: str | None, received: dt.date) -> ParsedMessage:
    message, msh = read_er7(raw)
    message_type = f"{msh.get(9, 1)}^{msh.get(9, 2)}".upper()
    if message_type not in SUPPORTED_TYPES:
        raise Rejected(
            "HL7_MESSAGE_TYPE_UNSUPPORTED",
            "MSH-9 is not an ADT, ORU, OUL, ORM, OML or MDM trigger ingest reads",
        )
    flags: tuple[str, ...] = ()
    message_id = msh.get(10) or fallback_message_id
    if not message_id:
        message_id, flags = content_message_id(raw), ("MESSAGE_ID_FROM_CONTENT",)
    segments = _segments(message)
    if not any(name == "PID" for name, _ in segments):
        raise Rejected("HL7_PID_MISSING", "the message has no PID segment")
    sent = _ts_date(msh.get(7))
    if message_type in MERGE_TYPES:
        merged = _merge(message_id, segments, received, message_type)
        return ParsedMessage(
            merged.message_id,
            merged.identity,
            message_type=message_type,
            merges=merged.merges,
            flags=flags,
        )
    parts = [_patient_group(group, sent, received, message_type) for group in _pid_groups(segments)]
    return ParsedMessage.of_parts(message_id, parts, message_type=message_type, flags=flags)


def _pid_groups(
    segments: list[tuple[str, Er7Segment]],
) -> list[list[tuple[str, Er7Segment]]]:
    """D36: each PID and the segments after it up to the next PID are one patient's (an ORU or
    OUL may carry several patients); segments before the first PID belong to the first."""
    groups: list[list[tuple[str, Er7Segment]]] = []
    header: list[tuple[str, Er7Segment]] = []
    for name, segment in segments:
        if name == "PID":
            groups.append([(name, segment)])
        elif groups:
            groups[-1].append((name, segment))
        else:
            header.append((name, segment))
    groups[0][1:1] = header
    return groups


def _patient_group(
    group: list[tuple[str, Er7Segment]], sent: dt.date | None, received: dt.date, kind: str
) -> PatientPart:
    identity = validate_identity(_raw_identity(group[0][1]), received)
    if kind in CANCEL_TYPES:
        events: list[ClinicalEvent] = []
    elif kind in DOCUMENT_TYPES:
        events = _documents(group, sent)
    else:
        events = _events(group, sent, orders=kind in ORDER_TYPES)
    return PatientPart(identity.local_patient_no, identity, tuple(events))


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
    message_id: str, segments: list[tuple[str, Er7Segment]], received: dt.date, kind: str
) -> ParsedMessage:
    """D-ingest-4: ADT^A40 carries one or more PID (surviving) + MRG (retired) pairs, each one
    merge (references only); the identity record too when the PID carries enough for one, and
    ``HL7_MERGE_INVALID`` without a usable MRG-1. D36: A18, A34 and A39 (merges of patient
    information or persons) and A47 (the patient's identifier changed from MRG-1 to PID-3) are
    read the same way: afterwards the records of the old number are the new number's."""
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
            "HL7_MERGE_INVALID", f"{kind} has no MRG-1 naming a patient other than its PID-3"
        )
    identity: PatientIdentity | None = validate_identity(first, received)
    if identity is not None and "IDENTITY_INSUFFICIENT" in identity.quality_flags:
        identity = None  # a merge notice often carries only the number and name
    return ParsedMessage(message_id, identity, (), message_type=kind, merges=tuple(merges))


def _documents(segments: list[tuple[str, Er7Segment]], sent: dt.date | None) -> list[ClinicalEvent]:
    """D36: MDM gives document metadata only: one DocumentReference per TXA (TXA-2 document
    type, TXA-4 activity or TXA-6 origination date). The document's text (OBX) is never read."""
    events: list[ClinicalEvent] = []
    for name, segment in segments:
        if name != "TXA":
            continue
        flags: list[str] = []
        kind = segment.get(2, 1)
        events.append(
            ClinicalEvent(
                resource_type="DocumentReference",
                event_date=_date(segment.get(4), flags) or _date(segment.get(6), flags) or sent,
                code_system=DOCUMENT_TYPE_SYSTEM if kind else None,
                code=kind or None,
                quality_flags=tuple(flags),
            )
        )
    return events


def _order(obr: Er7Segment, sent: dt.date | None) -> ClinicalEvent | None:
    """D36: an OBR of an order message (ORM, OML) is a ServiceRequest: OBR-4 universal service
    id, OBR-6 requested or OBR-7 observation date."""
    flags: list[str] = []
    code = obr.get(4, 1) or None
    if code is None:
        return None
    system, _ = v2_coding_system(obr.get(4, 3))
    return ClinicalEvent(
        resource_type="ServiceRequest",
        event_date=_date(obr.get(6), flags) or _date(obr.get(7), flags) or sent,
        code_system=system,
        code=code,
        quality_flags=tuple(flags),
    )


def _events(
    segments: list[tuple[str, Er7Segment]], sent: dt.date | None, orders: bool = False
) -> list[ClinicalEvent]:
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
            if orders and (order := _order(segment, sent)) is not None:
                events.append(order)
        elif name == "SPM":
            event = _specimen(segment)
            specimens = list(event.specimen_refs)
            events.append(event)
        elif name == "OBX":
            events.append(_observation(segment, order_date or sent, specimens))
        elif name in ("AL1", "PR1") and (coded := _coded(segment, name, sent)) is not None:
            events.append(coded)
    return events


def _coded(segment: Er7Segment, name: str, sent: dt.date | None) -> ClinicalEvent | None:
    """D36: an AL1 is an AllergyIntolerance (AL1-3 allergen code, AL1-6 identification date), a
    PR1 a Procedure (PR1-3 procedure code, PR1-5 date); without a code, nothing. A PR1 coded in
    HIRA EDI (``EDI``) keeps that system, as DG1 and OBX codes do."""
    flags: list[str] = []
    code = segment.get(3, 1) or None
    if code is None:
        return None
    system, _ = v2_coding_system(segment.get(3, 3))
    when = segment.get(6) if name == "AL1" else segment.get(5)
    return ClinicalEvent(
        resource_type="AllergyIntolerance" if name == "AL1" else "Procedure",
        event_date=_date(when, flags) or sent,
        code_system=system,
        code=code,
        quality_flags=tuple(flags),
    )


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
