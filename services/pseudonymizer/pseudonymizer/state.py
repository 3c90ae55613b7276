"""The pseudonymizer's state: every key family of its changelog and the encoding of each value.

The handler reads and writes its state only through ``PseudonymizerState``; no other module spells
a key. Keys and value layouts are the changelog's, restored by every restart and by
``pseudonymizer reidentify``: they never change.

=================================  ===========================================================
key                                value
=================================  ===========================================================
``dec:<patient_ref>``              ``PersonFacts`` of the newest link decision (JSON array)
``wait:<patient_ref>``             clinical records waiting for that decision (packed Avro)
``refs:<person_id>``               the person's patient_refs (JSON list)
``rel:<dataset>:<patient_ref>``    ``Released``: pseudonym, key version, offset, newest ids
``relc:<dataset>:<ref>:<n>``       the n-th full chunk of older released curated ids (JSON)
``kc:<dataset>:<class>``           a k-anonymity class: its persons (JSON list) or ``open``
``kh:<dataset>:<class>``           records held below k (packed: 8-byte time, Avro record)
``wd:<person_id>``                 consent withdrawn for these datasets (JSON; empty = all)
``wdref:<patient_ref>``            a withdrawal waiting for the patient's link decision
``waitold:<older_ref>``            D33: refs whose waiting records name it as an older ref (JSON)
``wdold:<older_ref>``              D33: refs whose waiting withdrawal names it likewise (JSON)
``cg:<person_id>``                 consent granted for these datasets (JSON; empty = all)
``pol:<dataset>``                  version and digest of the policy last announced (D23c)
``apol:<dataset>``                 D46: the newest signed policy version applied (its Avro bytes)
``arun:<dataset>``                 D46: ``Run``: whether the dataset releases, and the clinical
                                   position it was released through when it last stopped (JSON)
``cpos:<partition>``               D46: the next ``clinical.records`` offset the live stream
                                   handles in that partition (decimal)
``bf:<dataset>``                   D46: ``Backfill``: its history replay, per partition the next
                                   and end offset, and the refs parked when it started (JSON)
=================================  ===========================================================
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from biostream.state import StateStore

from pseudonymizer.domain.consent import Consent
from pseudonymizer.domain.kanon import ClassState, HeldRecord
from pseudonymizer.domain.release import PersonFacts, Released
from pseudonymizer.domain.rotation import deciding_ref

DECISION_PREFIX = "dec:"
APPLIED_PREFIX = "apol:"
BACKFILL_PREFIX = "bf:"
LIVE_PREFIX = "cpos:"
# D33: the two families that file a newer ref under its older refs (see the table).
WAITING_ON_OLDER = "waitold"
WITHDRAWAL_ON_OLDER = "wdold"
_OPEN_CLASS = b"open"


class PseudonymizerState:
    """Typed access to the service's state store (see the module's table of keys)."""

    __slots__ = ("store",)

    def __init__(self, store: StateStore) -> None:
        self.store = store

    # --- link decisions and the records waiting for them ---------------------------------------

    def has_decision(self, patient_ref: str) -> bool:
        return self.store.get(decision_key(patient_ref)) is not None

    def facts(self, patient_ref: str) -> PersonFacts | None:
        stored = self.store.get(decision_key(patient_ref))
        return None if stored is None else decode_facts(stored)

    def put_facts(self, patient_ref: str, facts: PersonFacts) -> None:
        self.store.put(decision_key(patient_ref), encode_facts(facts))

    def park(self, patient_ref: str, raw: bytes) -> bool:
        """Keeps a clinical record until its decision arrives; True if it is the patient's first."""
        key = f"wait:{patient_ref}"
        waiting = self.store.get(key)
        self.store.put(key, (waiting or b"") + pack([raw]))
        return waiting is None

    def take_waiting(self, patient_ref: str) -> list[bytes] | None:
        """The patient's waiting records (oldest first), removed from the state; None if none."""
        key = f"wait:{patient_ref}"
        waiting = self.store.get(key)
        if waiting is None:
            return None
        self.store.delete(key)
        return unpack(waiting)

    def deciding_ref(self, patient_ref: str, previous_refs: list[str]) -> str | None:
        """D33: the ref whose decision places a record (``domain.rotation.deciding_ref``)."""
        return deciding_ref(patient_ref, previous_refs, self.has_decision)

    def wait_on_older(self, family: str, patient_ref: str, older_refs: list[str]) -> None:
        """D33: files ``patient_ref`` under each of its older refs (``waitold:``/``wdold:``),
        so that an older ref's first decision finds what waits under the new one."""
        for older in older_refs:
            key = f"{family}:{older}"
            newer: list[str] = json.loads(self.store.get(key) or b"[]")
            if patient_ref not in newer:
                self.store.put(key, json.dumps([*newer, patient_ref]).encode())

    def take_waiting_on(self, family: str, older_ref: str) -> list[str]:
        """D33: the newer refs filed under ``older_ref`` (removed from the state)."""
        key = f"{family}:{older_ref}"
        stored = self.store.get(key)
        if stored is None:
            return []
        self.store.delete(key)
        newer: list[str] = json.loads(stored)
        return newer

    def waiting_patients(self) -> int:
        return sum(1 for _ in self.store.keys_with_prefix("wait:"))

    # --- persons and their patient_refs ------------------------------------------------------------

    def refs(self, person_id: str) -> list[str]:
        refs: list[str] = json.loads(self.store.get(f"refs:{person_id}") or b"[]")
        return refs

    def move_ref(self, patient_ref: str, person_id: str, previous_person_id: str | None) -> None:
        """Files a patient_ref under its (new) person, out of its previous person's list."""
        if previous_person_id is not None:
            old_key = f"refs:{previous_person_id}"
            old = [r for r in self.refs(previous_person_id) if r != patient_ref]
            if old:
                self.store.put(old_key, json.dumps(old).encode())
            else:
                self.store.delete(old_key)
        refs = self.refs(person_id)
        if patient_ref not in refs:
            self.store.put(f"refs:{person_id}", json.dumps([*refs, patient_ref]).encode())

    # --- what each dataset has received ------------------------------------------------------------

    def released(self, dataset: str, patient_ref: str) -> Released | None:
        stored = self.store.get(released_key(dataset, patient_ref))
        return decode_released(stored) if stored else None

    def put_released(self, dataset: str, patient_ref: str, released: Released) -> None:
        self.store.put(released_key(dataset, patient_ref), encode_released(released))

    def add_released(
        self, dataset: str, patient_ref: str, released: Released, curated_id: str
    ) -> None:
        """Records one more released curated id; a chunk that fills up is stored apart, once."""
        full = released.add(curated_id)
        key = released_key(dataset, patient_ref)
        if full is not None:
            self.store.put(chunk_key(key, released.chunks - 1), json.dumps(full).encode())
        self.store.put(key, encode_released(released))

    def pseudonyms(self, dataset: str, patient_refs: list[str]) -> list[str]:
        """The pseudonyms (sorted) the dataset received these patient_refs' records under."""
        found = (self.released(dataset, ref) for ref in patient_refs)
        return sorted({released.pseudonym for released in found if released is not None})

    def released_ids(self, dataset: str, patient_ref: str, released: Released) -> list[str]:
        """Every curated id the patient_ref released into the dataset, oldest first."""
        key = released_key(dataset, patient_ref)
        ids: list[str] = []
        for number in range(released.chunks):
            ids += json.loads(self.store.get(chunk_key(key, number)) or b"[]")
        return ids + released.curated_ids

    # --- k-anonymity classes and the records held below k ---------------------------------------

    def k_class(self, dataset: str, klass: str) -> ClassState | None:
        stored = self.store.get(f"kc:{dataset}:{klass}")
        if stored is None:
            return None
        if stored == _OPEN_CLASS:
            return ClassState(open=True)
        return ClassState(open=False, members=tuple(json.loads(stored)))

    def put_k_class(self, dataset: str, klass: str, k_class: ClassState) -> None:
        value = _OPEN_CLASS if k_class.open else json.dumps(list(k_class.members)).encode()
        self.store.put(f"kc:{dataset}:{klass}", value)

    def hold(self, dataset: str, klass: str, record: HeldRecord) -> None:
        key = f"kh:{dataset}:{klass}"
        self.store.put(key, (self.store.get(key) or b"") + pack([_held_entry(record)]))

    def take_held(self, dataset: str, klass: str) -> list[HeldRecord]:
        """The records a class held (oldest first), removed from the state."""
        key = f"kh:{dataset}:{klass}"
        held = self.store.get(key)
        if held is None:
            return []
        self.store.delete(key)
        return [_read_held(entry) for entry in unpack(held)]

    def held_classes(self, dataset: str) -> list[tuple[str, list[HeldRecord]]]:
        """Every class of the dataset holding records, with them (a list: callers rewrite keys)."""
        prefix = f"kh:{dataset}:"
        return [
            (key[len(prefix) :], [_read_held(e) for e in unpack(self.store.get(key) or b"")])
            for key in list(self.store.keys_with_prefix(prefix))
        ]

    def keep_held(self, dataset: str, klass: str, kept: list[HeldRecord]) -> None:
        key = f"kh:{dataset}:{klass}"
        if kept:
            self.store.put(key, pack([_held_entry(record) for record in kept]))
        else:
            self.store.delete(key)

    def held_count(self, dataset: str) -> int:
        return sum(
            len(unpack(self.store.get(key) or b""))
            for key in self.store.keys_with_prefix(f"kh:{dataset}:")
        )

    # --- consent --------------------------------------------------------------------------------

    def consent(self, person_id: str) -> Consent:
        return Consent(
            withdrawn=_datasets(self.store.get(f"wd:{person_id}")),
            granted=_datasets(self.store.get(f"cg:{person_id}")),
        )

    def withdraw(self, person_id: str, datasets: list[str]) -> None:
        self.store.put(f"wd:{person_id}", json.dumps(datasets).encode())

    def revoke_grant(self, person_id: str) -> None:
        self.store.delete(f"cg:{person_id}")

    def grant(self, person_id: str, datasets: list[str]) -> None:
        self.store.put(f"cg:{person_id}", json.dumps(datasets).encode())
        self.store.delete(f"wd:{person_id}")

    def pend_withdrawal(self, patient_ref: str, datasets: list[str]) -> None:
        self.store.put(f"wdref:{patient_ref}", json.dumps(datasets).encode())

    def clear_pending_withdrawal(self, patient_ref: str) -> None:
        self.store.delete(f"wdref:{patient_ref}")

    def take_pending_withdrawal(self, patient_ref: str) -> list[str] | None:
        pending = _datasets(self.store.get(f"wdref:{patient_ref}"))
        if pending is not None:
            self.store.delete(f"wdref:{patient_ref}")
        return pending

    # --- policies announced in the ledger (D23c) -----------------------------------------------------

    def announced(self, dataset: str) -> bytes | None:
        return self.store.get(f"pol:{dataset}")

    def mark_announced(self, dataset: str, marker: bytes) -> None:
        self.store.put(f"pol:{dataset}", marker)

    # --- signed policies applied, datasets running, history replays (D46) ---------------------------

    def applied_policy(self, dataset: str) -> bytes | None:
        return self.store.get(f"{APPLIED_PREFIX}{dataset}")

    def put_applied_policy(self, dataset: str, raw: bytes) -> None:
        self.store.put(f"{APPLIED_PREFIX}{dataset}", raw)

    def applied_datasets(self) -> list[str]:
        """Every dataset a signed policy was applied for (a scan: at start-up only)."""
        return sorted(
            k.removeprefix(APPLIED_PREFIX) for k in self.store.keys_with_prefix(APPLIED_PREFIX)
        )

    def run(self, dataset: str) -> Run:
        stored = self.store.get(f"arun:{dataset}")
        if stored is None:
            return Run(False, {})
        running, through = json.loads(stored)
        return Run(running, {int(p): o for p, o in through.items()})

    def put_run(self, dataset: str, run: Run) -> None:
        self.store.put(f"arun:{dataset}", json.dumps([run.running, run.through]).encode())

    def note_live(self, partition: int, offset: int) -> None:
        """The live stream handled ``offset`` of a clinical partition (in offset order)."""
        self.store.put(f"{LIVE_PREFIX}{partition}", b"%d" % (offset + 1))

    def live_positions(self) -> dict[int, int]:
        return {
            int(key.removeprefix(LIVE_PREFIX)): int(self.store.get(key) or b"0")
            for key in self.store.keys_with_prefix(LIVE_PREFIX)
        }

    def parked_refs(self) -> list[str]:
        """The patient_refs whose records wait for their link decision now (a scan)."""
        return sorted(key.removeprefix("wait:") for key in self.store.keys_with_prefix("wait:"))

    def backfills(self) -> dict[str, Backfill]:
        """Every history replay under way (a scan: at start-up only)."""
        return {
            key.removeprefix(BACKFILL_PREFIX): decode_backfill(self.store.get(key) or b"")
            for key in self.store.keys_with_prefix(BACKFILL_PREFIX)
        }

    def put_backfill(self, dataset: str, backfill: Backfill) -> None:
        self.store.put(f"{BACKFILL_PREFIX}{dataset}", encode_backfill(backfill))

    def drop_backfill(self, dataset: str) -> None:
        self.store.delete(f"{BACKFILL_PREFIX}{dataset}")


