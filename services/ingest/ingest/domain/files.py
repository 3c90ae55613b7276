"""How a hospital's feed file becomes Kafka messages: one FHIR document per line, one CSV row
(with the header repeated) per message, one HL7 v2 message per MSH (MLLP frames or line breaks).
Pure: bytes in, messages out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from ingest.domain.csv_feed import DEFAULT_MAPPING, CsvMapping
from ingest.domain.hl7v2 import split_hl7_stream
from ingest.domain.messages import FORMAT_CONTENT_TYPE, FeedFormat


@dataclass(frozen=True, slots=True)
class FeedMessage:
    key: bytes | None
    value: bytes
    content_type: str


def split_feed(
    fmt: FeedFormat, data: bytes, csv_mapping: CsvMapping = DEFAULT_MAPPING
) -> Iterator[FeedMessage]:
    if fmt == "fhir":
        yield from _split_ndjson(data)
    elif fmt == "hl7":
        yield from _split_hl7(data)
    else:
        yield from _split_csv(data, csv_mapping)


def _split_hl7(data: bytes) -> Iterator[FeedMessage]:
    for message in split_hl7_stream(data):
        yield FeedMessage(_msh_control_id(message), message, FORMAT_CONTENT_TYPE["hl7"])


def _msh_control_id(message: bytes) -> bytes | None:
    """MSH-10 without a full parse (the key only routes and deduplicates; ingest re-reads it)."""
    if not message.startswith(b"MSH") or len(message) < 4:
        return None
    fields = message.split(b"\r", 1)[0].split(message[3:4])
    # MSH-1 is the separator itself, so MSH-10 is the tenth element after splitting.
    return fields[9].strip() or None if len(fields) > 9 else None


def _split_ndjson(data: bytes) -> Iterator[FeedMessage]:
    content_type = FORMAT_CONTENT_TYPE["fhir"]
    stripped = data.strip()
    # A file holding one pretty-printed resource is one message, not one message per line.
    if stripped.startswith(b"{") and b"\n" in stripped:
        try:
            json.loads(stripped)
        except ValueError:
            pass
        else:
            yield FeedMessage(_json_id(stripped), stripped, content_type)
            return
    for line in data.splitlines():
        if line.strip():
            yield FeedMessage(_json_id(line), line, content_type)


def _json_id(line: bytes) -> bytes | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        return str(document["id"]).encode()
    return None


def _split_csv(data: bytes, mapping: CsvMapping) -> Iterator[FeedMessage]:
    text = data.decode("utf-8-sig", errors="surrogateescape")
    lines = text.splitlines(keepends=True)
    if not lines:
        return
    header_line = lines[0].rstrip("\r\n")
    header = next(csv.reader([header_line], delimiter=mapping.delimiter), [])
    id_name = mapping.column("message_id")
    id_column = header.index(id_name) if id_name in header else None
    content_type = FORMAT_CONTENT_TYPE["csv"]
    # csv.reader over the rest keeps quoted line breaks inside one row.
    for row in csv.reader(io.StringIO("".join(lines[1:])), delimiter=mapping.delimiter):
        if not row:
            continue
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n", delimiter=mapping.delimiter).writerow(row)
        value = (header_line + "\n" + buffer.getvalue()).encode("utf-8", errors="surrogateescape")
        key = row[id_column].encode() if id_column is not None and id_column < len(row) else None
        yield FeedMessage(key or None, value, content_type)
