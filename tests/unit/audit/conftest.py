"""A small, realistic ledger: events as the services emit them, appended and checkpointed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from audit.domain.checkpoint import Signer, public_key_hex
from audit.domain.export import checkpoint_to_json, entry_to_json
from audit.domain.ledger import LedgerState
from biostream.codec import AvroCodec
from biostream.contracts import LedgerCheckpoint, LedgerEntry
from biostream.envelopes import Envelopes, audit_event_items
from biostream.schemas import SchemaRegistry
from biostream.topics import Topics
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
CODEC = AvroCodec(SchemaRegistry())
TOPICS = Topics("u.")
DATASET = "cohort-demo"
FEED = "u.feed.H001/0/"


def audit(
    *args: str | Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The ``audit`` command as a user runs it, with nothing of this environment but a PATH."""
    return subprocess.run(
        [sys.executable, "-m", "audit", *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


def _env(service: str) -> Envelopes:
    return Envelopes(service, f"User:{TOPICS.prefix}svc-{service}", CODEC, TOPICS)


def pipeline_events() -> list[bytes]:
    """Five published messages: two curated, one withheld-only, one rejected, one duplicate; and
    one held clinical record that was released later."""
    ingest, linkage, pseudo = _env("ingest"), _env("linkage"), _env("pseudonymizer")
    out = []

    def t(minutes: int) -> dt.datetime:
        return T0 + dt.timedelta(minutes=minutes)

    for n, clinical in ((0, ["c0a", "c0b"]), (1, ["c1a"]), (2, ["c2a"])):
        ident = f"H001/M{n}/0"
        ids = [ident, *(f"H001/M{n}/{c}" for c in clinical)]
        out.append(ingest.audit("ingest.accepted", [f"{FEED}{n}"], ids, t(n), hospital="H001"))
        out.append(linkage.audit("linkage.linked", [ident], [f"d-{n}"], t(n), hospital="H001"))
        for record in ids[1:]:
            if n == 2:
                out.append(
                    pseudo.audit(
                        "pseudonymizer.withheld", [record], [], t(n), outcome="withheld",
                        hospital="H001", dataset=DATASET, purpose="cohort-demo@2",
                        reason_code="RESOURCE_TYPE_NOT_APPROVED",
                    )
                )  # fmt: skip
                continue
            if record.endswith("c1a"):
                out.append(
                    pseudo.audit(
                        "pseudonymizer.held", [record], [], t(n), outcome="held",
                        hospital="H001", dataset=DATASET, reason_code="AWAITING_LINK_DECISION",
                    )
                )  # fmt: skip
            out.append(
                pseudo.audit(
                    "pseudonymizer.released", [record], [f"cur-{record}"], t(n + 1),
                    hospital="H001", dataset=DATASET, purpose="cohort-demo@2",
                )
            )  # fmt: skip
    out.append(
        ingest.audit(
            "ingest.rejected", [f"{FEED}3"], ["dead-letter:ingest/x"], t(5),
            outcome="rejected", hospital="H001", reason_code="FHIR_INVALID_JSON",
        )
    )  # fmt: skip
    out.append(
        ingest.audit(
            "ingest.duplicate", [f"{FEED}4"], [], t(6), outcome="duplicate", hospital="H001"
        )
    )
    return [o.value or b"" for o in out]


@dataclass
class SignedLedger:
    entries: list[LedgerEntry]
    checkpoints: list[LedgerCheckpoint]
    signer: Signer

    def write(self, path: Path, entries: list[LedgerEntry] | None = None,
              checkpoints: list[LedgerCheckpoint] | None = None) -> Path:  # fmt: skip
        lines = [entry_to_json(e) for e in (self.entries if entries is None else entries)]
        lines += [
            checkpoint_to_json(c)
            for c in (self.checkpoints if checkpoints is None else checkpoints)
        ]
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def public_key_file(self, path: Path) -> Path:
        path.write_text(public_key_hex(self.signer.public_key) + "\n")
        return path


@pytest.fixture
def signed_ledger() -> SignedLedger:
    signer = Signer(Ed25519PrivateKey.generate())
    state = LedgerState()
    entries, checkpoints = [], []
    for n, payload in enumerate(pipeline_events()):
        event = CODEC.decode(payload, "AuditEvent")
        entries.append(state.append(event["event_id"], payload, T0 + dt.timedelta(minutes=n)))
        if len(entries) % 5 == 0:
            checkpoints.append(state.checkpoint(signer, T0 + dt.timedelta(minutes=n)))
    return SignedLedger(entries, checkpoints, signer)


@pytest.fixture
def batched_ledger() -> SignedLedger:
    """The same events as ``signed_ledger``, as services write them since D15: packed into
    batches (here four per batch), one ledger entry per batch."""
    signer = Signer(Ed25519PrivateKey.generate())
    state = LedgerState()
    entries, checkpoints = [], []
    events = pipeline_events()
    for n in range(0, len(events), 4):
        [batch] = _env("ingest").pack_audit(events[n : n + 4], now=T0)
        assert batch.value is not None and batch.key is not None
        items = audit_event_items(CODEC, batch.value)
        at = T0 + dt.timedelta(minutes=n)
        entries.append(state.append(batch.key.decode(), batch.value, at, items))
    checkpoints.append(state.checkpoint(signer, T0 + dt.timedelta(hours=1)))
    return SignedLedger(entries, checkpoints, signer)
