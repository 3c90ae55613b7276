"""``biostream-dev``: developer tooling: the demo, the local broker, topic provisioning."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from biostream.topics import DEFAULT_WINDOWS, RetentionWindows

if TYPE_CHECKING:
    from biostream.settings import KafkaSettings

app = typer.Typer(help="Developer tooling for the biostream pipeline.", no_args_is_help=True)


@app.command()
def demo(
    records: Annotated[int, typer.Option(help="About how many synthetic feed messages")] = 2000,
    feed: Annotated[
        Path | None, typer.Option(help="Publish these feeds: one sub-folder per hospital")
    ] = None,
    summary: Annotated[Path | None, typer.Option(help="Write the summary as JSON here")] = None,
    curated_export: Annotated[
        Path | None, typer.Option(help="Write curated records as JSON lines")
    ] = None,
    ledger_export: Annotated[
        Path | None, typer.Option(help="Write the audit ledger as JSON lines")
    ] = None,
    run_dir: Annotated[Path, typer.Option(help="Working folder (replaced on each run)")] = Path(
        ".run/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic feed")] = 42,
) -> None:
    """Run the whole pipeline on a local broker and print a summary."""
    from biostream_harness.demo import DemoOptions
    from biostream_harness.demo import main as demo_main

    if feed is not None and not feed.is_dir():
        typer.echo(f"error: FEED {feed} is not a directory", err=True)
        raise typer.Exit(2)
    if records < 1:
        typer.echo("error: RECORDS must be at least 1", err=True)
        raise typer.Exit(2)
    options = DemoOptions(
        run_dir=run_dir.resolve(), records=records, feed=feed, summary=summary,
        curated_export=curated_export, ledger_export=ledger_export, seed=seed,
    )  # fmt: skip
    raise typer.Exit(demo_main(options))


InputDays = Annotated[
    int,
    typer.Option(
        min=1,
        envvar="BIOSTREAM_RETENTION__INPUT_DAYS",
        help="Days the hospital feeds and audit.events are kept (D21)",
    ),
]
AdminUser = Annotated[str, typer.Option(help="Admin SCRAM user")]
AdminPasswordFile = Annotated[
    Path | None,
    typer.Option(help="File holding the admin's SCRAM password (none: a broker without SASL)"),
]
CaFile = Annotated[
    Path | None,
    typer.Option(
        envvar="BIOSTREAM_KAFKA__SSL_CAFILE",
        help="CA certificate the broker's TLS certificate is checked against (default: system CAs)",
    ),
]
Plaintext = Annotated[
    bool,
    typer.Option(help="Connect without TLS (development only; a warning is logged, D30)"),
]


def _admin_settings(
    bootstrap: str, admin_user: str, password_file: Path | None, ca_file: Path | None,
    plaintext: bool,
) -> KafkaSettings:  # fmt: skip
    """D30: SCRAM over TLS by default; in clear only when --plaintext says so."""
    from biostream.settings import KafkaSettings
    from pydantic import SecretStr

    if password_file is None:
        if not plaintext:
            typer.echo(
                "error: without --admin-password-file the connection has neither SASL nor TLS; "
                "pass --plaintext to mean that (development only)",
                err=True,
            )
            raise typer.Exit(2)
        return KafkaSettings(
            bootstrap_servers=bootstrap, security_protocol="PLAINTEXT", allow_plaintext=True
        )
    if not password_file.is_file():
        typer.echo(f"error: admin password file {password_file} does not exist", err=True)
        raise typer.Exit(2)
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT" if plaintext else "SASL_SSL",
        allow_plaintext=plaintext,
        ssl_cafile=ca_file,
        sasl_username=admin_user,
        sasl_password=SecretStr(password_file.read_text().strip()),
    )


DeadLetterDays = Annotated[
    int,
    typer.Option(
        min=1,
        envvar="BIOSTREAM_RETENTION__DEAD_LETTER_DAYS",
        help="Days ops.dead-letters is kept (D21)",
    ),
]


@app.command()
def topics(
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers")],
    hospital: Annotated[list[str], typer.Option(help="Hospital codes (repeat)")],
    dataset: Annotated[list[str], typer.Option(help="Dataset names (repeat)")],
    prefix: Annotated[str, typer.Option(help="Topic name prefix")] = "",
    input_retention_days: InputDays = DEFAULT_WINDOWS.input_days,
    dead_letter_retention_days: DeadLetterDays = DEFAULT_WINDOWS.dead_letter_days,
    shorten_retention: Annotated[
        bool,
        typer.Option(help="Also cut an existing topic's longer retention down to the declared one"),
    ] = False,
    admin_user: AdminUser = "admin",
    admin_password_file: AdminPasswordFile = None,
    ca_file: CaFile = None,
    plaintext: Plaintext = False,
) -> None:
    """Create the pipeline's topics and bring existing ones to their declared retention
    (idempotent; a longer retention is kept unless --shorten-retention)."""
    from biostream.kafka import provision_topics
    from biostream.topics import Topics

    admin = _admin_settings(bootstrap, admin_user, admin_password_file, ca_file, plaintext)
    windows = RetentionWindows(input_retention_days, dead_letter_retention_days)
    specs = Topics(prefix).pipeline_specs(hospital, dataset, windows)
    done = asyncio.run(provision_topics(admin, specs, shorten=shorten_retention))
    typer.echo(f"created {len(done.created)} topics, {len(specs) - len(done.created)} existed")
    for name, changes in sorted(done.altered.items()):
        settings = ", ".join(f"{k}={v}" for k, v in sorted(changes.items()))
        typer.echo(f"set {settings} on {name}")
    for name, kept in sorted(done.kept_longer.items()):
        settings = ", ".join(f"{k}={v}" for k, v in sorted(kept.items()))
        typer.echo(f"kept {settings} on {name} (longer than declared; --shorten-retention cuts it)")


@app.command("dead-letters")
def dead_letters(
    key_file: Annotated[
        Path | None, typer.Option(help="Dead-letter key: show the original bytes too")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest last")] = 100,
) -> None:
    """List dead letters (JSON lines). Kafka settings from BIOSTREAM_KAFKA__*; operators see
    reason, message and position; with the dead-letter key, a data steward sees the original."""
    import base64
    import json

    from biostream.codec import default_codec
    from biostream.contracts import DEAD_LETTER
    from biostream.restore import ReadStalled, read_from_start
    from biostream.sealing import Sealer, SealError
    from biostream.settings import ServiceSettings
    from biostream.topics import Topics

    settings = ServiceSettings()
    sealer = Sealer(key_file.read_bytes()) if key_file else None
    codec = default_codec()
    topic = Topics(settings.topic_prefix).dead_letters

    async def read_all() -> list[dict[str, object]]:
        # To the end offsets at the start, or ReadStalled (D26): never a partial list.
        letters: list[dict[str, object]] = []
        async for batch in read_from_start(
            settings.kafka, "biostream-dead-letters", [topic], settings.read_timeout_s
        ):
            letters += [codec.decode(r.value, DEAD_LETTER) for rs in batch.values() for r in rs]
        return letters[-limit:]

    try:
        letters = asyncio.run(read_all())
    except ReadStalled as stall:
        typer.echo(f"error: could not read the dead letters to their end: {stall}", err=True)
        raise typer.Exit(2) from None
    for letter in letters:
        line = {k: letter[k] for k in ("dead_letter_id", "service", "reason_code", "message", "hospital",
                                       "source_topic", "source_partition", "source_offset", "seal_key_id")}  # fmt: skip
        line["failed_at"] = str(letter["failed_at"])
        sealed = letter["sealed_original"]
        if sealer is not None and isinstance(sealed, bytes):
            try:
                original = sealer.unseal(sealed, str(letter["dead_letter_id"]))
            except SealError as error:
                line["original_error"] = str(error)
            else:
                try:
                    line["original"] = original.decode("utf-8")
                except UnicodeDecodeError:
                    line["original_base64"] = base64.b64encode(original).decode()
        typer.echo(json.dumps(line, ensure_ascii=False))


access_app = typer.Typer(
    help="The ACL matrix (deploy/acl-matrix.yaml): apply it, or render Strimzi users."
)
app.add_typer(access_app, name="access")

DEPLOY_HOSPITALS = ["H001", "H002", "H003"]
DEPLOY_DATASETS = ["cohort-demo"]


@access_app.command("strimzi")
def access_strimzi(
    hospital: Annotated[list[str] | None, typer.Option(help="Hospital codes (repeat)")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Dataset names (repeat)")] = None,
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout)")] = None,
    check: Annotated[bool, typer.Option(help="Exit 1 if --output differs from the matrix")] = False,
) -> None:
    """Strimzi KafkaUser resources for the matrix (SCRAM-SHA-512, simple authorization)."""
    from biostream_dev.access import render_strimzi_yaml

    text = render_strimzi_yaml(hospital or DEPLOY_HOSPITALS, dataset or DEPLOY_DATASETS)
    if output is None:
        typer.echo(text, nl=False)
    elif check:
        if not output.is_file() or output.read_text() != text:
            typer.echo(f"error: {output} is not what deploy/acl-matrix.yaml generates; run "
                       f"`biostream-dev access strimzi --output {output}`", err=True)  # fmt: skip
            raise typer.Exit(1)
        typer.echo(f"{output} matches the ACL matrix")
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")


@access_app.command("strimzi-topics")
def access_strimzi_topics(
    output: Annotated[Path, typer.Option(help="File to write")],
    check: Annotated[bool, typer.Option(help="Exit 1 if --output differs")] = False,
    input_retention_days: InputDays = DEFAULT_WINDOWS.input_days,
    dead_letter_retention_days: DeadLetterDays = DEFAULT_WINDOWS.dead_letter_days,
) -> None:
    """Strimzi KafkaTopic resources for the pipeline's topics, with their retention (D21)."""
    from biostream_dev.access import render_strimzi_topics_yaml

    windows = RetentionWindows(input_retention_days, dead_letter_retention_days)
    text = render_strimzi_topics_yaml(DEPLOY_HOSPITALS, DEPLOY_DATASETS, windows=windows)
    if check:
        if not output.is_file() or output.read_text() != text:
            typer.echo(f"error: {output} is not what the code generates", err=True)
            raise typer.Exit(1)
        return
    output.write_text(text)
    typer.echo(f"wrote {output}")


