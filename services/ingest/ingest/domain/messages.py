"""Which parser reads a message, and the one entry point the handler and the CLI share."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ingest.domain.csv_feed import parse_csv
from ingest.domain.fhir import parse_fhir
from ingest.domain.model import ParsedMessage, Rejected

FeedFormat = Literal["fhir", "csv"]
CONTENT_TYPES: dict[str, FeedFormat] = {
    "application/fhir+json": "fhir",
    "application/json": "fhir",
    "text/csv": "csv",
}
FORMAT_CONTENT_TYPE = {"fhir": "application/fhir+json", "csv": "text/csv"}


def detect_format(content_type: str | None, raw: bytes) -> FeedFormat:
    """The publisher's content-type header decides; without one, the first byte does."""
    if content_type is not None:
        fmt = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        if fmt is None:
            raise Rejected(
                "CONTENT_TYPE_UNSUPPORTED", "content-type header names no supported format"
            )
        return fmt
    return "fhir" if raw.lstrip()[:1] in (b"{", b"[") else "csv"


def parse_message(
    fmt: FeedFormat, raw: bytes, message_key: str | None, received: dt.date
) -> ParsedMessage:
    if not raw.strip():
        raise Rejected("EMPTY_MESSAGE", "the message is empty")
    if fmt == "fhir":
        return parse_fhir(raw, message_key, received)
    return parse_csv(raw, received)