@dataclass(frozen=True)
class Run:
    """D46: whether a dataset approved on the policy topic releases now; ``through``: per
    clinical partition, the live position when it last stopped (where a restart's history
    replay begins; empty if it never stopped)."""

    running: bool
    through: dict[int, int]


@dataclass
class Backfill:
    """D46: a dataset's history replay: per partition the next offset to replay and the end
    (exclusive: the live position when it started); the refs whose records were parked then
    (their records reach it live, when their decision comes); records released so far."""

    next: dict[int, int]
    end: dict[int, int]
    parked: frozenset[str]
    released: int = 0
    started_ms: int = 0

    @property
    def done(self) -> bool:
        return all(self.next.get(p, 0) >= end for p, end in self.end.items())

    def covers(self, partition: int, offset: int) -> bool:
        end = self.end.get(partition)
        return end is not None and self.next.get(partition, 0) <= offset < end


def encode_backfill(backfill: Backfill) -> bytes:
    return json.dumps(
        {
            "next": backfill.next,
            "end": backfill.end,
            "parked": sorted(backfill.parked),
            "released": backfill.released,
            "started_ms": backfill.started_ms,
        }
    ).encode()


def decode_backfill(data: bytes) -> Backfill:
    raw = json.loads(data)
    return Backfill(
        {int(p): o for p, o in raw["next"].items()},
        {int(p): o for p, o in raw["end"].items()},
        frozenset(raw["parked"]),
        raw["released"],
        raw["started_ms"],
    )


