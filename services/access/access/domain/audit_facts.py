"""What an access event's audit event says beyond its id and actor (D47): the facts the PIPA
processing record (``audit report``) needs, so that the tamper-evident ledger alone says who
applied for which dataset under which DUO terms, who reviewed, voted and decided, under which
conditions, until when, and how it ended. References only: account ids, codes, dates, hashes,
the board's machine-readable conditions; never a form's free text, a reason or a token."""

from __future__ import annotations

import json

from access.domain.application import (
    Approved,
    ClosedOut,
    Created,
    Edited,
    Event,
    Reviewed,
    Submitted,
    VisaIssued,
    Voted,
)


def audit_facts(event: Event) -> list[str]:
    """D47: the ``key:value`` references an event's audit event carries, in a fixed order."""
    if isinstance(event, Created | Edited):
        form = event.form
        facts = [f"applicant:{form.applicant}", f"institution:{form.institution}"]
        facts += [f"team:{m.account}" for m in form.team]
        facts += [f"duo:{code}" for code in form.duo_codes]
        facts.append(f"irb:{form.irb.number}")
        if isinstance(event, Created):
            facts.insert(0, f"kind:{event.kind}")
            if event.basis is not None:
                facts.append(f"basis:{event.basis}")
        return facts
    if isinstance(event, Submitted):
        return [f"board-sha256:{event.board_sha256}", *(f"recused:{m}" for m in event.recused)]
    if isinstance(event, Reviewed):
        yes = sum(event.answers.values())
        return [f"checklist:{yes}/{len(event.answers)}"]
    if isinstance(event, Voted):
        return [f"vote:{event.vote}"]
    if isinstance(event, Approved):
        conditions = event.conditions.model_dump(mode="json", exclude_defaults=True)
        conditions.pop("text", None)  # the board's free text stays on access.events
        return [
            *(f"approver:{m}" for m in event.approvers),
            f"valid-until:{event.valid_until.isoformat()}",
            f"conditions:{json.dumps(conditions, sort_keys=True, separators=(',', ':'))}",
            f"conditions-text:{len(event.conditions.text)}",
        ]
    if isinstance(event, ClosedOut):
        return [f"destruction-sha256:{event.destruction_sha256}"]
    if isinstance(event, VisaIssued):
        return [
            f"subject:{event.subject}", f"jti:{event.jti}",
            f"visa-until:{event.expires_at.isoformat()}",
        ]  # fmt: skip
    return []
