"""``pseudonymizer run | check | reidentify``."""

from __future__ import annotations

import asyncio

import typer
from biostream.logs import configure_logging
from biostream.service import run_until_stopped
from biostream.topics import Topics

from pseudonymizer.settings import PseudonymizerSettings

app = typer.Typer(
    help="Clinical records and link decisions in: curated, pseudonymized records out.",
    no_args_is_help=True,
)


def _releases(settings: PseudonymizerSettings) -> list[object]:
    """Policies with their keys, or exit 2 with the message naming the problem."""
    from pseudonymizer.adapters.keys import KeyMaterialError
    from pseudonymizer.bootstrap import load_releases
    from pseudonymizer.domain.policy import PolicyError

    try:
        return list(load_releases(settings))
    except (PolicyError, KeyMaterialError) as error:
        typer.echo(f"pseudonymizer: refused to start: {error}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run() -> None:
    """Run the pseudonymizer service until SIGTERM."""
    from pseudonymizer.bootstrap import build

    settings = PseudonymizerSettings()
    configure_logging("pseudonymizer", settings.log_level, settings.instance_id)
    _releases(settings)  # refuse bad policies and missing keys with a clear message, exit 2
    asyncio.run(run_until_stopped(build(settings)))


@app.command()
def check() -> None:
    """Validate the policy directory and the keys without Kafka; exit 2 naming the first problem."""
    from pseudonymizer.domain.in_force import policy_digest
    from pseudonymizer.domain.release import Keyed

    for keyed in _releases(PseudonymizerSettings()):
        assert isinstance(keyed, Keyed)
        policy = keyed.policy
        typer.echo(
            f"{policy.policy_version}: approval {policy.approval_ref}, topic {policy.topic}, "
            f"key {policy.key_id}, k={policy.k_anonymity.min_k}, "
            f"consent_required={policy.consent_required}, digest {policy_digest(policy)}"
        )  # the digest the ledger's pseudonymizer.policy_in_force names (D23c)


@app.command()
def reidentify(
    dataset: str = typer.Option(..., help="Dataset whose pseudonym this is"),
    pseudonym: str = typer.Option(..., help="The pseudonym to re-identify"),
    approval: str = typer.Option(..., help="Approval reference (DRB/IRB) allowing this request"),
) -> None:
    """Pseudonym -> internal person id. Writes an audit event before answering. Exit 1: not
    found; 2: unusable request; 3: the state could not be read to its end (no answer, D26)."""
    from biostream.restore import ReadStalled

    from pseudonymizer.adapters.keys import KeyStore
    from pseudonymizer.adapters.reidentify import reidentify as run_reidentify
    from pseudonymizer.domain.release import Keyed

    if not approval.strip():
        typer.echo("pseudonymizer: an approval reference is required", err=True)
        raise typer.Exit(2)
    settings = PseudonymizerSettings()
    configure_logging("pseudonymizer", settings.log_level, settings.instance_id)
    releases = [k for k in _releases(settings) if isinstance(k, Keyed)]
    matching = [k for k in releases if k.policy.dataset == dataset]
    if not matching:
        typer.echo(f"pseudonymizer: no policy for dataset {dataset!r}", err=True)
        raise typer.Exit(2)
    keyed = matching[0]
    versions = KeyStore.load(settings.keys_dir, settings.pseudonym_keys).versions(
        keyed.policy.pseudonym_domain
    )
    try:
        answer = asyncio.run(
            run_reidentify(
                settings.kafka, Topics(settings.topic_prefix), settings.principal, keyed,
                versions, pseudonym, approval.strip(), limit_s=settings.read_timeout_s,
            )
        )  # fmt: skip
    except ReadStalled as stall:
        typer.echo(f"pseudonymizer: no answer: {stall}", err=True)
        raise typer.Exit(3) from None
    if answer.person_id is None:
        typer.echo("not found", err=True)
        raise typer.Exit(1)
    typer.echo(f"{answer.person_id}\t(key {keyed.policy.pseudonym_domain}/{answer.key_version})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
