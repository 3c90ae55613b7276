"""Which parser reads a message, and the one entry point the handler and the CLI share."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ingest.domain.csv_feed import DEFAULT_MAPPING, CsvMapping, parse_csv
from ingest.domain.fhir import parse_fhir
from ingest.domain.hl7v2 import parse_hl7v2
from ingest.domain.model import ParsedMessage, Rejected

FeedFormat = Literal["fhir", "csv", "hl7"]
FEED_FORMATS: tuple[FeedFormat, ...] = ("hl7", "fhir", "csv")
CONTENT_TYPES: dict[str, FeedFormat] = {
    "application/fhir+json": "fhir",
    "application/json": "fhir",
    "text/csv": "csv",
    "x-application/hl7-v2+er7": "hl7",
    "application/hl7-v2": "hl7",
    "application/hl7-v2+er7": "hl7",
}
FORMAT_CONTENT_TYPE = {
    "fhir": "application/fhir+json",
    "csv": "text/csv",
    "hl7": "x-application/hl7-v2+er7",
}


def detect_format(content_type: str | None, raw: bytes) -> FeedFormat:
    """The publisher's content-type header decides; without one, the first bytes do."""
    if content_type is not None:
        fmt = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        if fmt is None:
            raise Rejected(
                "CONTENT_TYPE_UNSUPPORTED", "content-type header names no supported format"
            )
        return fmt
    head = raw.lstrip()[:4]
    if head[:1] in (b"{", b"["):
        return "fhir"
    if head[:3] == b"MSH" or head[:1] == b"\x0b":
        return "hl7"
    return "csv"


def parse_message(
    fmt: FeedFormat,
    raw: bytes,
    message_key: str | None,
    received: dt.date,
    csv_mapping: CsvMapping = DEFAULT_MAPPING,
) -> ParsedMessage:
    if not raw.strip():
        raise Rejected("EMPTY_MESSAGE", "the message is empty")
    if fmt == "fhir":
        return parse_fhir(raw, message_key, received)
    if fmt == "hl7":
        return parse_hl7v2(raw, message_key, received)
    return parse_csv(raw, received, csv_mapping)
