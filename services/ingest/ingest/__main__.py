"""``ingest run | mllp | fhir | check | publish | consent grant | consent withdraw``.

Arguments only; what each command does is ``ingest.cli``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from biostream.kit import run_service

from ingest import cli
from ingest.settings import IngestSettings

app = typer.Typer(
    help="Hospital feeds in: validated identity and clinical records out.", no_args_is_help=True
)


@app.command()
def run() -> None:
    """Run the ingest service until SIGTERM."""
    from ingest.bootstrap import build

    run_service("ingest", IngestSettings, build)


@app.command()
def mllp() -> None:
    """Listen for one hospital's HL7 v2 messages over MLLP (TLS) until SIGTERM: each message is
    written to the hospital's feed topic before its ACK (AA) is sent (D37). Settings:
    BIOSTREAM_MLLP_HOSPITAL, BIOSTREAM_MLLP_PORT, BIOSTREAM_MLLP_CERTFILE/KEYFILE, and the
    hospital's Kafka credentials (services/ingest/README.md)."""
    from ingest.bootstrap import build_mllp
    from ingest.settings import MllpSettings

    run_service("ingest-mllp", MllpSettings, build_mllp)


@app.command()
def fhir() -> None:
    """Serve one hospital's FHIR REST intake (HTTPS) until SIGTERM: POST of a resource, a
    Bundle, or an NDJSON file to /fhir/$import; each usable resource is written to the
    hospital's feed topic before the answer (an OperationOutcome, D38). Settings:
    BIOSTREAM_FHIR_HOSPITAL, BIOSTREAM_FHIR_PORT, BIOSTREAM_FHIR_CERTFILE/KEYFILE,
    BIOSTREAM_FHIR_TOKEN_FILE or BIOSTREAM_FHIR_CLIENT_CAFILE (services/ingest/README.md)."""
    from ingest.bootstrap import build_fhir_gateway
    from ingest.settings import FhirGatewaySettings

    run_service("ingest-fhir", FhirGatewaySettings, build_fhir_gateway)


FormatOption = Annotated[str, typer.Option("--format", help="hl7, fhir or csv")]
MappingOption = Annotated[
    Path | None,
    typer.Option("--mapping", help="CSV mapping file (JSON) declaring which column is what"),
]


@app.command()
def check(files: list[Path], fmt: FormatOption = "fhir", mapping: MappingOption = None) -> None:
    """Parse and validate feed files locally, without Kafka: one JSON line per message.

    Exit 0 when every message is accepted, 1 when any is rejected, 2 when a file cannot be read.
    """
    cli.check(files, fmt, mapping)


@app.command()
def publish(
    files: list[Path],
    hospital: Annotated[str, typer.Option(help="Hospital code, e.g. H001")],
    fmt: FormatOption = "fhir",
    mapping: MappingOption = None,
) -> None:
    """Check feed files locally, then publish them to the hospital's feed topic with a progress
    bar; prints accepted/rejected totals. Rejected messages are published too (ingest
    dead-letters them, so the platform keeps a record) and listed on stderr here.

    Exit 0 when all were accepted, 1 when some were rejected, 2 when a file cannot be read.
    """
    cli.publish(files, hospital, fmt, mapping)


consent_app = typer.Typer(
    help="Record a participant's consent change on consent.events, with its audit event (D32).",
    no_args_is_help=True,
)
app.add_typer(consent_app, name="consent")

PersonOption = Annotated[
    str | None, typer.Option("--person-id", help="The programme's person id (linkage's P...)")
]
HospitalOption = Annotated[
    str | None, typer.Option("--hospital", help="Hospital code, e.g. H001 (with --mrn)")
]
MrnOption = Annotated[
    str | None,
    typer.Option(
        "--mrn",
        help="The hospital's patient number; '-' reads it from stdin (keeps it out of the "
        "process list and the shell history). Turned into the patient_ref as ingest does.",
    ),
]
DatasetOption = Annotated[
    list[str] | None,
    typer.Option("--dataset", help="Dataset the change applies to (repeat); none: every dataset"),
]
SourceOption = Annotated[str, typer.Option("--source", help="Who recorded it")]


@consent_app.command("grant")
def consent_grant(
    person_id: PersonOption = None,
    hospital: HospitalOption = None,
    mrn: MrnOption = None,
    dataset: DatasetOption = None,
    source: SourceOption = "consent-registry",
) -> None:
    """Record a grant. Exit 0 recorded, 1 the broker refused or failed (nothing recorded),
    2 an unusable request (nothing sent)."""
    cli.consent("grant", person_id, hospital, mrn, dataset or [], source)


@consent_app.command("withdraw")
def consent_withdraw(
    person_id: PersonOption = None,
    hospital: HospitalOption = None,
    mrn: MrnOption = None,
    dataset: DatasetOption = None,
    source: SourceOption = "consent-registry",
) -> None:
    """Record a withdrawal: the pseudonymizer releases nothing more of the person to the
    datasets named (all by default) and tells them. Exit codes as for grant."""
    cli.consent("withdraw", person_id, hospital, mrn, dataset or [], source)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
