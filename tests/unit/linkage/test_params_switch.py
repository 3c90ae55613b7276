"""D41: the linkage handler applies a parameter version that became ACTIVE on linkage.params
from that message on, keeps it in its state, and a restart on that state goes on with it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zlib
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import DEAD_LETTER, IDENTITY_RECORD, LINK_DECISION, LINKAGE_PARAMS_VERSION
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from linkage import state as linkage_state
from linkage.domain.params_versions import params_digest
from linkage.domain.weights import Params, Thresholds, default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from prometheus_client import CollectorRegistry

CODEC = AvroCodec(SchemaRegistry())
TOPICS = Topics("t.")
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
STRICT = dataclasses.replace(default_params(), thresholds=Thresholds(match=1000.0, review=0.0))


def handler() -> LinkageHandler:
    envelopes = Envelopes("linkage", "User:linkage", CODEC, TOPICS)
    return LinkageHandler(
        CODEC, TOPICS, envelopes, b"p" * 32, default_params(),
        LinkageMetrics.create(CollectorRegistry()),
    )  # fmt: skip


def identity(ref: str, offset: int) -> Inbound:
    record: dict[str, Any] = {
        "record_id": f"H001/M{offset}/0", "patient_ref": ref, "hospital": "H001",
        "message_id": f"M{offset}", "source_format": "FHIR", "received_at": NOW,
        "family_name": "김", "given_name": "서연", "name_latin": None,
        "birth_date": dt.date(1997, 10, 13), "sex": "F", "rrn": None, "local_patient_no": "1",
        "phone": "01012345678", "address": None, "postal_code": None, "province_code": "11",
        "quality_flags": [],
    }  # fmt: skip
    value = CODEC.encode(IDENTITY_RECORD, record)
    return Inbound(TOPICS.identity_records, 0, offset, None, value, (), 0)


def version(number: int, state: str, params: Params, *, digest: str | None = None) -> Inbound:
    text = params.to_json()
    record = {
        "version": number, "state": state, "params_json_zlib": zlib.compress(text.encode()),
        "params_sha256": digest or params_digest(text),
        "trained_on": {
            "topic": TOPICS.identity_records, "records": 10, "skipped": 0, "offsets": [],
            "first_record_at": None, "last_record_at": None, "sample_sha256": "0" * 64,
        },
        "proposed_by": "User:linkage-trainer", "proposed_at": NOW, "shadow": None,
        "activated_by": None, "activated_at": None, "retired_at": None,
    }  # fmt: skip
    value = CODEC.encode(LINKAGE_PARAMS_VERSION, record)
    return Inbound(TOPICS.linkage_params, 0, number, str(number).encode(), value, (), 0)


def decisions(out: list[Outbound]) -> list[dict[str, Any]]:
    return [CODEC.decode(o.value, LINK_DECISION) for o in out if o.topic == TOPICS.link_decisions]


def test_an_activated_version_decides_from_the_next_record_on_and_survives_a_restart() -> None:
    linkage, state = handler(), StateStore()
    (first,) = decisions(linkage(identity("r1", 1), state, NOW))
    (second,) = decisions(linkage(identity("r2", 2), state, NOW))
    assert (first["params_version"], second["outcome"]) == (None, "MATCH")

    assert linkage(version(1, "PROPOSED", STRICT), state, NOW) == []  # not active: nothing
    applied = linkage(version(1, "ACTIVE", STRICT), state, NOW)
    assert [o.topic for o in applied] == [TOPICS.audit_events_of("linkage")]
    assert linkage_state.params_version(state) is not None

    (third,) = decisions(linkage(identity("r3", 3), state, NOW))
    assert (third["outcome"], third["params_version"]) == ("POSSIBLE_MATCH", 1)

    # A restart (or a standby taking over): only the state survives; the version comes back.
    restored = StateStore()
    for key in list(state.keys_with_prefix("")):
        restored.restore(key, state.get(key))
    again = handler()
    (fourth,) = decisions(again(identity("r4", 4), restored, NOW))
    assert (fourth["outcome"], fourth["params_version"]) == ("POSSIBLE_MATCH", 1)
    assert again.params.thresholds.match == 1000.0


def test_the_same_version_again_changes_nothing_and_a_new_one_replaces_its_chunks() -> None:
    linkage, state = handler(), StateStore()
    linkage(version(1, "ACTIVE", STRICT), state, NOW)
    assert linkage(version(1, "ACTIVE", STRICT), state, NOW) == []
    linkage(version(2, "ACTIVE", default_params()), state, NOW)
    stored = linkage_state.params_version(state)
    assert stored is not None and stored[0] == 2
    (decision,) = decisions(linkage(identity("r1", 1), state, NOW))
    assert decision["params_version"] == 2


def test_parameters_that_differ_from_their_digest_are_dead_lettered_and_not_applied() -> None:
    linkage, state = handler(), StateStore()
    out = linkage(version(1, "ACTIVE", STRICT, digest="0" * 64), state, NOW)
    (letter,) = [CODEC.decode(o.value, DEAD_LETTER) for o in out if o.topic == TOPICS.dead_letters]
    assert letter["reason_code"] == "PARAMS_DIGEST_MISMATCH"
    assert linkage_state.params_version(state) is None
    (decision,) = decisions(linkage(identity("r1", 1), state, NOW))
    assert decision["params_version"] is None


def test_large_parameters_are_kept_in_chunks_a_changelog_record_holds() -> None:
    state = StateStore()
    blob = bytes(range(256)) * 3000  # 768,000 bytes: three chunks
    linkage_state.save_params_version(state, 7, blob, "ab" * 32)
    stored = linkage_state.params_version(state)
    assert stored == (7, "ab" * 32, 3)
    assert linkage_state.params_of_version(state, 3) == blob
    assert all(
        len(state.get(f"v:{i}") or b"") <= linkage_state.PARAMS_CHUNK_BYTES for i in range(3)
    )
    linkage_state.save_params_version(state, 8, b"small", "cd" * 32)
    assert state.get("v:1") is None and state.get("v:2") is None
    assert linkage_state.params_of_version(state, 1) == b"small"
