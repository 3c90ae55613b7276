# ruff: noqa: S608 - the SQL is built from this module's constants only, never from data
"""OMOP CDM 5.4 export of the local copy: one CSV per table (header row, OMOP column names).

Built in an in-memory DuckDB with the local copy attached read-only, so the export never blocks or
changes the copy. What is mapped and what is not: see the package README.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from biostream_consumer.domain.ids import MAX_ID
from biostream_consumer.domain.vocabulary import (
    EHR_TYPE_CONCEPT,
    GENDER_CONCEPTS,
    ConceptMap,
    source_vocabulary_sql,
)

CDM_VERSION = "5.4"
TABLES = (
    "person", "observation_period", "visit_occurrence", "condition_occurrence", "measurement",
    "drug_exposure", "procedure_occurrence", "specimen",
)  # fmt: skip

# Which curated resource type feeds which event table.
EVENT_TABLES = {
    "Condition": "condition_occurrence",
    "Observation": "measurement",
    "MedicationRequest": "drug_exposure",
    "Procedure": "procedure_occurrence",
    "Specimen": "specimen",
    "Encounter": "visit_occurrence",
}


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    rows: dict[str, int]
    records_without_date: int
    unmapped_codes: int


def _macros(con: duckdb.DuckDBPyConnection) -> None:
    # Same function as domain.ids.omop_id (a unit test holds them equal).
    con.execute(
        f"""CREATE MACRO oid(label, v) AS
            ((('0x' || left(sha256(label || chr(0) || v), 16))::UBIGINT
              & {MAX_ID}::UBIGINT)::BIGINT)"""
    )


def export_omop(
    copy_path: Path | str, out_dir: Path, concepts: ConceptMap | None = None
) -> ExportSummary:
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        _macros(con)
        con.execute(f"ATTACH '{Path(copy_path)}' AS copy (READ_ONLY)")
        con.execute(
            "CREATE TABLE concept_map (source_vocabulary VARCHAR, source_code VARCHAR, "
            "concept_id INTEGER)"
        )
        if concepts is not None and concepts.entries:
            con.executemany("INSERT INTO concept_map VALUES (?, ?, ?)", list(concepts.rows()))
        gender = " ".join(f"WHEN '{sex}' THEN {c}" for sex, c in GENDER_CONCEPTS.items())
        con.execute(
            f"""CREATE TABLE src AS
                SELECT r.*, oid('person', r.pseudonym) AS person_id,
                       oid('record', r.curated_id) AS record_id,
                       {source_vocabulary_sql("r.code_system")} AS vocabulary,
                       m.concept_id AS mapped_concept
                FROM copy.curated_records r
                LEFT JOIN concept_map m
                  ON m.source_vocabulary = {source_vocabulary_sql("r.code_system")}
                 AND m.source_code = r.code"""
        )
        _check_unique(con, "pseudonym", "person_id")
        _check_unique(con, "curated_id", "record_id")
        # Events need a date in OMOP; records released without one stay out (counted).
        con.execute("CREATE VIEW ev AS SELECT * FROM src WHERE event_date IS NOT NULL")
        t = EHR_TYPE_CONCEPT
        con.execute(
            f"""CREATE TABLE person AS
                WITH per AS (
                  SELECT person_id, pseudonym,
                         arg_max(sex, released_at) AS sex,
                         max(birth_year) AS birth_year,
                         -- age band at the event ("35-39", "90+"): birth year about
                         -- event year - band start - 2 (documented as an estimate)
                         median(year(event_date)
                                - TRY_CAST(regexp_extract(age_band, '^([0-9]+)', 1) AS INTEGER)
                                - 2)::INTEGER AS estimated_birth_year
                  FROM src GROUP BY person_id, pseudonym)
                SELECT person_id,
                       CASE sex {gender} ELSE 0 END AS gender_concept_id,
                       coalesce(birth_year, estimated_birth_year) AS year_of_birth,
                       NULL::INTEGER AS month_of_birth, NULL::INTEGER AS day_of_birth,
                       NULL::TIMESTAMP AS birth_datetime,
                       0 AS race_concept_id, 0 AS ethnicity_concept_id,
                       NULL::BIGINT AS location_id, NULL::BIGINT AS provider_id,
                       NULL::BIGINT AS care_site_id,
                       pseudonym AS person_source_value, sex AS gender_source_value,
                       0 AS gender_source_concept_id, NULL::VARCHAR AS race_source_value,
                       0 AS race_source_concept_id, NULL::VARCHAR AS ethnicity_source_value,
                       0 AS ethnicity_source_concept_id
                FROM per ORDER BY person_id"""
        )
        con.execute(
            f"""CREATE TABLE observation_period AS
                SELECT oid('observation_period', pseudonym) AS observation_period_id, person_id,
                       min(event_date) AS observation_period_start_date,
                       max(event_date) AS observation_period_end_date,
                       {t} AS period_type_concept_id
                FROM ev GROUP BY person_id, pseudonym ORDER BY person_id"""
        )
        con.execute(
            f"""CREATE TABLE visit_occurrence AS
                SELECT record_id AS visit_occurrence_id, person_id,
                       coalesce(mapped_concept, 0) AS visit_concept_id,
                       event_date AS visit_start_date, NULL::TIMESTAMP AS visit_start_datetime,
                       event_date AS visit_end_date, NULL::TIMESTAMP AS visit_end_datetime,
                       {t} AS visit_type_concept_id, NULL::BIGINT AS provider_id,
                       NULL::BIGINT AS care_site_id, code AS visit_source_value,
                       0 AS visit_source_concept_id, NULL::INTEGER AS admitted_from_concept_id,
                       NULL::VARCHAR AS admitted_from_source_value,
                       NULL::INTEGER AS discharged_to_concept_id,
                       NULL::VARCHAR AS discharged_to_source_value,
                       NULL::BIGINT AS preceding_visit_occurrence_id
                FROM ev WHERE resource_type = 'Encounter' ORDER BY visit_occurrence_id"""
        )
        # An event belongs to the person's visit at the same hospital on the same date, if any.
        con.execute(
            """CREATE VIEW ev_visit AS
               SELECT ev.*, (SELECT min(v.record_id) FROM ev v
                             WHERE v.resource_type = 'Encounter' AND v.person_id = ev.person_id
                               AND v.event_date = ev.event_date
                               AND v.hospital IS NOT DISTINCT FROM ev.hospital) AS visit_id
               FROM ev"""
        )
        con.execute(
            f"""CREATE TABLE condition_occurrence AS
                SELECT record_id AS condition_occurrence_id, person_id,
                       coalesce(mapped_concept, 0) AS condition_concept_id,
                       event_date AS condition_start_date,
                       NULL::TIMESTAMP AS condition_start_datetime,
                       NULL::DATE AS condition_end_date, NULL::TIMESTAMP AS condition_end_datetime,
                       {t} AS condition_type_concept_id, 0 AS condition_status_concept_id,
                       NULL::VARCHAR AS stop_reason, NULL::BIGINT AS provider_id,
                       visit_id AS visit_occurrence_id, NULL::BIGINT AS visit_detail_id,
                       code AS condition_source_value, 0 AS condition_source_concept_id,
                       NULL::VARCHAR AS condition_status_source_value
                FROM ev_visit WHERE resource_type = 'Condition'
                ORDER BY condition_occurrence_id"""
        )
        con.execute(
            f"""CREATE TABLE measurement AS
                SELECT record_id AS measurement_id, person_id,
                       coalesce(mapped_concept, 0) AS measurement_concept_id,
                       event_date AS measurement_date, NULL::TIMESTAMP AS measurement_datetime,
                       NULL::VARCHAR AS measurement_time, {t} AS measurement_type_concept_id,
                       NULL::INTEGER AS operator_concept_id, value_number AS value_as_number,
                       NULL::INTEGER AS value_as_concept_id, NULL::INTEGER AS unit_concept_id,
                       NULL::DOUBLE AS range_low, NULL::DOUBLE AS range_high,
                       NULL::BIGINT AS provider_id, visit_id AS visit_occurrence_id,
                       NULL::BIGINT AS visit_detail_id, code AS measurement_source_value,
                       0 AS measurement_source_concept_id, value_unit AS unit_source_value,
                       NULL::INTEGER AS unit_source_concept_id,
                       left(coalesce(value_text, value_number::VARCHAR), 50) AS value_source_value,
                       NULL::BIGINT AS measurement_event_id,
                       NULL::INTEGER AS meas_event_field_concept_id
                FROM ev_visit WHERE resource_type = 'Observation' ORDER BY measurement_id"""
        )
        con.execute(
            f"""CREATE TABLE drug_exposure AS
                SELECT record_id AS drug_exposure_id, person_id,
                       coalesce(mapped_concept, 0) AS drug_concept_id,
                       event_date AS drug_exposure_start_date,
                       NULL::TIMESTAMP AS drug_exposure_start_datetime,
                       event_date AS drug_exposure_end_date,
                       NULL::TIMESTAMP AS drug_exposure_end_datetime,
                       NULL::DATE AS verbatim_end_date, {t} AS drug_type_concept_id,
                       NULL::VARCHAR AS stop_reason, NULL::INTEGER AS refills,
                       value_number AS quantity, NULL::INTEGER AS days_supply,
                       NULL::VARCHAR AS sig, NULL::INTEGER AS route_concept_id,
                       NULL::VARCHAR AS lot_number, NULL::BIGINT AS provider_id,
                       visit_id AS visit_occurrence_id, NULL::BIGINT AS visit_detail_id,
                       code AS drug_source_value, 0 AS drug_source_concept_id,
                       NULL::VARCHAR AS route_source_value, value_unit AS dose_unit_source_value
                FROM ev_visit WHERE resource_type = 'MedicationRequest'
                ORDER BY drug_exposure_id"""
        )
        con.execute(
            f"""CREATE TABLE procedure_occurrence AS
                SELECT record_id AS procedure_occurrence_id, person_id,
                       coalesce(mapped_concept, 0) AS procedure_concept_id,
                       event_date AS procedure_date, NULL::TIMESTAMP AS procedure_datetime,
                       NULL::DATE AS procedure_end_date, NULL::TIMESTAMP AS procedure_end_datetime,
                       {t} AS procedure_type_concept_id, 0 AS modifier_concept_id,
                       NULL::INTEGER AS quantity, NULL::BIGINT AS provider_id,
                       visit_id AS visit_occurrence_id, NULL::BIGINT AS visit_detail_id,
                       code AS procedure_source_value, 0 AS procedure_source_concept_id,
                       NULL::VARCHAR AS modifier_source_value
                FROM ev_visit WHERE resource_type = 'Procedure' ORDER BY procedure_occurrence_id"""
        )
        con.execute(
            f"""CREATE TABLE specimen AS
                SELECT record_id AS specimen_id, person_id,
                       coalesce(mapped_concept, 0) AS specimen_concept_id,
                       {t} AS specimen_type_concept_id, event_date AS specimen_date,
                       NULL::TIMESTAMP AS specimen_datetime, value_number AS quantity,
                       NULL::INTEGER AS unit_concept_id, NULL::INTEGER AS anatomic_site_concept_id,
                       NULL::INTEGER AS disease_status_concept_id,
                       specimen_ids[1] AS specimen_source_id, code AS specimen_source_value,
                       value_unit AS unit_source_value,
                       NULL::VARCHAR AS anatomic_site_source_value,
                       NULL::VARCHAR AS disease_status_source_value
                FROM ev WHERE resource_type = 'Specimen' ORDER BY specimen_id"""
        )
        (out_dir / "ddl.sql").write_text(_ddl(con), encoding="utf-8")
        rows: dict[str, int] = {}
        for table in TABLES:
            target = out_dir / f"{table}.csv"
            con.execute(f"COPY {table} TO '{target}' (HEADER, DELIMITER ',')")
            rows[table] = _scalar(con, f"SELECT count(*) FROM {table}")
        without_date = _scalar(con, "SELECT count(*) FROM src WHERE event_date IS NULL")
        unmapped = _scalar(
            con, "SELECT count(*) FROM src WHERE code IS NOT NULL AND mapped_concept IS NULL"
        )
        return ExportSummary(out_dir, rows, without_date, unmapped)
    finally:
        con.close()


def _ddl(con: duckdb.DuckDBPyConnection) -> str:
    """CREATE TABLE statements of the exported tables (DuckDB/ANSI types, first column the
    primary key): load with ``COPY <table> FROM '<table>.csv' (HEADER)``."""
    statements = [f"-- OMOP CDM {CDM_VERSION} tables exported by biostream-consumer"]
    for table in TABLES:
        columns = con.execute(f"DESCRIBE {table}").fetchall()
        lines = [f"    {name} {kind}" for name, kind, *_ in columns]
        lines[0] += " PRIMARY KEY"
        statements.append(f"CREATE TABLE {table} (\n" + ",\n".join(lines) + "\n);")
    return "\n".join(statements) + "\n"


def load_export(con: duckdb.DuckDBPyConnection, out_dir: Path) -> None:
    """Creates the exported tables in ``con`` from ``ddl.sql`` and loads their CSV files."""
    con.execute((out_dir / "ddl.sql").read_text(encoding="utf-8"))
    for table in TABLES:
        con.execute(f"COPY {table} FROM '{out_dir / table}.csv' (HEADER, DELIMITER ',')")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _check_unique(con: duckdb.DuckDBPyConnection, source: str, derived: str) -> None:
    clashes = _scalar(
        con,
        f"SELECT count(*) FROM (SELECT {derived} FROM src GROUP BY {derived} "
        f"HAVING count(DISTINCT {source}) > 1)",
    )
    if clashes:
        raise ValueError(f"{clashes} derived {derived} values collide; refusing to export")
