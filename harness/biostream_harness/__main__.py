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
AdminCertFile = Annotated[
    Path | None,
    typer.Option(help="Admin client certificate (mutual TLS; instead of a SCRAM password)"),
]
AdminKeyFile = Annotated[Path | None, typer.Option(help="Private key of --admin-cert-file")]
Plaintext = Annotated[
    bool,
    typer.Option(help="Connect without TLS (development only; a warning is logged, D30)"),
]


def _admin_settings(
    bootstrap: str, admin_user: str, password_file: Path | None, ca_file: Path | None,
    plaintext: bool, cert_file: Path | None = None, key_file: Path | None = None,
) -> KafkaSettings:  # fmt: skip
    """D30: SCRAM over TLS (or a client certificate) by default; in clear only with --plaintext."""
    from biostream.settings import KafkaSettings
    from pydantic import SecretStr

    if cert_file is not None:
        for path in (cert_file, key_file, ca_file):
            if path is None or not path.is_file():
                typer.echo(
                    "error: mutual TLS needs --admin-cert-file, --admin-key-file and --ca-file "
                    f"(missing: {path})",
                    err=True,
                )
                raise typer.Exit(2)
        return KafkaSettings(
            bootstrap_servers=bootstrap, security_protocol="SSL", ssl_cafile=ca_file,
            ssl_certfile=cert_file, ssl_keyfile=key_file,
        )  # fmt: skip
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
    admin_cert_file: AdminCertFile = None,
    admin_key_file: AdminKeyFile = None,
) -> None:
    """Create the pipeline's topics and bring existing ones to their declared retention
    (idempotent; a longer retention is kept unless --shorten-retention)."""
    from biostream.kafka import provision_topics
    from biostream.topics import Topics

    admin = _admin_settings(
        bootstrap, admin_user, admin_password_file, ca_file, plaintext, admin_cert_file,
        admin_key_file,
    )  # fmt: skip
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
    limit: Annotated[int, typer.Option(help="At most this many, newest last")] = 100,
) -> None:
    """List dead letters (JSON lines): reason, message and position, never the original bytes.
    Kafka settings from BIOSTREAM_KAFKA__* (the operator principal). A data steward sees one
    letter's original with `review unseal-dead-letter ID --case REF`, audited first (D35)."""
    import json

    from biostream.codec import default_codec
    from biostream.contracts import DEAD_LETTER
    from biostream.restore import ReadStalled, read_from_start
    from biostream.settings import ServiceSettings
    from biostream.topics import Topics

    settings = ServiceSettings()
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
        line["sealed"] = letter["sealed_original"] is not None
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
    hospital: Annotated[list[str], typer.Option(help="Hospital codes (repeat)")],
    dataset: Annotated[list[str], typer.Option(help="Dataset names (repeat)")],
    credentials_dir: Annotated[
        Path, typer.Option(help="Where to write each principal's password (0600)")
    ],
    admin_password_file: AdminPasswordFile = None,
    admin_user: AdminUser = "admin",
    prefix: Annotated[str, typer.Option(help="Name prefix of topics, groups, users")] = "",
    ca_file: CaFile = None,
    plaintext: Plaintext = False,
    admin_cert_file: AdminCertFile = None,
    admin_key_file: AdminKeyFile = None,
    owner: Annotated[
        int | None, typer.Option(help="Numeric user id to own the password files (compose)")
    ] = None,
) -> None:
    """Create the SCRAM users (fresh random passwords) and ACLs of the matrix on a cluster."""
    import os

    from biostream_dev import access

    admin = _admin_settings(
        bootstrap, admin_user, admin_password_file, ca_file, plaintext, admin_cert_file,
        admin_key_file,
    )  # fmt: skip
    principals = access.render(
        access.load_matrix(), prefix=prefix, hospitals=hospital, datasets=dataset
    )
    credentials = access.apply(admin, principals)
    credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if owner is not None:
        os.chown(credentials_dir, owner, -1)
    for role, password in credentials.passwords.items():
        fd = os.open(
            credentials_dir / f"{role}.password", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
        )
        with os.fdopen(fd, "w") as handle:
            handle.write(password)
        if owner is not None:
            os.chown(credentials_dir / f"{role}.password", owner, -1)
    typer.echo(f"applied {len(principals)} principals; passwords in {credentials_dir}")


tls_app = typer.Typer(
    help="Certificates for a compose or local deployment (D30); nothing here is committed.",
    no_args_is_help=True,
)
app.add_typer(tls_app, name="tls")


@tls_app.command("broker")
def tls_broker(
    directory: Annotated[Path, typer.Option("--dir", help="Where the CA and certificates go")],
    host: Annotated[list[str], typer.Option(help="Host name or address clients dial (repeat)")],
    owner: Annotated[int | None, typer.Option(help="Numeric user id to own the key store")] = None,
) -> None:
    """The CA (kept if present) and a broker certificate for HOSTs, as Kafka's PEM key store
    ``broker.pem`` beside ``ca.crt``."""
    import os

    from biostream_dev import tls

    ca = tls.ensure_ca(directory)
    store = tls.issue_broker(ca, directory, host)
    if owner is not None:
        os.chown(store, owner, -1)
    typer.echo(f"CA {ca.cert}; broker certificate for {', '.join(host)} in {store}")


