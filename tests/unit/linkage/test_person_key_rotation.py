"""D33: the person key and the RRN key rotate mid-stream and nothing is lost: numbers sealed
before the rotation still open, and a registration number hashed under the new person-key
version still meets the same number hashed under the old one, also after a restart."""

from __future__ import annotations

import datetime as dt
import json
import secrets

from biostream.codec import default_codec
from biostream.contract import Inbound
from biostream.contracts import IDENTITY_RECORD, LINK_DECISION
from biostream.envelopes import Envelopes
from biostream.keyring import KeyRing, KeyVersion
from biostream.sealing import Sealer, SealingKeys
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.handlers import FeedMessageHandler, IngestMetrics
from linkage.domain.profile import Identity, Profile, make_profile, rrn_hash, same_rrn
from linkage.domain.weights import default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from prometheus_client import CollectorRegistry

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
T = 1_800_000_000_000  # the rotation: k2 of both keys activates at this input time
TOPICS = Topics("r.")
CODEC = default_codec()
RRN_OLD, RRN_NEW = secrets.token_hex(32).encode(), secrets.token_hex(32).encode()
PERSON_OLD, PERSON_NEW = secrets.token_bytes(32), secrets.token_bytes(32)


def ring(name: str, old: bytes, new: bytes | None) -> KeyRing:
    versions = [KeyVersion("k1", old)] + ([KeyVersion("k2", new, T)] if new else [])
    return KeyRing(name, versions)


def patient(message_id: str, mrn: str, rrn: str, given: str) -> bytes:
    return json.dumps(
        {"resourceType": "Bundle", "id": message_id, "type": "collection", "entry": [{"resource": {
            "resourceType": "Patient",
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "system": "http://h.example.kr/patient-id", "value": mrn},
                           {"system": "http://www.hl7korea.or.kr/Identifier/rrn", "value": rrn}],
            "name": [{"text": "김" + given, "family": "김", "given": [given]}], "gender": "male",
            "birthDate": "1997-10-13"}}]},
        ensure_ascii=False,
    ).encode()  # fmt: skip


def ingest(hospital: str, offset: int, at_ms: int, feed: bytes) -> Inbound:
    handler = FeedMessageHandler(
        CODEC, TOPICS, Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS), b"k" * 32,
        IngestMetrics.create(CollectorRegistry()),
        rrn_sealer=SealingKeys(ring("rrn", RRN_OLD, RRN_NEW)),
    )  # fmt: skip
    out = handler(
        Inbound(TOPICS.feed(hospital), 0, offset, None, feed, (), at_ms), StateStore(), NOW
    )
    [identity] = [o for o in out if o.topic == TOPICS.identity_records]
    # The identity record is produced at the feed message's time (the processor's producer
    # stamps it so); linkage chooses its key versions from that time.
    return Inbound(TOPICS.identity_records, 0, offset, identity.key, identity.value, (), at_ms)


def linkage(person_keys: KeyRing) -> LinkageHandler:
    return LinkageHandler(
        CODEC, TOPICS, Envelopes("linkage", "User:svc-linkage", CODEC, TOPICS), person_keys,
        default_params(), LinkageMetrics.create(CollectorRegistry()),
        SealingKeys(ring("rrn", RRN_OLD, RRN_NEW)),
    )  # fmt: skip


def persons(
    handler: LinkageHandler, message: Inbound, state: StateStore
) -> list[dict[str, object]]:
    return [
        CODEC.decode(o.value, LINK_DECISION)
        for o in handler(message, state, NOW)
        if o.topic == TOPICS.link_decisions
    ]


TWIN_RRN = "971013-1019901"


