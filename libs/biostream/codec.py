"""Avro single-object encoding (Avro 1.8+ spec): ``C3 01`` + CRC-64-AVRO fingerprint + body.

Self-describing without a registry service: the reader finds the writer's schema among the
repository's contracts by fingerprint and resolves it against the schema it expects.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from biostream.schemas import SINGLE_OBJECT_MAGIC, Contract, SchemaRegistry

HEADER_LENGTH = 10


class DecodeError(ValueError):
    """A message that is not a readable contract. ``reason_code`` is stable for dead letters."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class AvroCodec:
    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def encode(self, contract_name: str, record: Any) -> bytes:
        contract = self.registry.current(contract_name)
        return encode_with(contract, record)

    def decode(self, data: bytes | None, contract_name: str) -> dict[str, Any]:
        """Decode ``data`` into the current version of ``contract_name``."""
        reader = self.registry.current(contract_name)
        if data is None:
            raise DecodeError("EMPTY_VALUE", "message has no value")
        if len(data) < HEADER_LENGTH or data[:2] != SINGLE_OBJECT_MAGIC:
            raise DecodeError("NOT_SINGLE_OBJECT_AVRO", "value is not Avro single-object encoded")
        writer = self.registry.by_fingerprint(data[2:HEADER_LENGTH])
        if writer is None:
            raise DecodeError(
                "UNKNOWN_SCHEMA", "schema fingerprint is not a known contract version"
            )
        if writer.full_name != reader.full_name:
            raise DecodeError(
                "WRONG_CONTRACT", f"expected {reader.full_name}, message is {writer.full_name}"
            )
        body = io.BytesIO(data[HEADER_LENGTH:])
        try:
            result = schemaless_reader(
                body, writer.parsed, None if writer is reader else reader.parsed
            )
        except Exception as exc:  # fastavro raises many types for truncated or corrupt bodies
            raise DecodeError(
                "AVRO_BODY_INVALID", f"Avro body unreadable ({type(exc).__name__})"
            ) from None
        if body.read(1):
            raise DecodeError("AVRO_TRAILING_BYTES", "bytes follow the end of the Avro body")
        if not isinstance(result, dict):
            raise DecodeError("AVRO_BODY_INVALID", "Avro body is not a record")
        return result


def default_codec(schema_dir: Path | None = None) -> AvroCodec:
    """The codec over the repository's contracts (``schemas/avro``, or ``BIOSTREAM_SCHEMA_DIR``),
    which every service, reader and tool speaks (D3): built here, not by hand in each of them."""
    return AvroCodec(SchemaRegistry(schema_dir))


def encode_with(contract: Contract, record: Any) -> bytes:
    buffer = io.BytesIO()
    buffer.write(contract.header)
    schemaless_writer(buffer, contract.parsed, record)
    return buffer.getvalue()
