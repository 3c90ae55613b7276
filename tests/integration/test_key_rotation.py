"""D33 on the real broker: the RRN, dead-letter and person keys rotate while a feed is under way,
and nothing is lost. The first half of the feed runs under k1; k2 of every key is then added,
in force from that moment on; the second half runs under k2. Numbers and dead letters sealed
before still open, the same patient at another hospital is still linked to the same person on
the registration number, and every record of the feed reaches the curated topic."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from pathlib import Path

import pytest
from biostream.keyring import DEAD_LETTER_KEY, PERSON_KEY, RRN_KEY
from biostream.sealing import Sealer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage

from .test_pipeline_flow import PEOPLE, fhir_bundle

pytestmark = pytest.mark.integration

KEY_NAMES = {"rrn": RRN_KEY, "dead_letter": DEAD_LETTER_KEY, "person": PERSON_KEY}
# Registration numbers with a valid check digit (strong evidence, rule rrn-exact). The mover
# changed phone and address between the hospitals: the number is what links the two records.
MOVER = ("74000001", "김서연", "김", "서연", "850321-2012341", "010-3141-5926",
         "부산광역시 해운대구 센텀중앙로 79", "48058")  # fmt: skip
MOVER_LATER = ("55500001", "김서연", "김", "서연", "850321-2012341", "010-9999-0000",
               "서울특별시 종로구 종로 1", "03154")  # fmt: skip
NEW_PERSON = ("73000003", "박지훈", "박", "지훈", "900215-1234562", "010-5555-0101",
              "광주광역시 북구 용봉로 77", "61186")  # fmt: skip


def add_version(directory: Path, name: str, version: str, activates: dt.datetime | None) -> bytes:
    directory.mkdir(mode=0o700, exist_ok=True)
    material = secrets.token_hex(32).encode()
    path = directory / f"{name}.{version}.key"
    path.write_bytes(material)
    path.chmod(0o600)
    if activates is not None:
        (directory / f"{name}.{version}.activates").write_text(activates.isoformat())
    return material


def bundle(message_id: str, person: tuple[str, ...], hospital: str) -> FeedMessage:
    system = f"http://{hospital.lower()}.example.kr/patient-id"
    return FeedMessage(
        message_id.encode(), fhir_bundle(message_id, person, system), "application/fhir+json"
    )


def broken(message_id: str) -> FeedMessage:
    return FeedMessage(
        message_id.encode(), b'{"resourceType": "Bundle", "id": "%s", "entry": [' % message_id.encode(),
        "application/fhir+json",
    )  # fmt: skip


async def test_the_rrn_dead_letter_and_person_keys_rotate_mid_feed_with_nothing_lost(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    keys = Keys.fresh()
    dirs = {stem: tmp_path / stem for stem in KEY_NAMES}
    old = {stem: add_version(dirs[stem], name, "k1", None) for stem, name in KEY_NAMES.items()}
    hospitals = ["H001", "H002"]
    first = [bundle("F-1", MOVER, "H001"), bundle("F-2", PEOPLE[1], "H001"), broken("F-x")]
    second = [bundle("G-1", MOVER_LATER, "H002"), bundle("G-2", NEW_PERSON, "H002"), broken("G-x")]

    async with running_pipeline(kafka, topic_prefix, hospitals, keys, keys_dirs=dirs) as observer:
        await publish_messages(kafka, topics.feed("H001"), first)
        await observer.wait_until_settled(len(first), timeout_s=120)

    # The rotation: k2 of every key, in force from now on; k1 stays for what it sealed and hashed.
    rotated_at = dt.datetime.now(dt.UTC)
    new = {
        stem: add_version(dirs[stem], name, "k2", rotated_at) for stem, name in KEY_NAMES.items()
    }

    async with running_pipeline(kafka, topic_prefix, hospitals, keys, keys_dirs=dirs) as observer:
        await publish_messages(kafka, topics.feed("H002"), second)
        view = await observer.wait_until_settled(len(first) + len(second), timeout_s=120)

    # Registration numbers: sealed under k1 before the rotation, under k2 after; all opened.
    rrn_old, rrn_new = Sealer(old["rrn"]).key_id, Sealer(new["rrn"]).key_id
    sealed_by = {r["hospital"]: set() for r in view.identity}
    for record in view.identity:
        sealed_by[record["hospital"]].add(record["rrn_key_id"])
    assert sealed_by == {"H001": {rrn_old}, "H002": {rrn_new}}
    assert not [d for d in view.dead_letters if d["service"] == "linkage"]

    # Dead letters: one each side of the rotation, each under its version, both open.
    assert len(view.dead_letters) == 2, [d["reason_code"] for d in view.dead_letters]
    dl_old, dl_new = Sealer(old["dead_letter"]), Sealer(new["dead_letter"])
    by_key = {dl_old.key_id: dl_old, dl_new.key_id: dl_new}
    originals = sorted(
        by_key[d["seal_key_id"]].unseal(d["sealed_original"], d["dead_letter_id"])
        for d in view.dead_letters
    )
    assert originals == sorted([first[2].value, second[2].value])
    assert {d["seal_key_id"] for d in view.dead_letters} == {dl_old.key_id, dl_new.key_id}

    # The same patient at H002 after the rotation is the person it was at H001 before it.
    latest: dict[str, dict[str, object]] = {}
    for decision in view.decisions:
        ref = str(decision["patient_ref"])
        if ref not in latest or int(decision["sequence"]) > int(latest[ref]["sequence"]):  # type: ignore[call-overload]
            latest[ref] = decision
    person_of = {r["message_id"]: latest[r["patient_ref"]]["person_id"] for r in view.identity}
    assert person_of["G-1"] == person_of["F-1"]
    # ... on the registration number (hashed under k2 and k1 alike), not on other evidence.
    [moved] = [r for r in view.identity if r["message_id"] == "G-1"]
    assert latest[moved["patient_ref"]]["rule"] == "rrn-exact"
    assert len({person_of["F-1"], person_of["F-2"], person_of["G-2"]}) == 3
    assert view.persons() == 3

    # A person first seen after the rotation is minted under the new person-key version.
    [newcomer] = [r for r in view.identity if r["message_id"] == "G-2"]
    minted = f"person:{newcomer['patient_ref']}/0".encode()
    assert (
        person_of["G-2"] == "P" + hmac.new(new["person"], minted, hashlib.sha256).hexdigest()[:20]
    )

    # Nothing lost: every clinical record of both halves reached the curated topic once.
    assert len(view.clinical) == 4 * 2  # F-1, F-2, G-1, G-2: a condition and a lab result each
    assert len(view.curated) == len({c["curated_id"] for c in view.curated}) == 8
    by_hospital = {
        h: {c["pseudonym"] for c in view.curated if c["hospital"] == h} for h in hospitals
    }
    # Two persons at each hospital, one of them the same before and after the rotation.
    assert [len(by_hospital[h]) for h in hospitals] == [2, 2]
    assert len(by_hospital["H001"] & by_hospital["H002"]) == 1