def test_a_patient_seen_before_the_rotation_is_linked_on_the_number_after_it() -> None:
    before = ingest("H001", 0, T - 60_000, patient("M1", "001", TWIN_RRN, "길동"))
    after = ingest("H002", 1, T + 60_000, patient("M2", "777", TWIN_RRN, "길똥"))
    first_new = ingest("H003", 2, T + 120_000, patient("M3", "555", "850203-1234568", "철수"))
    records = [CODEC.decode(m.value, IDENTITY_RECORD) for m in (before, after)]
    # The RRN key rotated too: each record names the version that sealed it.
    assert [r["rrn_key_id"] for r in records] == [Sealer(RRN_OLD).key_id, Sealer(RRN_NEW).key_id]

    state = StateStore()
    handler = linkage(ring("person", PERSON_OLD, PERSON_NEW))
    [old] = persons(handler, before, state)
    decided = persons(handler, after, state)
    assert decided[-1]["person_id"] == old["person_id"]
    assert str(decided[-1]["rule"]).startswith("rrn")

    # A person first seen after the rotation is minted under the new version.
    [new] = persons(handler, first_new, state)
    index = handler.index
    assert index is not None
    index.id_key = PERSON_NEW
    assert new["person_id"] == index.person_id(str(new["patient_ref"]), 0)
    index.id_key = PERSON_OLD
    assert new["person_id"] != index.person_id(str(new["patient_ref"]), 0)

    # After a restart (the index rebuilt from the durable state) the old profile still matches.
    again = ingest("H004", 3, T + 180_000, patient("M4", "321", TWIN_RRN, "길동"))
    decided = persons(linkage(ring("person", PERSON_OLD, PERSON_NEW)), again, state)
    assert decided[-1]["person_id"] == old["person_id"]


def test_hashes_under_different_versions_are_unknown_not_a_disagreement() -> None:
    identity = Identity("r1", "김", "길동", birth_date="1997-10-13", sex="M", rrn="9710131019901")
    old = make_profile(identity, [("k1", PERSON_OLD)])
    both = make_profile(identity, [("k2", PERSON_NEW), ("k1", PERSON_OLD)])
    only_new = make_profile(identity, [("k2", PERSON_NEW)])
    other = make_profile(
        Identity("r2", "김", "길동", birth_date="1997-10-13", sex="M", rrn="9710131019918"),
        [("k2", PERSON_NEW), ("k1", PERSON_OLD)],
    )
    assert old.rrn is not None and both.rrn is not None and only_new.rrn is not None
    assert other.rrn is not None
    assert same_rrn(both.rrn, old.rrn) is True
    assert same_rrn(other.rrn, old.rrn) is False
    assert same_rrn(other.rrn, both.rrn) is False
    # Once k1 is retired, a profile hashed only under it meets new ones as an unknown number.
    assert same_rrn(only_new.rrn, old.rrn) is None


def test_a_profile_stored_before_versioned_keys_is_read_as_version_k1() -> None:
    identity = Identity("r1", "김", "길동", birth_date="1997-10-13", sex="M", rrn="9710131019901")
    stored = make_profile(identity, PERSON_OLD).to_list()
    stored[5] = rrn_hash(PERSON_OLD, "9710131019901")  # the bare hash written before D33
    loaded = Profile.from_list(stored)
    assert loaded.rrn is not None
    fresh = make_profile(identity, [("k2", PERSON_NEW), ("k1", PERSON_OLD)])
    assert fresh.rrn is not None and same_rrn(fresh.rrn, loaded.rrn) is True


def test_a_number_sealed_under_a_key_linkage_does_not_hold_is_dead_lettered_not_lost() -> None:
    """Why the runbook says readers first: linkage without k2 cannot open what ingest sealed
    under it; the record goes to the dead-letter topic with its reason, replayable later."""
    from biostream.contracts import DEAD_LETTER
    from biostream.step import handle_message

    after = ingest("H001", 0, T + 1, patient("M9", "009", TWIN_RRN, "길동"))
    behind = LinkageHandler(
        CODEC, TOPICS, Envelopes("linkage", "User:svc-linkage", CODEC, TOPICS),
        ring("person", PERSON_OLD, None), default_params(),
        LinkageMetrics.create(CollectorRegistry()), SealingKeys(ring("rrn", RRN_OLD, None)),
    )  # fmt: skip
    out = handle_message(behind, behind.envelopes.failure_handler("LINKAGE_INTERNAL_ERROR"),
                         StateStore(), after, NOW)  # fmt: skip
    [letter] = [CODEC.decode(o.value, DEAD_LETTER) for o in out if o.topic == TOPICS.dead_letters]
    assert letter["reason_code"] == "RRN_KEY_NOT_HELD"
    assert Sealer(RRN_NEW).key_id in letter["message"]
    assert TWIN_RRN.replace("-", "") not in letter["message"]
