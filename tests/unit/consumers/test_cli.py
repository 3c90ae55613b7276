"""``biostream-consumer omop`` and ``plot`` on a local copy built without Kafka."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from biostream_consumer.__main__ import app
from biostream_consumer.adapters.omop import TABLES, load_export
from biostream_consumer.adapters.store import LocalCopy, Position, Received
from typer.testing import CliRunner

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def curated(i: int, ps: str, resource_type: str, system: str | None, code: str | None) -> Received:
    record = {
        "curated_id": f"cr_{i}", "dataset": "d", "policy_version": "1", "approval_ref": "A",
        "pseudonym": ps, "key_version": "k1", "hospital": "H001", "resource_type": resource_type,
        "event_date": dt.date(2026, 2, 1 + i % 3), "code_system": system, "code": code,
        "code_version": None, "value_number": 5.5 if resource_type == "Observation" else None,
        "value_unit": "mmol/L" if resource_type == "Observation" else None, "birth_year": None,
        "sex": "M", "province_code": "11", "released_at": NOW + dt.timedelta(minutes=i),
        "age_band": "40-44", "postal_prefix": None, "district_code": None, "value_text": None,
        "specimen_ids": [], "event_date_handling": "shift",
    }  # fmt: skip
    return Received(Position("curated.d", 0, i), record)


def test_omop_and_plot_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "copy.duckdb"
    copy = LocalCopy(database)
    copy.apply_records(
        [
            curated(0, "ps_a", "Encounter", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
            curated(1, "ps_a", "Condition", "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8", "E11.9"),
            curated(3, "ps_a", "Observation", "http://loinc.org", "2345-7"),
            curated(4, "ps_b", "Procedure", "http://www.hl7korea.or.kr/CodeSystem/hira-edi-procedure", "M0111"),
            curated(5, "ps_b", "MedicationRequest", "http://www.hl7korea.or.kr/CodeSystem/hira-edi-medication", "642102570"),
        ],
        NOW,
    )  # fmt: skip
    copy.close()
    mapping = tmp_path / "map.csv"
    mapping.write_text("source_vocabulary,source_code,concept_id\nLOINC,2345-7,3004501\n")
    monkeypatch.setenv("BIOSTREAM_DATABASE", str(database))
    runner = CliRunner()
    out = tmp_path / "omop"
    result = runner.invoke(app, ["omop", "--out", str(out), "--concept-map", str(mapping)])
    assert result.exit_code == 0, result.output
    con = duckdb.connect()
    load_export(con, out)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone() for t in TABLES}
    assert counts == {
        "person": (2,), "observation_period": (2,), "visit_occurrence": (1,),
        "condition_occurrence": (1,), "measurement": (1,), "drug_exposure": (1,),
        "procedure_occurrence": (1,), "specimen": (0,),
    }  # fmt: skip
    assert con.execute(
        "SELECT measurement_concept_id, measurement_source_value, value_as_number, "
        "unit_source_value, visit_occurrence_id IS NOT NULL FROM measurement"
    ).fetchall() == [(3004501, "2345-7", 5.5, "mmol/L", True)]  # same date as the visit
    assert con.execute(
        "SELECT condition_concept_id, condition_source_value, visit_occurrence_id FROM "
        "condition_occurrence"
    ).fetchall() == [(0, "E11.9", None)]  # unmapped: concept 0, source code kept
    # Five-year age band at the event only: the birth year is an estimate (2026 - 40 - 2).
    assert con.execute(
        "SELECT DISTINCT year_of_birth, gender_concept_id FROM person"
    ).fetchall() == [(1984, 8507)]
    png = tmp_path / "fresh.png"
    result = runner.invoke(app, ["plot", "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"
