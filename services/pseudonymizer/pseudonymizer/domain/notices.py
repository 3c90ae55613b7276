"""Dataset notices (D-pseudonymizer-4): what a consumer must change in records it already holds.

A ``CORRECTION`` moves a patient_ref's released records to another pseudonym (and date offset):
after a merge, a split or a relink of the patient, or the first release under a rotated key
(D-pseudonymizer-3). A ``WITHDRAWAL`` names a pseudonym whose person withdrew consent.
"""

from __future__ import annotations

import datetime as dt

from biostream.contracts import DatasetNotice, NoticeKind

from pseudonymizer.domain.pseudonyms import notice_id
from pseudonymizer.domain.release import Keyed, Released

# Curated ids per CORRECTION notice: 5,000 ids of 34 characters are ~180 KB, well under Kafka's
# 1 MB message size; a longer list goes out in several notices (consumers apply each on its own).
NOTICE_MAX_IDS = 5000


def relink_reason(outcome: str) -> str:
    """D-pseudonymizer-4: the reason a correction after a changed link decision gives."""
    return outcome if outcome in ("MERGED", "SPLIT") else "RELINKED"


def key_rotated(released: Released | None, pseudonym: str) -> bool:
    """D-pseudonymizer-3: the patient_ref was released under another pseudonym before (a rotated
    key, or a relink whose notice this replaces): what the consumer holds moves first."""
    return released is not None and released.pseudonym != pseudonym


def moves(released: Released, pseudonym: str, offset_days: int) -> bool:
    """D-pseudonymizer-4: a correction is due only if the pseudonym or the date offset differs."""
    return released.pseudonym != pseudonym or released.offset_days != offset_days


def corrections(
    keyed: Keyed,
    released: Released,
    new_pseudonym: str,
    new_offset: int,
    curated_ids: list[str],
    reason: str,
    cause: str,
    now: dt.datetime,
) -> list[DatasetNotice]:
    """D-pseudonymizer-4: the CORRECTION notices moving every record the patient_ref released:
    one per NOTICE_MAX_IDS ids, so that a patient with a long history never makes a notice larger
    than a Kafka message may be (at least one notice, even with no id); none if nothing moves."""
    if not moves(released, new_pseudonym, new_offset):
        return []
    shift = keyed.policy.generalisation.date_method == "shift"
    change = new_offset - released.offset_days if shift else None
    return [
        notice(keyed, "CORRECTION", released.pseudonym, new_pseudonym,
               curated_ids[start : start + NOTICE_MAX_IDS], change, reason, cause, now, part)
        for part, start in enumerate(range(0, max(len(curated_ids), 1), NOTICE_MAX_IDS))
    ]  # fmt: skip


def withdrawal(keyed: Keyed, pseudonym: str, cause: str, now: dt.datetime) -> DatasetNotice:
    """D-pseudonymizer-4/-5: the WITHDRAWAL notice of a pseudonym whose person withdrew consent."""
    return notice(keyed, "WITHDRAWAL", pseudonym, None, [], None, "CONSENT_WITHDRAWN", cause, now)


def notice(
    keyed: Keyed,
    kind: NoticeKind,
    old: str,
    new: str | None,
    curated_ids: list[str],
    date_change: int | None,
    reason: str,
    cause: str,
    now: dt.datetime,
    part: int = 0,
) -> DatasetNotice:
    """A notice with an id derived from its cause, so a replayed cause gives the same notice."""
    policy = keyed.policy
    # A notice split in parts: the first keeps the id an unsplit notice always had.
    parts = (cause,) if part == 0 else (cause, str(part))
    return {
        "notice_id": notice_id(keyed.key, kind, *parts, old, new or ""),
        "dataset": policy.dataset,
        "policy_version": policy.policy_version,
        "approval_ref": policy.approval_ref,
        "kind": kind,
        "pseudonym": old,
        "new_pseudonym": new,
        "key_version": policy.key_version,
        "curated_ids": curated_ids,
        "date_offset_change_days": date_change,
        "reason": reason,
        "issued_at": now,
    }
