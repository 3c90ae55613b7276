"""The consumer's pure rules and its DuckDB local copy, without Kafka."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest
from biostream_consumer.adapters.omop import _macros
from biostream_consumer.adapters.store import LocalCopy, Position, Received
from biostream_consumer.domain.ids import omop_id, person_id
from biostream_consumer.domain.ordering import behind
from biostream_consumer.domain.vocabulary import (
    ConceptMap,
    source_vocabulary,
    source_vocabulary_sql,
)

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
DATA, NOTICES = "curated.d", "curated.d.notices"


def record(curated_id: str, ps: str, day: int = 1) -> dict[str, Any]:
    return {
        "curated_id": curated_id, "dataset": "d", "policy_version": "1", "approval_ref": "A",
        "pseudonym": ps, "key_version": "k1", "hospital": "H001", "resource_type": "Condition",
        "event_date": dt.date(2026, 2, day), "code_system": "kcd", "code": "E11.9",
        "code_version": "9", "value_number": None, "value_unit": None, "birth_year": None,
        "sex": "F", "province_code": "11", "released_at": NOW, "age_band": "35-39",
        "postal_prefix": None, "district_code": None, "value_text": None,
        "specimen_ids": ["sp_1"], "event_date_handling": "shift",
    }  # fmt: skip


def notice(notice_id: str, kind: str, ps: str, new: str | None = None,
           ids: list[str] | None = None, change: int | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "notice_id": notice_id, "dataset": "d", "policy_version": "1", "approval_ref": "A",
        "kind": kind, "pseudonym": ps, "new_pseudonym": new, "key_version": "k1",
        "curated_ids": ids or [], "date_offset_change_days": change,
        "reason": "MERGED" if kind == "CORRECTION" else "CONSENT_WITHDRAWN", "issued_at": NOW,
    }  # fmt: skip


def at(topic: str, offset: int, value: dict[str, Any] | None) -> Received:
    return Received(Position(topic, 0, offset), value, "" if value else "AVRO_BODY_INVALID")


def held(copy: LocalCopy) -> dict[str, tuple[str, dt.date]]:
    rows = copy.connection.execute(
        "SELECT curated_id, pseudonym, event_date FROM curated_records"
    ).fetchall()
    return {c: (p, d) for c, p, d in rows}


@pytest.fixture
def copy(tmp_path: Path) -> LocalCopy:
    return LocalCopy(tmp_path / "copy.duckdb")


def test_records_upsert_by_curated_id_and_positions_follow(copy: LocalCopy) -> None:
    written = copy.apply_records(
        [at(DATA, 0, record("c1", "A")), at(DATA, 1, record("c1", "A", 2)), at(DATA, 2, None)],
        NOW,
    )
    assert written == 1
    assert held(copy) == {"c1": ("A", dt.date(2026, 2, 2))}
    assert copy.positions() == {(DATA, 0): 3}
    skipped = copy.connection.execute("SELECT source_offset, reason FROM skipped_messages")
    assert skipped.fetchall() == [(2, "AVRO_BODY_INVALID")]


def test_correction_moves_only_listed_records_still_under_the_old_pseudonym(
    copy: LocalCopy,
) -> None:
    copy.apply_records(
        [at(DATA, 0, record("c1", "B")), at(DATA, 1, record("c2", "B")),
         at(DATA, 2, record("c3", "C"))], NOW,
    )  # fmt: skip
    [outcome] = copy.apply_notices(
        [at(NOTICES, 0, notice("n1", "CORRECTION", "B", "A", ["c1", "c3"], change=-3))], NOW
    )
    assert outcome.moved == 1  # c3 is under C, not B: untouched
    assert held(copy) == {
        "c1": ("A", dt.date(2026, 1, 29)),
        "c2": ("B", dt.date(2026, 2, 1)),
        "c3": ("C", dt.date(2026, 2, 1)),
    }
    # A replayed notice (same id) changes nothing, not even the dates.
    [again] = copy.apply_notices(
        [at(NOTICES, 1, notice("n1", "CORRECTION", "B", "A", ["c1"], change=-3))], NOW
    )
    assert again.duplicate and held(copy)["c1"] == ("A", dt.date(2026, 1, 29))
    assert copy.positions()[(NOTICES, 0)] == 2


def test_withdrawal_deletes_every_record_of_the_pseudonym(copy: LocalCopy) -> None:
    copy.apply_records(
        [at(DATA, 0, record("c1", "A")), at(DATA, 1, record("c2", "A")),
         at(DATA, 2, record("c3", "B"))], NOW,
    )  # fmt: skip
    [outcome] = copy.apply_notices([at(NOTICES, 0, notice("w1", "WITHDRAWAL", "A"))], NOW)
    assert outcome.deleted == 2
    assert set(held(copy)) == {"c3"}


def test_a_failing_batch_leaves_data_and_position_unchanged(copy: LocalCopy) -> None:
    copy.apply_records([at(DATA, 0, record("c1", "A"))], NOW)
    before = (held(copy), copy.positions())
    with pytest.raises(ValueError, match="no new_pseudonym"):
        copy.apply_notices(
            [at(NOTICES, 0, notice("w1", "WITHDRAWAL", "A")),
             at(NOTICES, 1, notice("n1", "CORRECTION", "A", None, ["c1"]))], NOW,
        )  # fmt: skip
    assert (held(copy), copy.positions()) == before


def test_the_copy_resumes_from_the_file(tmp_path: Path) -> None:
    first = LocalCopy(tmp_path / "c.duckdb")
    first.apply_records([at(DATA, 0, record("c1", "A")), at(DATA, 1, record("c2", "A"))], NOW)
    first.close()
    again = LocalCopy(tmp_path / "c.duckdb")
    assert again.positions() == {(DATA, 0): 2} and again.count() == 2


def test_behind_counts_only_partitions_with_messages_left() -> None:
    assert behind({("t", 0): 5, ("t", 1): 2}, {("t", 0): 5, ("t", 1): 7, ("t", 2): 1}) == {
        ("t", 1): 5,
        ("t", 2): 1,
    }


def test_omop_ids_are_positive_stable_and_equal_in_python_and_sql() -> None:
    con = duckdb.connect()
    _macros(con)
    for value in ("ps_abc", "ps_" + "z" * 26, "cr_0"):
        [(sql,)] = con.execute("SELECT oid('person', ?)", [value]).fetchall()
        assert sql == omop_id("person", value) == person_id(value) > 0
    assert person_id("ps_a") != person_id("ps_b")


def test_vocabulary_rule_is_the_same_in_python_and_sql() -> None:
    systems = [
        "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8",
        "http://www.hl7korea.or.kr/CodeSystem/hira-edi-procedure",
        "http://loinc.org", "http://snomed.info/sct",
    ]  # fmt: skip
    con = duckdb.connect()
    for system in systems:
        [(sql,)] = con.execute(f"SELECT {source_vocabulary_sql('?')}", [system] * 4).fetchall()
        assert sql == source_vocabulary(system)
    assert [source_vocabulary(s) for s in systems[:3]] == ["KCD", "EDI", "LOINC"]


def test_concept_map_parses_and_refuses_bad_files() -> None:
    parsed = ConceptMap.parse("source_vocabulary,source_code,concept_id,name\nkcd,E11.9,201826,x\n")
    assert parsed.entries == {("KCD", "E11.9"): 201826}
    with pytest.raises(ValueError, match="columns"):
        ConceptMap.parse("code,concept\nE11.9,1\n")
    with pytest.raises(ValueError, match="line 2"):
        ConceptMap.parse("source_vocabulary,source_code,concept_id\nKCD,E11.9,abc\n")


def test_a_dataset_withdrawn_notice_keeps_the_records_and_says_why(copy: LocalCopy) -> None:
    """D46: the board's approval ended: nothing held changes, and the copy knows why."""
    copy.apply_records([at(DATA, 0, record("c1", "A"))], NOW)
    assert copy.withdrawal() is None
    withdrawn = notice("d/withdrawn/2/REVOKED", "DATASET_WITHDRAWN", "") | {"reason": "REVOKED"}
    copy.apply_notices([at(NOTICES, 0, withdrawn)], NOW)
    assert held(copy) == {"c1": ("A", dt.date(2026, 2, 1))}
    assert copy.withdrawal() == ("REVOKED", NOW.replace(tzinfo=None))
