"""The consumer toolkit on the real broker: a project consumes its dataset with its own principal,
the pipeline merges two persons and a participant withdraws, and the project's local copy is
corrected by a second sync that reads only the new messages; then OMOP export and the plot."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest
from biostream.codec import AvroCodec
from biostream.contracts import CONSENT_EVENT, LINK_DECISION
from biostream.kafka import plain_producer
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_consumer.adapters.omop import TABLES, export_omop, load_export
from biostream_consumer.adapters.plot import plot_freshness
from biostream_consumer.bootstrap import build
from biostream_consumer.domain.ids import person_id
from biostream_consumer.domain.vocabulary import ConceptMap
from biostream_consumer.settings import ConsumerSettings
from biostream_dev.access import apply, load_matrix, render, wait_until_usable
from biostream_dev.observer import PipelineObserver
from biostream_dev.synth import generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.adapters.publisher import publish_messages
from pseudonymizer.domain.pseudonyms import pseudonym

pytestmark = pytest.mark.integration

CODEC = AvroCodec(SchemaRegistry())
DATASET = "cohort-demo"
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
EVENT_TABLES = ("condition_occurrence", "measurement", "drug_exposure", "procedure_occurrence",
                "specimen", "visit_occurrence", "observation_period")  # fmt: skip


async def poll_until(observer: PipelineObserver, done: Any, timeout_s: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done(observer.view):
        if loop.time() > deadline:
            raise TimeoutError("the pipeline did not produce what the test waits for")
        await observer.poll(300)


def rows(copy: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(copy), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


async def test_project_copy_follows_merges_and_withdrawals_without_reload_and_exports_omop(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=12, seed=11)
    feeds = feed_messages(tmp_path / "feed")
    keys = Keys.fresh()
    key = keys.pseudonym.encode()
    topics = Topics(topic_prefix)
    published = sum(len(m) for m in feeds.values())

    # The project's principal, from the ACL matrix: reads curated.cohort-demo(.*) only.
    principals = render(load_matrix(), prefix=topic_prefix, datasets=[DATASET])
    project = await asyncio.to_thread(
        apply, kafka, {"project-cohort-demo": principals["project-cohort-demo"]}
    )
    await wait_until_usable(project)
    copy = tmp_path / "copy.duckdb"
    settings = ConsumerSettings.model_validate(
        {"kafka": project.settings("project-cohort-demo"), "topic_prefix": topic_prefix,
         "dataset": DATASET, "database": copy, "max_records": 50}
    )  # fmt: skip

    async with running_pipeline(kafka, topic_prefix, sorted(feeds), keys) as observer:
        for hospital, messages in feeds.items():
            await publish_messages(kafka, topics.feed(hospital), messages)
        view = await observer.wait_until_settled(published, timeout_s=180)
        curated_before = len(view.curated)
        notices_before = len(view.notices)

        # 1. First sync: the whole dataset, from the beginning.
        consumer = build(settings)
        first = await consumer.source.sync()
        assert set(first.started_from.values()) == {0}
        assert first.messages_read == curated_before + notices_before
        assert consumer.store.count() == len({r["curated_id"] for r in view.curated})
        positions_after_first = consumer.store.positions()
        consumer.close()  # as if the process ended: the next sync starts from the file

        # Persons with exactly one patient_ref and records in the dataset.
        latest: dict[str, dict[str, Any]] = {}
        for decision in view.decisions:
            ref = decision["patient_ref"]
            if ref not in latest or decision["sequence"] > latest[ref]["sequence"]:
                latest[ref] = decision
        refs_of: dict[str, list[str]] = defaultdict(list)
        for ref, decision in latest.items():
            refs_of[decision["person_id"]].append(ref)
        held = {p for (p,) in rows(copy, "SELECT DISTINCT pseudonym FROM curated_records")}
        single = sorted(
            p for p, refs in refs_of.items() if len(refs) == 1 and pseudonym(key, p) in held
        )
        assert len(single) >= 3, "seed 11 gives enough single-record persons"
        survivor, merged, withdrawn = single[:3]
        ps_survivor, ps_merged, ps_withdrawn = (pseudonym(key, p) for p in single[:3])
        count = {
            ps: rows(copy, "SELECT count(*) FROM curated_records WHERE pseudonym = ?", [ps])[0][0]
            for ps in (ps_survivor, ps_merged, ps_withdrawn)
        }
        dates_merged = dict(
            rows(
                copy,
                "SELECT curated_id, event_date FROM curated_records WHERE pseudonym = ?",
                [ps_merged],
            )
        )

        # 2. Upstream: linkage merges `merged` into `survivor`; `withdrawn` withdraws consent.
        [merged_ref] = refs_of[merged]
        decision = {
            **latest[merged_ref], "decision_id": f"{merged_ref}/test-merge",
            "person_id": survivor, "previous_person_id": merged, "outcome": "MERGED",
            "sequence": latest[merged_ref]["sequence"] + 1, "decided_at": NOW,
        }  # fmt: skip
        consent = {
            "event_id": "consent/test-1", "kind": "WITHDRAWN", "patient_ref": None,
            "person_id": withdrawn, "datasets": [], "recorded_at": NOW,
            "source": "consent-registry",
        }  # fmt: skip
        producer = plain_producer(kafka, "test-upstream")
        await producer.start()
        try:
            await producer.send_and_wait(
                topics.link_decisions, CODEC.encode(LINK_DECISION, decision),
                key=merged_ref.encode(),
            )  # fmt: skip
            await producer.send_and_wait(
                topics.consent_events, CODEC.encode(CONSENT_EVENT, consent), key=b"consent/test-1"
            )
        finally:
            await producer.stop()
        await poll_until(
            observer,
            lambda v: (
                {(n["kind"], n["pseudonym"]) for n in v.notices[notices_before:]}
                >= {("CORRECTION", ps_merged), ("WITHDRAWAL", ps_withdrawn)}
            ),
        )
        await observer.poll(300)
        new_curated = len(observer.view.curated) - curated_before
        new_notices = observer.view.notices[notices_before:]

    # 3. Second sync, a new process on the same file: only the new messages are read.
    consumer = build(settings)
    try:
        second = await consumer.source.sync()
    finally:
        consumer.close()
    assert second.started_from == positions_after_first
    assert second.messages_read == new_curated + len(new_notices)
    assert second.notices_applied == len(new_notices)
    [correction] = [n for n in new_notices if n["kind"] == "CORRECTION"]
    assert correction["new_pseudonym"] == ps_survivor
    assert second.records_moved == count[ps_merged]
    assert second.records_deleted == count[ps_withdrawn]

    # The merged person is under one pseudonym, the withdrawn person is gone.
    def held_under(ps: str) -> int:
        return int(
            rows(copy, "SELECT count(*) FROM curated_records WHERE pseudonym = ?", [ps])[0][0]
        )

    assert held_under(ps_merged) == 0
    assert held_under(ps_survivor) == count[ps_survivor] + count[ps_merged]
    assert held_under(ps_withdrawn) == 0
    # The dataset shifts dates per person: moved records take the survivor's offset.
    change = correction["date_offset_change_days"] or 0
    moved = dict(
        rows(
            copy,
            "SELECT curated_id, event_date FROM curated_records WHERE curated_id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [list(dates_merged)],
        )
    )
    assert moved == {
        cid: (d + dt.timedelta(days=change) if d is not None else None)
        for cid, d in dates_merged.items()
    }
    # A third sync finds nothing new and changes nothing.
    consumer = build(settings)
    try:
        third = await consumer.source.sync()
    finally:
        consumer.close()
    assert third.messages_read == 0

    # 4. OMOP export, with a mapping for one KCD code of the dataset.
    [(kcd_code,)] = rows(
        copy, "SELECT min(code) FROM curated_records WHERE resource_type = 'Condition' "
        "AND lower(code_system) LIKE '%kcd%'"
    )  # fmt: skip
    concepts = ConceptMap.parse(
        f"source_vocabulary,source_code,concept_id\nKCD,{kcd_code},201826\n"
    )
    out = tmp_path / "omop"
    summary = export_omop(copy, out, concepts)
    con = duckdb.connect()
    load_export(con, out)  # typed DDL with primary keys, then the CSV files
    persons = rows(copy, "SELECT DISTINCT pseudonym FROM curated_records")
    assert summary.rows["person"] == len(persons)
    assert {r[0] for r in con.execute("SELECT person_id FROM person").fetchall()} == {
        person_id(p) for (p,) in persons
    }
    assert ps_merged not in {
        r[0] for r in con.execute("SELECT person_source_value FROM person").fetchall()
    }
    for table in TABLES:
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (summary.rows[table],)
    dated = rows(copy, "SELECT resource_type, count(*) FROM curated_records "
                 "WHERE event_date IS NOT NULL GROUP BY 1")  # fmt: skip
    by_table = {"Condition": "condition_occurrence", "Observation": "measurement",
                "MedicationRequest": "drug_exposure", "Procedure": "procedure_occurrence",
                "Specimen": "specimen", "Encounter": "visit_occurrence"}  # fmt: skip
    for resource_type, n in dated:
        assert summary.rows[by_table[resource_type]] == n
    assert summary.rows["condition_occurrence"] > 0 and summary.rows["measurement"] > 0
    # Foreign keys: every person_id exists in PERSON, every visit reference resolves.
    for table in EVENT_TABLES:
        orphans = con.execute(
            f"SELECT count(*) FROM {table} t WHERE t.person_id NOT IN (SELECT person_id FROM person)"
        ).fetchone()
        assert orphans == (0,), table
    for table in ("condition_occurrence", "measurement", "drug_exposure", "procedure_occurrence"):
        dangling = con.execute(
            f"SELECT count(*) FROM {table} t WHERE t.visit_occurrence_id IS NOT NULL AND "
            "t.visit_occurrence_id NOT IN (SELECT visit_occurrence_id FROM visit_occurrence)"
        ).fetchone()
        assert dangling == (0,), table
        wrong_person = con.execute(
            f"SELECT count(*) FROM {table} t JOIN visit_occurrence v USING (visit_occurrence_id) "
            "WHERE v.person_id <> t.person_id"
        ).fetchone()
        assert wrong_person == (0,), table
    # Events on the date of a visit at the same hospital point to it (lab results do, here).
    linked = con.execute(
        "SELECT count(*) FROM measurement WHERE visit_occurrence_id IS NOT NULL"
    ).fetchone()
    assert linked is not None and linked[0] > 0
    # One observation period per person with dated events, covering every event.
    assert con.execute(
        "SELECT count(*) = count(DISTINCT person_id) FROM observation_period"
    ).fetchone() == (True,)
    outside = con.execute(
        "SELECT count(*) FROM condition_occurrence c JOIN observation_period o USING (person_id) "
        "WHERE c.condition_start_date NOT BETWEEN o.observation_period_start_date "
        "AND o.observation_period_end_date"
    ).fetchone()
    assert outside == (0,)
    # The mapping is applied; source codes are kept.
    mapped = con.execute(
        "SELECT DISTINCT condition_source_value FROM condition_occurrence "
        "WHERE condition_concept_id = 201826"
    ).fetchall()
    assert mapped == [(kcd_code,)]
    assert con.execute(
        "SELECT count(*) FROM condition_occurrence WHERE condition_concept_id = 0 "
        "AND condition_source_value IS NULL"
    ).fetchone() == (0,)
    con.close()

    # 5. The freshness plot.
    png = tmp_path / "freshness.png"
    fresh = plot_freshness(copy, png, DATASET)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fresh.records == len(rows(copy, "SELECT curated_id FROM curated_records"))
