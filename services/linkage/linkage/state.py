"""Linkage's durable state: every key family, its encoding, and how the person index is rebuilt
from it and written back (D-linkage-4: compact durable state, derived indexes in memory).

Values are compact JSON arrays; no registration number is ever stored (profiles hold only its
keyed hash). The handler reads and writes state only through these functions.
"""

from __future__ import annotations

import json
from typing import Final

from biostream.state import StateStore

from linkage.domain.index import PersonEntry, PersonIndex, RefEntry
from linkage.domain.profile import Profile
from linkage.domain.weights import Params

REF: Final = "r:"  # r:<patient_ref>   -> [person, sequence, profile, meta]
# meta: [record_id, hospital, province code or "", district code or ""]; entries written before
# D24 have no district (the handler's ``_district``).
PERSON: Final = "p:"  # p:<person_id>  -> [creation number, [patient_ref ...]]
ALIAS: Final = "a:"  # a:<patient_ref>  -> patient_ref it was merged into before it was seen
TASK: Final = "t:"  # t:<task_id>       -> [patient_ref, [[candidate person, one of its refs] ...]]
COUNTER: Final = "c"
PARAMS: Final = "v"  # v -> [version, sha256 of the JSON, chunk count]: the version applied (D41)
PARAMS_CHUNK: Final = "v:"  # v:<i> -> chunk i of that version's zlib-compressed parameters JSON
# Far below Kafka's default 1 MB record limit (a changelog record is one state value).
PARAMS_CHUNK_BYTES: Final = 256 * 1024

Candidates = list[list[str]]  # [[candidate person, one of its refs] ...]


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def load_index(state: StateStore, params: Params, person_key: bytes) -> PersonIndex:
    """D-linkage-4: the index from the durable refs, persons, aliases and counter; the blocking
    indexes are derived by ``PersonIndex.load``."""
    index = PersonIndex(params, person_key)
    refs: list[tuple[str, RefEntry]] = []
    persons: list[tuple[str, PersonEntry]] = []
    aliases: list[tuple[str, str]] = []
    for key in list(state.keys_with_prefix("")):
        value = state.get(key)
        if value is None:
            continue
        if key.startswith(REF):
            person, sequence, profile, meta = json.loads(value)
            refs.append(
                (key[len(REF) :], RefEntry(person, int(sequence), Profile.from_list(profile), meta))
            )
        elif key.startswith(PERSON):
            order, members = json.loads(value)
            persons.append((key[len(PERSON) :], PersonEntry(int(order), list(members))))
        elif key.startswith(ALIAS):
            aliases.append((key[len(ALIAS) :], value.decode()))
    counter_value = state.get(COUNTER)
    index.load(refs, persons, int(counter_value) if counter_value else 0, aliases)
    return index


def save_changes(index: PersonIndex, state: StateStore) -> None:
    """D-linkage-4: write what the index changed since the last save (its ``dirty`` sets)."""
    for ref in index.dirty.refs:
        entry = index.refs[ref]
        state.put(
            REF + ref, _dumps([entry.person, entry.sequence, entry.profile.to_list(), entry.meta])
        )
        state.delete(ALIAS + ref)
    for pid in index.dirty.persons:
        person = index.persons.get(pid)
        if person is None:
            state.delete(PERSON + pid)
        else:
            state.put(PERSON + pid, _dumps([person.order, person.refs]))
    # Only the aliases set since the last save: all of them each time would cost a lookup per
    # alias per message, and hospitals send merges for patients never seen here.
    for ref in index.dirty.aliases:
        target = index.aliases.get(ref)
        if target is not None:  # else linked since, and deleted with its ref above
            state.put(ALIAS + ref, target.encode())
    if index.dirty.refs or index.dirty.persons:
        state.put(COUNTER, str(index.counter).encode())
    index.dirty.clear()


def open_review_task(state: StateStore, task_id: str, ref: str, candidates: Candidates) -> None:
    """Remember an open review task: the ref under review and its candidates (D-linkage-2)."""
    state.put(TASK + task_id, _dumps([ref, candidates]))


def review_task(state: StateStore, task_id: str) -> tuple[str, Candidates] | None:
    """The open review task, or ``None`` when it is unknown or already closed."""
    stored = state.get(TASK + task_id)
    if stored is None:
        return None
    ref, candidates = json.loads(stored)
    return str(ref), [[str(person), str(member)] for person, member in candidates]


def close_review_task(state: StateStore, task_id: str) -> None:
    state.delete(TASK + task_id)


def save_params_version(state: StateStore, version: int, params_zlib: bytes, sha256: str) -> None:
    """D41: the parameter version linkage applies from this message on, with its parameters
    (zlib-compressed JSON, in chunks a changelog record can hold), written in the transaction
    of the batch it first applies to: a restart or a standby restores it at the same point."""
    chunks = [
        params_zlib[i : i + PARAMS_CHUNK_BYTES]
        for i in range(0, len(params_zlib), PARAMS_CHUNK_BYTES)
    ] or [b""]
    previous = params_version(state)
    for i, chunk in enumerate(chunks):
        state.put(f"{PARAMS_CHUNK}{i}", chunk)
    if previous is not None:
        for i in range(len(chunks), previous[2]):
            state.delete(f"{PARAMS_CHUNK}{i}")
    state.put(PARAMS, _dumps([version, sha256, len(chunks)]))


def params_version(state: StateStore) -> tuple[int, str, int] | None:
    """(version, sha256, chunk count) of the parameter version applied, None before any."""
    stored = state.get(PARAMS)
    if stored is None:
        return None
    version, sha256, chunks = json.loads(stored)
    return int(version), str(sha256), int(chunks)


def params_of_version(state: StateStore, chunks: int) -> bytes:
    """The applied version's zlib-compressed parameters JSON, its chunks joined."""
    parts = [state.get(f"{PARAMS_CHUNK}{i}") for i in range(chunks)]
    if any(part is None for part in parts):
        raise ValueError("the applied parameter version is incomplete in the state")
    return b"".join(part for part in parts if part is not None)