k8s_app = typer.Typer(help="Kubernetes files generated from the other deployment files.")
app.add_typer(k8s_app, name="k8s")


@k8s_app.command("prometheus-rule")
def k8s_prometheus_rule(
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout)")] = None,
) -> None:
    """The PrometheusRule resource generated from deploy/prometheus/rules.yml."""
    from biostream_dev.k8s import render_prometheus_rule

    text = render_prometheus_rule()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")


@access_app.command("apply")
def access_apply(
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers")],
    admin_password_file: Annotated[
        Path, typer.Option(help="File holding the admin's SCRAM password")
    ],
    hospital: Annotated[list[str], typer.Option(help="Hospital codes (repeat)")],
    dataset: Annotated[list[str], typer.Option(help="Dataset names (repeat)")],
    credentials_dir: Annotated[
        Path, typer.Option(help="Where to write each principal's password (0600)")
    ],
    admin_user: AdminUser = "admin",
    prefix: Annotated[str, typer.Option(help="Name prefix of topics, groups, users")] = "",
    ca_file: CaFile = None,
    plaintext: Plaintext = False,
) -> None:
    """Create the SCRAM users (fresh random passwords) and ACLs of the matrix on a cluster."""
    import os

    from biostream_dev import access

    admin = _admin_settings(bootstrap, admin_user, admin_password_file, ca_file, plaintext)
    principals = access.render(
        access.load_matrix(), prefix=prefix, hospitals=hospital, datasets=dataset
    )
    credentials = access.apply(admin, principals)
    credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for role, password in credentials.passwords.items():
        fd = os.open(
            credentials_dir / f"{role}.password", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
        )
        with os.fdopen(fd, "w") as handle:
            handle.write(password)
    typer.echo(f"applied {len(principals)} principals; passwords in {credentials_dir}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
