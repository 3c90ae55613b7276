"""``audit run | verify | export | prove | check-proof | trace | report | fhir | reconcile | public-key``.

Arguments only; what each command does, and its exit codes, is ``audit.cli``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from biostream.kit import run_service

from audit import cli
from audit.settings import AuditSettings

app = typer.Typer(
    help="Audit events in: a tamper-evident, hash-chained, checkpointed ledger out.",
    no_args_is_help=True,
)

InputOption = Annotated[
    Path | None,
    typer.Option("--input", help="Exported ledger (JSON lines); default: the live ledger"),
]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        envvar="BIOSTREAM_LEDGER_PUBLIC_KEY_FILE",
        help="File with the ledger's Ed25519 public key (PEM, or 64 hex digits)",
    ),
]


@app.command()
def run() -> None:
    """Run the audit service until SIGTERM."""
    from audit.bootstrap import build

    run_service("audit", AuditSettings, build)


@app.command(name="verify")
def verify_command(
    input_file: InputOption = None,
    public_key_file: PublicKeyOption = None,
    expected_length: Annotated[
        int | None, typer.Option(help="Entries the ledger must at least have")
    ] = None,
) -> None:
    """Check the hash chain, every entry's events root and every signed checkpoint; exit 1
    naming the first bad entry. With --input and no --public-key, the key published beside the
    export (``<export>.pub``) is used."""
    cli.verify(input_file, public_key_file, expected_length)


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", help="JSON-lines file to write")],
    public_key_file: PublicKeyOption = None,
) -> None:
    """Write the live ledger as JSON lines (entries, then the signed checkpoints: kind field) and
    its public key beside it, ``<output>.pub`` (PEM): all a verifier needs (D23b)."""
    cli.export(output, public_key_file)


@app.command(name="public-key")
def public_key_command(
    pem: Annotated[bool, typer.Option("--pem", help="PEM instead of 64 hex digits")] = False,
) -> None:
    """Print the public key of the configured signing key, to publish to verifiers."""
    cli.public_key(pem)


@app.command()
def prove(
    sequence: Annotated[
        int | None, typer.Option(help="Ledger sequence of an entry that holds one event")
    ] = None,
    event_id: Annotated[str | None, typer.Option(help="Id of the audit event to prove")] = None,
    consistency: Annotated[
        tuple[int, int] | None,
        typer.Option(help="Instead: a consistency proof between the checkpoints of these sizes"),
    ] = None,
    input_file: InputOption = None,
    output: Annotated[Path | None, typer.Option("--output", help="Proof file (JSON)")] = None,
) -> None:
    """The proof of one audit event (JSON): the event, its path inside its entry's batch, the
    entry's header and the entry's inclusion in a signed checkpoint, no other event (D23a); or a
    consistency proof that a later checkpoint extends an earlier one."""
    cli.prove(sequence, event_id, consistency, input_file, output)


@app.command(name="check-proof")
def check_proof_command(
    proof_file: Annotated[Path, typer.Option("--proof", help="Proof from `audit prove`")],
    public_key_file: PublicKeyOption = None,
    event_id: Annotated[
        str | None, typer.Option(help="The event you expect the proof to be of")
    ] = None,
) -> None:
    """Check a proof with only the proof and the public key (no Kafka, no ledger): the event's
    bytes up through its batch, its entry and the ledger's tree to a signed checkpoint (D23a)."""
    cli.check_proof(proof_file, public_key_file, event_id)


@app.command()
def trace(
    auditor: Annotated[str, typer.Option(help="Your auditor id (must be authorised)")],
    case: Annotated[str, typer.Option(help="Audit case or approval reference (no identifiers)")],
    reference: Annotated[
        str | None, typer.Option(help="Source position, record id, decision id or curated id")
    ] = None,
    pseudonym: Annotated[
        str | None, typer.Option(help="A dataset pseudonym (with --dataset)")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset of --pseudonym")] = None,
    input_file: InputOption = None,
) -> None:
    """Everything that happened to one record or one pseudonym's records, for authorised auditors;
    the trace is itself audited before anything is shown."""
    cli.trace(auditor, case, reference, pseudonym, dataset, input_file)


@app.command()
def report(
    input_file: InputOption = None,
    policies: Annotated[
        Path | None,
        typer.Option(
            help="Folder of release policies (JSON): only a fallback for releases the ledger does "
            "not say the policy of (ledgers written before D23c), used when of the same version"
        ),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset")] = None,
) -> None:
    """The processing record per dataset (purpose, items released, recipients, period, counts),
    per policy version in force at release time, as the ledger says it (D23c)."""
    cli.report(input_file, policies, dataset)


@app.command()
def fhir(
    output: Annotated[Path, typer.Option("--output", help="NDJSON of FHIR R4 AuditEvent")],
    input_file: InputOption = None,
    hospital: Annotated[str | None, typer.Option(help="Only this hospital's events")] = None,
) -> None:
    """Export audit events as FHIR R4 AuditEvent resources (NDJSON), e.g. one hospital's own."""
    cli.fhir(output, input_file, hospital)


@app.command()
def reconcile(
    input_file: InputOption = None,
    show: Annotated[int, typer.Option(help="List at most this many unaccounted")] = 50,
) -> None:
    """Account for every message published on the hospital feeds; exit 1 if any is unaccounted."""
    cli.reconcile(input_file, show)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