def decision_key(patient_ref: str) -> str:
    return f"{DECISION_PREFIX}{patient_ref}"


def released_key(dataset: str, patient_ref: str) -> str:
    return f"rel:{dataset}:{patient_ref}"


def chunk_key(released_key: str, number: int) -> str:
    return f"relc{released_key.removeprefix('rel')}:{number}"


def encode_facts(facts: PersonFacts) -> bytes:
    return json.dumps(
        [
            facts.person_id,
            facts.sequence,
            facts.birth_year,
            facts.sex,
            facts.province_code,
            facts.birth_month,
            facts.postal_prefix,
            facts.district_code,
        ]
    ).encode()


def decode_facts(data: bytes) -> PersonFacts:
    return PersonFacts(*json.loads(data))


def encode_released(released: Released) -> bytes:
    fields: list[object] = [
        released.pseudonym,
        released.key_version,
        released.offset_days,
        released.curated_ids,
    ]
    if released.chunks:  # without chunks, the layout of the entries written before chunks existed
        fields.append(released.chunks)
    return json.dumps(fields).encode()


def decode_released(data: bytes) -> Released:
    fields = json.loads(data)
    p, kv, offset, ids = fields[:4]
    return Released(p, kv, offset, ids, fields[4] if len(fields) > 4 else 0)


def pack(items: list[bytes]) -> bytes:
    """Length-prefixed list of byte strings (records waiting in the state)."""
    return b"".join(struct.pack(">I", len(item)) + item for item in items)


def unpack(data: bytes) -> list[bytes]:
    items, position = [], 0
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        position += 4
        items.append(data[position : position + length])
        position += length
    return items


def _held_entry(record: HeldRecord) -> bytes:
    return struct.pack(">d", record.held_since) + record.raw


def _read_held(entry: bytes) -> HeldRecord:
    (held_since,) = struct.unpack_from(">d", entry)
    return HeldRecord(held_since, entry[8:])


def _datasets(stored: bytes | None) -> list[str] | None:
    if stored is None:
        return None
    datasets: list[str] = json.loads(stored)
    return datasets