@tls_app.command("client")
def tls_client(
    directory: Annotated[Path, typer.Option("--dir", help="Where the CA is")],
    principal: Annotated[str, typer.Option(help="The principal: the certificate's CN")],
    owner: Annotated[int | None, typer.Option(help="Numeric user id to own the key")] = None,
) -> None:
    """A client certificate for mutual TLS, CN=PRINCIPAL, signed by the CA of --dir."""
    import os

    from biostream_dev import tls

    if not (directory / tls.CA_CERT).is_file():
        typer.echo(f"error: no CA in {directory}; run `biostream-dev tls broker` first", err=True)
        raise typer.Exit(2)
    issued = tls.issue_client(tls.ensure_ca(directory), directory, principal)
    if owner is not None:
        os.chown(issued.key, owner, -1)
        os.chown(issued.cert, owner, -1)
    typer.echo(f"client certificate for {principal} in {issued.cert}")


@tls_app.command("server")
def tls_server(
    directory: Annotated[Path, typer.Option("--dir", help="Where the CA is")],
    name: Annotated[str, typer.Option(help="File stem and CN, e.g. intake")],
    host: Annotated[list[str], typer.Option(help="Host name or address clients dial (repeat)")],
    owner: Annotated[int | None, typer.Option(help="Numeric user id to own the key")] = None,
) -> None:
    """A server certificate for HOSTs, NAME.crt and NAME.key, signed by the CA of --dir: for a
    hospital intake (MLLP, D37; FHIR REST, D38)."""
    import os

    from biostream_dev import tls

    if not (directory / tls.CA_CERT).is_file():
        typer.echo(f"error: no CA in {directory}; run `biostream-dev tls broker` first", err=True)
        raise typer.Exit(2)
    issued = tls.issue_server(tls.ensure_ca(directory), directory, name, host)
    if owner is not None:
        os.chown(issued.key, owner, -1)
        os.chown(issued.cert, owner, -1)
    typer.echo(f"server certificate for {', '.join(host)} in {issued.cert}")


policy_app = typer.Typer(
    help="D46: the board's signed release-policy versions (what the access service publishes)."
)
app.add_typer(policy_app, name="policy")


@policy_app.command("keygen")
def policy_keygen(
    output: Annotated[Path, typer.Option(help="Private key file to create (owner-only)")],
) -> None:
    """A new board signing key; prints the public key for the verifiers' board.k<N>.pub."""
    from biostream.release_policies import public_key_hex, write_signing_key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    write_signing_key(output, key)
    typer.echo(public_key_hex(key.public_key()))


@policy_app.command("publish")
def policy_publish(
    policy: Annotated[Path, typer.Option(help="The release policy document (JSON)")],
    version: Annotated[int, typer.Option(min=1, help="The version (one more than in force)")],
    application_id: Annotated[str, typer.Option(help="The access application it decides")],
    principal: Annotated[str, typer.Option(help="The project's principal, User:<name>")],
    signing_key: Annotated[Path, typer.Option(help="The board's private key file")],
    valid_days: Annotated[float, typer.Option(min=0, help="Days from now it stays valid")] = 365,
    withdraw: Annotated[
        str | None, typer.Option(help="Publish a withdrawal: EXPIRED, REVOKED or CLOSED")
    ] = None,
) -> None:
    """Signs a version of a policy and publishes it on access.policies (Kafka settings from the
    BIOSTREAM_KAFKA__* environment, as every service reads them)."""
    import json
    import time

    from biostream.codec import default_codec
    from biostream.policy_topic import publish
    from biostream.release_policies import policy_version, read_signing_key, sign
    from biostream.settings import ServiceSettings
    from biostream.topics import Topics

    if withdraw not in (None, "EXPIRED", "REVOKED", "CLOSED"):
        typer.echo("error: --withdraw is EXPIRED, REVOKED or CLOSED", err=True)
        raise typer.Exit(2)
    settings = ServiceSettings()
    now_ms = int(time.time() * 1000)
    record = policy_version(
        json.loads(policy.read_text(encoding="utf-8")),
        version=version,
        application_id=application_id,
        principal=principal,
        valid_from_ms=now_ms,
        valid_until_ms=now_ms + max(1, int(valid_days * 86_400_000)),
        issued_at_ms=now_ms,
        status="WITHDRAWN" if withdraw else "ACTIVE",
        withdrawn_reason=withdraw,  # type: ignore[arg-type]
    )
    signed = sign(record, read_signing_key(signing_key))
    topics = Topics(settings.topic_prefix)
    asyncio.run(publish(settings.kafka, topics, default_codec(), signed))
    typer.echo(f"published {signed['dataset']} version {version} ({signed['status']})")


@policy_app.command("kafka-user")
def policy_kafka_user(
    principal: Annotated[str, typer.Option(help="The project's principal, User:<name>")],
    dataset: Annotated[str, typer.Option(help="The approved dataset")],
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout)")] = None,
) -> None:
    """The Strimzi KafkaUser of an approved project (what the pseudonymizer grants by ACL)."""
    import yaml
    from biostream.project_access import strimzi_user
    from biostream.topics import Topics

    text = yaml.safe_dump(strimzi_user(principal, dataset, Topics()), sort_keys=False)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
