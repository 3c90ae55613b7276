"""``generate_feed``: write a multi-hospital feed, its ground truth and a manifest."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final, TextIO, TypeVar

from biostream_dev.synth import malformed as broken
from biostream_dev.synth.clinical import (
    ENCOUNTER_RATE,
    KST,
    Visit,
    chronic_conditions,
    make_visit,
    new_uuid,
    visit_dates,
)
from biostream_dev.synth.corruption import (
    DEFAULT_CORRUPTION_RATES,
    CorruptionRates,
    Registration,
    register,
)
from biostream_dev.synth.formats import (
    CSV_COLUMNS,
    CSV_FILE,
    FHIR_FILE,
    IDENTIFIER_TYPE_SYSTEM,
    KCD_SYSTEMS,
    LOINC_SYSTEM,
    MRN_SYSTEM_TEMPLATE,
    RRN_SYSTEM,
    Format,
    HospitalProfile,
    MessageKind,
    Snapshot,
    bundle,
    csv_row,
    hospital_source,
    mrn_system,
)
from biostream_dev.synth.hangul import typo
from biostream_dev.synth.manifest import (
    MANIFEST_FILE,
    TRUTH_FILE,
    FeedManifest,
    FileInfo,
    FormatCounts,
    MalformedSummary,
    PopulationSummary,
    TruthRecord,
)
from biostream_dev.synth.people import (
    POPULATION_RATES,
    REFERENCE_DATE,
    WINDOW_START,
    Address,
    Person,
    generate_population,
    random_phone,
)
from biostream_dev.synth.reference import HOSPITAL_NAMES, Diagnosis
from biostream_dev.synth.rrn import RANDOM_SERIAL_SINCE

# Number of hospitals a person is seen at: most at one, a realistic share at two or three.
HOSPITALS_PER_PERSON_WEIGHTS: Final[tuple[float, ...]] = (0.74, 0.19, 0.05, 0.02)
MAX_HOSPITALS: Final = 999
FORMATS: Final[tuple[Format, ...]] = ("fhir", "csv")
_FORMAT_LETTER: Final[dict[Format, str]] = {"fhir": "F", "csv": "C"}

_T = TypeVar("_T")


def hospital_profiles(count: int) -> list[HospitalProfile]:
    """Deterministic per-hospital habits; they rotate so that three hospitals cover them all."""
    profiles = []
    for i in range(count):
        code = f"H{i + 1:03d}"
        name = HOSPITAL_NAMES[i] if i < len(HOSPITAL_NAMES) else f"합성{i + 1:03d}병원"
        profiles.append(
            HospitalProfile(
                code=code,
                name=name,
                weight=round(1 / (1 + 0.35 * i), 4),
                fhir_share=(0.6, 0.5, 0.7)[i % 3],
                phone_style=("dashed", "dashed", "digits", "dashed", "intl")[i % 5],
                province_names=("official", "legacy", "official", "short")[i % 4],
                kcd_dotless_csv=i % 3 == 2,
                latin_name_rate=(0.6, 0.3, 0.8)[i % 3],
                mrn_system=mrn_system(code),
                source=hospital_source(code),
            )
        )
    return profiles


@dataclass(slots=True)
class _Message:
    hospital: str
    fmt: Format
    timestamp: datetime
    seq: int
    kind: MessageKind
    person: Person
    mrn: str
    patient_id: str
    identity: Snapshot
    visit: Visit | None
    corruptions: tuple[str, ...]
    message_id: str = ""


def _value_on(history: list[tuple[date, _T]], day: date) -> _T:
    value = history[0][1]
    for since, candidate in history:
        if since <= day:
            value = candidate
    return value


class _FeedBuilder:
    def __init__(self, seed: int, profiles: list[HospitalProfile], rates: CorruptionRates) -> None:
        self.rng = random.Random(f"biostream-synth:{seed}:feed")
        self.profiles = profiles
        self.rates = rates
        self.messages: dict[tuple[str, Format], list[_Message]] = {
            (p.code, fmt): [] for p in profiles for fmt in FORMATS
        }
        self.patients: Counter[tuple[str, Format]] = Counter()
        self.mrns: dict[str, dict[str, None]] = {p.code: {} for p in profiles}
        self.hospitals_per_person: Counter[int] = Counter()
        self.seq = 0

    def mrn(self, code: str) -> str:
        used = self.mrns[code]
        while True:
            candidate = f"{self.rng.randrange(10**8):08d}"
            if candidate not in used:
                used[candidate] = None
                return candidate

    def choose_hospitals(self) -> list[HospitalProfile]:
        rng = self.rng
        weights = HOSPITALS_PER_PERSON_WEIGHTS[: len(self.profiles)]
        count = rng.choices(range(1, len(weights) + 1), weights=weights, k=1)[0]
        pool = list(self.profiles)
        chosen: list[HospitalProfile] = []
        for _ in range(count):
            pick = rng.choices(pool, weights=[p.weight for p in pool], k=1)[0]
            pool.remove(pick)
            chosen.append(pick)
        return sorted(chosen, key=lambda p: p.code)

    def add_person(self, person: Person) -> None:
        chronic = chronic_conditions(self.rng, person)
        hospitals = self.choose_hospitals()
        self.hospitals_per_person[len(hospitals)] += 1
        for profile in hospitals:
            fmt: Format = "fhir" if self.rng.random() < profile.fhir_share else "csv"
            self.appear(person, profile, fmt, chronic)

    def known_history(
        self, history: tuple[tuple[date, _T], ...], first: date, last: date, keep_old: float
    ) -> tuple[list[tuple[date, _T]], list[date]]:
        """What a hospital knows of a changing value, and when it learnt of each change."""
        rng = self.rng
        known = [(first, _value_on(list(history), first))]
        learnt: list[date] = []
        for since, value in history[1:]:
            if first < since <= last and rng.random() >= keep_old:
                day = min(since + timedelta(days=rng.randint(0, 60)), REFERENCE_DATE)
                known.append((day, value))
                learnt.append(day)
        return known, learnt

    def appear(
        self,
        person: Person,
        profile: HospitalProfile,
        fmt: Format,
        chronic: tuple[Diagnosis, ...],
    ) -> None:
        rng, rates = self.rng, self.rates
        self.patients[(profile.code, fmt)] += 1
        days = visit_dates(rng, person)
        reg = register(
            rng, person, rates, latin_rate=profile.latin_name_rate, other_phone=random_phone(rng)
        )
        mrn = self.mrn(profile.code)
        patient_id = new_uuid(rng)
        first, last = days[0], days[-1]
        addresses, address_learnt = self.known_history(
            person.addresses, first, last, rates.address_not_updated
        )
        phones, phone_learnt = self.known_history(
            person.phones, first, last, rates.phone_not_updated
        )
        if reg.phone_override is not None:
            phones, phone_learnt = [(first, reg.phone_override)], []
        out = self.messages[(profile.code, fmt)]

        def emit(
            kind: MessageKind,
            when: datetime,
            identity: Snapshot,
            visit: Visit | None,
            tags: list[str],
        ) -> None:
            self.seq += 1
            out.append(
                _Message(
                    hospital=profile.code,
                    fmt=fmt,
                    timestamp=when,
                    seq=self.seq,
                    kind=kind,
                    person=person,
                    mrn=mrn,
                    patient_id=patient_id,
                    identity=identity,
                    visit=visit,
                    corruptions=tuple(tags),
                )
            )

        if fmt == "fhir":
            for day in sorted(dict.fromkeys(address_learnt + phone_learnt)):
                if rng.random() < rates.identity_update_message:
                    when = datetime.combine(day, time(9, 0), KST) + timedelta(
                        minutes=rng.randrange(10 * 60)
                    )
                    identity, tags = self.snapshot(person, reg, addresses, phones, day, False)
                    emit("identity_update", when, identity, None, tags)
        for day in days:
            with_encounter = fmt == "fhir" and rng.random() < ENCOUNTER_RATE
            visit = make_visit(
                rng,
                person,
                day,
                chronic,
                max_labs=3 if fmt == "fhir" else 1,
                with_encounter=with_encounter,
            )
            identity, tags = self.snapshot(person, reg, addresses, phones, day, True)
            when = visit.end + timedelta(minutes=rng.randint(5, 240))
            emit("visit", when, identity, visit, tags)

    def snapshot(
        self,
        person: Person,
        reg: Registration,
        addresses: list[tuple[date, Address]],
        phones: list[tuple[date, str]],
        day: date,
        message_level: bool,
    ) -> tuple[Snapshot, list[str]]:
        rng, rates = self.rng, self.rates
        tags = list(reg.corruptions)
        address: Address | None = _value_on(addresses, day)
        phone: str | None = _value_on(phones, day)
        if address != person.address_on(day):
            tags.append("address_stale")
        if reg.phone_override is None and phone != person.phone_on(day):
            tags.append("phone_stale")
        given = reg.given
        if message_level:
            if rng.random() < rates.phone_missing:
                phone = None
                tags.append("phone_missing")
            if rng.random() < rates.address_missing:
                address = None
                tags.append("address_missing")
            if person.korean_name and rng.random() < rates.message_name_typo:
                typed = typo(rng, given)
                if typed:
                    given = typed
                    tags.append("message_name_typo")
        identity = Snapshot(
            family=reg.family,
            given=given,
            korean_name=person.korean_name,
            sex=person.sex,
            birth_date=reg.birth_date,
            rrn=reg.rrn,
            phone=phone,
            address=address,
            latin=reg.latin,
        )
        return identity, tags


def _file_info(out_dir: Path, path: Path) -> FileInfo:
    data = path.read_bytes()
    return FileInfo(
        path=path.relative_to(out_dir).as_posix(),
        lines=data.count(b"\n"),
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _dumps(document: object) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def generate_feed(
    out_dir: Path,
    *,
    persons: int,
    hospitals: int = 3,
    seed: int = 42,
    malformed_rate: float = 0.01,
    rates: CorruptionRates = DEFAULT_CORRUPTION_RATES,
) -> FeedManifest:
    """Write ``out_dir/<H00n>/{fhir.ndjson,visits.csv}``, ``truth.jsonl`` and ``manifest.json``.

    Same arguments, same bytes. The population depends only on ``seed`` and ``persons``; the
    well-formed messages do not depend on ``malformed_rate`` except for those replaced by broken ones.
    """
    if persons < 0:
        raise ValueError("persons must be >= 0")
    if not 1 <= hospitals <= MAX_HOSPITALS:
        raise ValueError(f"hospitals must be between 1 and {MAX_HOSPITALS}")
    if not 0.0 <= malformed_rate <= 1.0:
        raise ValueError("malformed_rate must be between 0 and 1")

    population = generate_population(persons, seed=seed)
    profiles = hospital_profiles(hospitals)
    builder = _FeedBuilder(seed, profiles, rates)
    for person in population:
        builder.add_person(person)

    ordered: list[_Message] = []
    for (code, fmt), messages in builder.messages.items():
        messages.sort(key=lambda m: (m.timestamp, m.seq))
        for n, message in enumerate(messages, start=1):
            message.message_id = f"{code}-{_FORMAT_LETTER[fmt]}-{n:06d}"
        ordered.extend(messages)

    bad_rng = random.Random(f"biostream-synth:{seed}:malformed")
    bad_count = round(malformed_rate * len(ordered))
    bad: dict[int, str] = {}
    for index in sorted(bad_rng.sample(range(len(ordered)), bad_count)):
        kinds = broken.FHIR_KINDS if ordered[index].fmt == "fhir" else broken.CSV_KINDS
        bad[index] = bad_rng.choice(kinds)

    out_dir.mkdir(parents=True, exist_ok=True)
    messages_count: Counter[tuple[str, Format]] = Counter()
    events: Counter[tuple[str, Format]] = Counter()
    events_by_type: Counter[str] = Counter()
    malformed_kinds: Counter[str] = Counter()
    corruption_counts: Counter[str] = Counter()
    identity_updates = 0
    files: list[FileInfo] = []
    index = 0
    with (out_dir / TRUTH_FILE).open("w", encoding="utf-8", newline="") as truth:
        for profile in profiles:
            hospital_dir = out_dir / profile.code
            hospital_dir.mkdir(exist_ok=True)
            for fmt in FORMATS:
                path = hospital_dir / (FHIR_FILE if fmt == "fhir" else CSV_FILE)
                with path.open("w", encoding="utf-8", newline="") as fh:
                    line_no = 0
                    if fmt == "csv":
                        fh.write(broken.csv_line(list(CSV_COLUMNS)))
                        line_no = 1
                    for message in builder.messages[(profile.code, fmt)]:
                        kind = bad.get(index)
                        index += 1
                        line_no += 1
                        n_events = _write_message(fh, profile, message, kind, bad_rng)
                        messages_count[(profile.code, fmt)] += 1
                        if message.kind == "identity_update":
                            identity_updates += 1
                        if kind is None:
                            events[(profile.code, fmt)] += n_events
                            _count_event_types(events_by_type, message)
                            corruption_counts.update(message.corruptions)
                        else:
                            malformed_kinds[kind] += 1
                        personless = kind in broken.PERSONLESS_KINDS
                        record = TruthRecord(
                            hospital=profile.code,
                            message_id=message.message_id,
                            format=fmt,
                            entity_id=None if personless else message.person.entity_id,
                            patient_no=None if personless else message.mrn,
                            clinical_events=0 if kind else n_events,
                            malformed=kind is not None,
                            malformed_kind=kind,
                            line=line_no,
                            message_kind=message.kind,
                            corruptions=list(message.corruptions),
                        )
                        truth.write(record.model_dump_json() + "\n")
                files.append(_file_info(out_dir, path))
    files.append(_file_info(out_dir, out_dir / TRUTH_FILE))

    manifest = FeedManifest(
        seed=seed,
        persons=persons,
        malformed_rate=malformed_rate,
        reference_date=REFERENCE_DATE,
        visit_window=(WINDOW_START, REFERENCE_DATE),
        hospitals={p.code: p.name for p in profiles},
        hospital_profiles={p.code: p for p in profiles},
        identifier_systems={
            "mrn": MRN_SYSTEM_TEMPLATE,
            "rrn": RRN_SYSTEM,
            "identifier_type": IDENTIFIER_TYPE_SYSTEM,
        },
        code_systems={"kcd-8": KCD_SYSTEMS["8"], "kcd-9": KCD_SYSTEMS["9"], "loinc": LOINC_SYSTEM},
        files=files,
        messages=_per_hospital(profiles, messages_count),
        messages_total=len(ordered),
        identity_update_messages=identity_updates,
        patients=_per_hospital(profiles, builder.patients),
        clinical_events=_per_hospital(profiles, events),
        clinical_events_total=sum(events.values()),
        clinical_events_by_type=dict(sorted(events_by_type.items())),
        malformed=MalformedSummary(
            total=sum(malformed_kinds.values()), by_kind=dict(sorted(malformed_kinds.items()))
        ),
        corruption_rates=rates.as_dict(),
        corruption_counts=dict(sorted(corruption_counts.items())),
        population=_population_summary(population, builder.hospitals_per_person),
        out_dir=out_dir,
    )
    (out_dir / MANIFEST_FILE).write_text(
        manifest.model_dump_json(indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def _write_message(
    fh: TextIO, profile: HospitalProfile, message: _Message, kind: str | None, rng: random.Random
) -> int:
    """Write one message line; return its clinical event count (as if well-formed)."""
    write = fh.write
    visit = message.visit
    real_birth = message.person.birth_date
    if message.fmt == "fhir":
        document = bundle(
            profile,
            message_id=message.message_id,
            timestamp=message.timestamp,
            identity=message.identity,
            patient_id=message.patient_id,
            mrn=message.mrn,
            visit=visit,
        )
        line = (
            _dumps(document) if kind is None else broken.break_fhir(rng, kind, document, real_birth)
        )
        write(line + "\n")
        return visit.fhir_events if visit else 0
    if visit is None:
        raise AssertionError("CSV messages are always visits")
    row = csv_row(
        profile,
        message_id=message.message_id,
        identity=message.identity,
        mrn=message.mrn,
        visit=visit,
    )
    write(broken.csv_line(row) if kind is None else broken.break_csv(rng, kind, row, real_birth))
    return visit.csv_events


def _per_hospital(
    profiles: list[HospitalProfile], counts: Counter[tuple[str, Format]]
) -> dict[str, FormatCounts]:
    return {
        p.code: FormatCounts(fhir=counts[(p.code, "fhir")], csv=counts[(p.code, "csv")])
        for p in profiles
    }


def _count_event_types(counter: Counter[str], message: _Message) -> None:
    visit = message.visit
    if visit is None:
        return
    if message.fmt == "fhir":
        counter["Condition"] += 1
        counter["Observation"] += len(visit.labs)
        counter["Encounter"] += visit.encounter_id is not None
    else:
        counter["csv_diagnosis"] += 1
        counter["csv_lab"] += min(len(visit.labs), 1)


def _population_summary(population: list[Person], per_person: Counter[int]) -> PopulationSummary:
    groups: Counter[tuple[str, int]] = Counter((p.full_name, p.birth_date.year) for p in population)
    return PopulationSummary(
        persons=len(population),
        foreign_residents=sum(p.foreign for p in population),
        rrn_random_serial=sum(p.rrn_issued >= RANDOM_SERIAL_SINCE for p in population),
        twin_pairs=sum(p.twin_of is not None for p in population),
        namesake_pairs_planted=sum(p.namesake_of is not None for p in population),
        same_name_birth_year_groups=sum(1 for n in groups.values() if n > 1),
        hospitals_per_person={str(k): per_person[k] for k in sorted(per_person)},
        rates=POPULATION_RATES,
    )
