"""The local copy: one DuckDB file holding the dataset, the applied notices and the positions.

Every batch (records or notices) and the offsets it advances are written in one DuckDB
transaction, so after a crash the copy and its position agree: nothing is applied twice or lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

RECORD_COLUMNS = (
    "curated_id", "dataset", "policy_version", "approval_ref", "pseudonym", "key_version",
    "hospital", "resource_type", "event_date", "code_system", "code", "code_version",
    "value_number", "value_unit", "birth_year", "sex", "province_code", "released_at",
    "age_band", "postal_prefix", "district_code", "value_text", "specimen_ids",
    "event_date_handling",
)  # fmt: skip

COLUMN_TYPES = {
    "event_date": "DATE", "value_number": "DOUBLE", "birth_year": "INTEGER",
    "released_at": "TIMESTAMP", "specimen_ids": "VARCHAR[]", "source_partition": "INTEGER",
    "source_offset": "BIGINT", "applied_at": "TIMESTAMP",
}  # fmt: skip
_ALL_COLUMNS = (*RECORD_COLUMNS, "source_topic", "source_partition", "source_offset", "applied_at")
INSERT_COLUMNS = "INSERT INTO curated_records SELECT " + ", ".join(
    f"unnest(?::{COLUMN_TYPES.get(c, 'VARCHAR')}[]) AS {c}" for c in _ALL_COLUMNS
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS curated_records (
    curated_id VARCHAR NOT NULL, dataset VARCHAR, policy_version VARCHAR, approval_ref VARCHAR,
    pseudonym VARCHAR NOT NULL, key_version VARCHAR, hospital VARCHAR, resource_type VARCHAR,
    event_date DATE, code_system VARCHAR, code VARCHAR, code_version VARCHAR,
    value_number DOUBLE, value_unit VARCHAR, birth_year INTEGER, sex VARCHAR,
    province_code VARCHAR, released_at TIMESTAMP, age_band VARCHAR, postal_prefix VARCHAR,
    district_code VARCHAR, value_text VARCHAR, specimen_ids VARCHAR[], event_date_handling VARCHAR,
    source_topic VARCHAR, source_partition INTEGER, source_offset BIGINT, applied_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS notices_applied (
    notice_id VARCHAR PRIMARY KEY, kind VARCHAR, reason VARCHAR, pseudonym VARCHAR,
    new_pseudonym VARCHAR, curated_ids INTEGER, date_offset_change_days INTEGER,
    records_moved INTEGER, records_deleted INTEGER, issued_at TIMESTAMP,
    source_topic VARCHAR, source_partition INTEGER, source_offset BIGINT, applied_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS skipped_messages (
    source_topic VARCHAR, source_partition INTEGER, source_offset BIGINT, reason VARCHAR,
    skipped_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS positions (
    topic VARCHAR NOT NULL, partition INTEGER NOT NULL, next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Received:
    """A decoded message (or ``record is None`` with ``reason`` for an undecodable one)."""

    position: Position
    record: Mapping[str, Any] | None
    reason: str = ""


@dataclass
class NoticeOutcome:
    moved: int = 0
    deleted: int = 0
    duplicate: bool = False


def _naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


class LocalCopy:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.connection = duckdb.connect(self.path)
        self.connection.execute(SCHEMA)

    def close(self) -> None:
        self.connection.close()

    def positions(self) -> dict[tuple[str, int], int]:
        rows = self.connection.execute("SELECT topic, partition, next_offset FROM positions")
        return {(t, p): o for t, p, o in rows.fetchall()}

    def apply_records(self, batch: Sequence[Received], now: dt.datetime) -> int:
        """Upserts the batch's records by curated id; returns how many were written."""
        latest: dict[str, tuple[Position, Mapping[str, Any]]] = {}
        con = self.connection
        con.begin()
        try:
            for item in batch:
                if item.record is None:
                    self._skip(item, now)
                else:
                    latest[item.record["curated_id"]] = (item.position, item.record)
            if latest:
                con.execute(
                    "DELETE FROM curated_records WHERE curated_id IN (SELECT unnest(?::VARCHAR[]))",
                    [list(latest)],
                )
                # Column-wise: one list parameter per column, unnested side by side (DuckDB's
                # executemany is row-at-a-time and two orders of magnitude slower).
                held = list(latest.values())
                columns = [[_naive_utc(record[c]) for _, record in held] for c in RECORD_COLUMNS]
                columns += [
                    [pos.topic for pos, _ in held],
                    [pos.partition for pos, _ in held],
                    [pos.offset for pos, _ in held],
                    [_naive_utc(now)] * len(held),
                ]
                con.execute(INSERT_COLUMNS, columns)
            self._advance(batch)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return len(latest)

    def apply_notices(self, batch: Sequence[Received], now: dt.datetime) -> list[NoticeOutcome]:
        """Applies CORRECTION and WITHDRAWAL notices in order, with their offsets, atomically."""
        con = self.connection
        outcomes: list[NoticeOutcome] = []
        con.begin()
        try:
            for item in batch:
                if item.record is None:
                    self._skip(item, now)
                    continue
                outcomes.append(self._apply_notice(item, now))
            self._advance(batch)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return outcomes

    def _apply_notice(self, item: Received, now: dt.datetime) -> NoticeOutcome:
        con = self.connection
        notice = item.record
        assert notice is not None
        seen = con.execute(
            "SELECT 1 FROM notices_applied WHERE notice_id = ?", [notice["notice_id"]]
        ).fetchone()
        if seen is not None:  # a replayed notice: already applied once
            return NoticeOutcome(duplicate=True)
        outcome = NoticeOutcome()
        if notice["kind"] == "CORRECTION":
            if notice["new_pseudonym"] is None:
                raise ValueError(f"CORRECTION {notice['notice_id']} has no new_pseudonym")
            # Only records still held under the old pseudonym move: a record re-released or
            # corrected since then is already where it belongs.
            result = con.execute(
                """UPDATE curated_records
                   SET pseudonym = ?,
                       event_date = CASE WHEN ?::INTEGER IS NULL OR event_date IS NULL
                                         THEN event_date ELSE event_date + ?::INTEGER END
                   WHERE pseudonym = ? AND curated_id IN (SELECT unnest(?::VARCHAR[]))""",
                [
                    notice["new_pseudonym"],
                    notice["date_offset_change_days"],
                    notice["date_offset_change_days"],
                    notice["pseudonym"],
                    list(notice["curated_ids"]),
                ],
            ).fetchone()
            outcome.moved = int(result[0]) if result else 0
        elif notice["kind"] == "WITHDRAWAL":
            if notice["curated_ids"]:
                result = con.execute(
                    """DELETE FROM curated_records WHERE pseudonym = ?
                       AND curated_id IN (SELECT unnest(?::VARCHAR[]))""",
                    [notice["pseudonym"], list(notice["curated_ids"])],
                ).fetchone()
            else:  # empty: every record held under the pseudonym
                result = con.execute(
                    "DELETE FROM curated_records WHERE pseudonym = ?", [notice["pseudonym"]]
                ).fetchone()
            outcome.deleted = int(result[0]) if result else 0
        elif notice["kind"] != "DATASET_WITHDRAWN":
            # DATASET_WITHDRAWN (D46) changes nothing held: it is kept below, and ``withdrawal``
            # tells the project why nothing more comes.
            raise ValueError(f"unknown notice kind {notice['kind']!r}")
        pos = item.position
        con.execute(
            "INSERT INTO notices_applied VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                notice["notice_id"], notice["kind"], notice["reason"], notice["pseudonym"],
                notice["new_pseudonym"], len(notice["curated_ids"]),
                notice["date_offset_change_days"], outcome.moved, outcome.deleted,
                _naive_utc(notice["issued_at"]), pos.topic, pos.partition, pos.offset,
                _naive_utc(now),
            ],
        )  # fmt: skip
        return outcome

    def _skip(self, item: Received, now: dt.datetime) -> None:
        pos = item.position
        self.connection.execute(
            "INSERT INTO skipped_messages VALUES (?, ?, ?, ?, ?)",
            [pos.topic, pos.partition, pos.offset, item.reason, _naive_utc(now)],
        )

    def _advance(self, batch: Sequence[Received]) -> None:
        last: dict[tuple[str, int], int] = {}
        for item in batch:
            key = (item.position.topic, item.position.partition)
            last[key] = max(last.get(key, -1), item.position.offset + 1)
        for (topic, partition), offset in last.items():
            self.set_position(topic, partition, offset)

    def save_positions(self, positions: Mapping[tuple[str, int], int]) -> None:
        con = self.connection
        con.begin()
        try:
            for (topic, partition), offset in positions.items():
                self.set_position(topic, partition, offset)
            con.commit()
        except BaseException:
            con.rollback()
            raise

    def set_position(self, topic: str, partition: int, next_offset: int) -> None:
        self.connection.execute(
            "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)", [topic, partition, next_offset]
        )

    def withdrawal(self) -> tuple[str, dt.datetime] | None:
        """D46: why and when the board's approval of the dataset ended, if a
        ``DATASET_WITHDRAWN`` notice said so (the newest)."""
        row = self.connection.execute(
            """SELECT reason, issued_at FROM notices_applied WHERE kind = 'DATASET_WITHDRAWN'
               ORDER BY issued_at DESC LIMIT 1"""
        ).fetchone()
        return (str(row[0]), row[1]) if row else None

    def count(self, where: str = "TRUE", params: Sequence[Any] = ()) -> int:
        row = self.connection.execute(
            f"SELECT count(*) FROM curated_records WHERE {where}",  # noqa: S608
            list(params),
        ).fetchone()
        return int(row[0]) if row else 0
