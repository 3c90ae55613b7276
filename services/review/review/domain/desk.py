"""The review desk's model: open tasks, the identifying details they refer to, and where each
hospital patient stands now. Pure: no Kafka, no web, no clock (time is an argument).

Everything is rebuilt from the topics at start (identity.records, linkage.review-tasks,
linkage.review-decisions, linkage.decisions); nothing here is written anywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# The identity fields a steward compares, in display order, with their labels. The record's
# registration number is never shown in full (see ``masked_rrn``).
DISPLAY_FIELDS: tuple[tuple[str, str], ...] = (
    ("family_name", "Family name"),
    ("given_name", "Given name"),
    ("name_latin", "Name (Latin)"),
    ("birth_date", "Birth date"),
    ("sex", "Sex"),
    ("rrn", "Registration no."),
    ("phone", "Phone"),
    ("address", "Address"),
    ("postal_code", "Postal code"),
    ("hospital", "Hospital"),
    ("record_id", "Record"),
)

# Which identity fields each of linkage's comparison fields looks at.
COMPARED: dict[str, tuple[str, ...]] = {
    "family": ("family_name",),
    "given": ("given_name",),
    "latin": ("name_latin",),
    "birth": ("birth_date",),
    "sex": ("sex",),
    "rrn": ("rrn",),
    "phone": ("phone",),
    "address": ("address", "postal_code"),
}

DECISIONS: tuple[str, ...] = ("SAME_PERSON", "DIFFERENT_PEOPLE", "ESCALATE")


def masked_rrn(rrn: str | None) -> str | None:
    """D-review-2: a clear registration number (from a v1 producer; sealed ones stay sealed, D13)
    shown as its birth part and the sex digit: enough to compare, not the whole number."""
    if not rrn:
        return None
    return f"{rrn[:6]}-{rrn[6:7]}******" if len(rrn) == 13 else "*" * len(rrn)


@dataclass(frozen=True)
class Comparison:
    field: str
    level: str
    weight: float


@dataclass
class Task:
    task_id: str
    created_at: dt.datetime
    record_id: str
    patient_ref: str
    hospital: str
    provisional_person_id: str
    candidate_person_ids: list[str]
    score: float
    reason: str
    comparisons: list[Comparison]
    escalated: bool = False

    @classmethod
    def from_wire(cls, task: dict[str, Any]) -> Task:
        return cls(
            task_id=task["task_id"],
            created_at=task["created_at"],
            record_id=task["record_id"],
            patient_ref=task["patient_ref"],
            hospital=task["hospital"],
            provisional_person_id=task["provisional_person_id"],
            candidate_person_ids=list(task["candidate_person_ids"]),
            score=float(task["score"]),
            reason=task["reason"],
            comparisons=[
                Comparison(c["field"], c["level"], float(c["weight"]))
                for c in task.get("comparisons", [])
            ],
        )

    def summary(self, now: dt.datetime) -> dict[str, Any]:
        """D-review-3: what a queue row or `review tasks` shows: references, scores and codes, no
        identifying data."""
        return {
            "task_id": self.task_id,
            "created_at": self.created_at.isoformat(),
            "age_s": round(max((now - self.created_at).total_seconds(), 0.0), 1),
            "hospital": self.hospital,
            "record_id": self.record_id,
            "candidate_person_ids": self.candidate_person_ids,
            "score": round(self.score, 2),
            "reason": self.reason,
            "escalated": self.escalated,
        }


@dataclass(frozen=True)
class Decided:
    decision: str
    reviewer: str
    decided_at: dt.datetime


@dataclass(frozen=True)
class Side:
    """One column of the side-by-side view: a record and the person it belongs to."""

    title: str
    person_id: str | None
    values: dict[str, str | None]


@dataclass(frozen=True)
class TaskView:
    task: Task
    sides: list[Side]
    # field label -> (level, weight) of linkage's comparison, for the row it explains
    agreement: dict[str, Comparison]
    decided: Decided | None
    # After a decision: the person the record belongs to now and how many records it has.
    resulting_person: str | None
    resulting_members: int


@dataclass
class Desk:
    """D-review-2: the desk's whole view, rebuilt at every start from ``identity.records``,
    ``linkage.review-tasks``, ``linkage.review-decisions`` and ``linkage.decisions``; nothing of
    it is stored, so replicas and the CLI agree without coordination."""

    tasks: dict[str, Task] = field(default_factory=dict)
    decided: dict[str, Decided] = field(default_factory=dict)
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)  # patient_ref -> record
    person_of: dict[str, str] = field(default_factory=dict)  # patient_ref -> person_id
    members: dict[str, set[str]] = field(default_factory=dict)  # person_id -> patient_refs
    # patient_ref -> sequence of its latest review-rule decision (the linkage applied a review)
    reviewed_at: dict[str, int] = field(default_factory=dict)
    closed: dict[str, Task] = field(default_factory=dict)  # decided tasks, for the result page

    # ------------------------------------------------------------------------ stream input

    def on_identity(self, record: dict[str, Any]) -> None:
        self.identities[record["patient_ref"]] = record

    def on_task(self, task: dict[str, Any]) -> None:
        if task["task_id"] not in self.decided:
            self.tasks[task["task_id"]] = Task.from_wire(task)

    def on_decision(self, decision: dict[str, Any]) -> None:
        """A steward's answer (from this desk, another replica or the CLI) closes the task;
        "escalate" keeps it open, marked, for a senior steward."""
        task_id = decision["task_id"]
        self.decided[task_id] = Decided(
            decision["decision"], decision["reviewer"], decision["decided_at"]
        )
        task = self.tasks.get(task_id)
        if task is None:
            return
        if decision["decision"] == "ESCALATE":
            task.escalated = True
        else:
            del self.tasks[task_id]
            self.closed[task_id] = task

    def on_link(self, decision: dict[str, Any]) -> None:
        ref, person = decision["patient_ref"], decision["person_id"]
        previous = self.person_of.get(ref)
        if previous is not None and previous != person:
            self.members.get(previous, set()).discard(ref)
        self.person_of[ref] = person
        self.members.setdefault(person, set()).add(ref)
        if decision["rule"] == "review":
            self.reviewed_at[ref] = int(decision["sequence"])

    # ------------------------------------------------------------------------------ queries

    def open_tasks(self, hospital: str | None = None) -> list[Task]:
        """Oldest first; optionally only one hospital's."""
        chosen = [t for t in self.tasks.values() if hospital is None or t.hospital == hospital]
        return sorted(chosen, key=lambda t: (t.created_at, t.task_id))

    def hospitals(self) -> list[str]:
        return sorted({t.hospital for t in self.tasks.values()})

    def oldest_age_s(self, now: dt.datetime) -> float:
        tasks = self.open_tasks()
        return max((now - tasks[0].created_at).total_seconds(), 0.0) if tasks else 0.0

    def find(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id) or self.closed.get(task_id)

    def view(self, task_id: str) -> TaskView | None:
        task = self.find(task_id)
        if task is None:
            return None
        sides = [self._side("Record under review", task.patient_ref, task.record_id)]
        for n, person in enumerate(task.candidate_person_ids, start=1):
            ref = self._representative(person, exclude=task.patient_ref)
            sides.append(self._side(f"Candidate {n}", ref, None, person))
        agreement: dict[str, Comparison] = {}
        for comparison in task.comparisons:
            for name in COMPARED.get(comparison.field, ()):
                agreement[name] = comparison
        decided = self.decided.get(task_id)
        resulting = None
        members = 0
        sequence = int(task_id.rsplit("/", 1)[-1]) if task_id.rsplit("/", 1)[-1].isdigit() else -1
        applied = self.reviewed_at.get(task.patient_ref, -1) > sequence
        if decided is not None and (applied or decided.decision == "ESCALATE"):
            resulting = self.person_of.get(task.patient_ref)
            members = len(self.members.get(resulting, ())) if resulting else 0
        return TaskView(task, sides, agreement, decided, resulting, members)

    def _representative(self, person: str, exclude: str) -> str | None:
        """A record of ``person`` to show: its first known member other than the reviewed one."""
        refs = sorted(self.members.get(person, set()) - {exclude})
        known = [r for r in refs if r in self.identities]
        return known[0] if known else (refs[0] if refs else None)

    def _side(
        self, title: str, ref: str | None, record_id: str | None, person: str | None = None
    ) -> Side:
        record = self.identities.get(ref) if ref else None
        values: dict[str, str | None] = {}
        for name, _label in DISPLAY_FIELDS:
            value = record.get(name) if record else None
            if name == "rrn":
                value = masked_rrn(value)
            elif isinstance(value, dt.date):
                value = value.isoformat()
            values[name] = None if value is None else str(value)
        if record_id and not values["record_id"]:
            values["record_id"] = record_id
        return Side(title, person or (self.person_of.get(ref) if ref else None), values)
