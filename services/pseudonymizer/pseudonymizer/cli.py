"""What ``pseudonymizer check`` and ``pseudonymizer reidentify`` do, and the policy check every
start makes."""

from __future__ import annotations

import asyncio

import typer
from biostream.kit import tool_principal
from biostream.logs import configure_logging
from biostream.topics import Topics

from pseudonymizer.domain.release import Keyed
from pseudonymizer.settings import PseudonymizerSettings


def releases(settings: PseudonymizerSettings) -> list[Keyed]:
    """Policies with their keys, or exit 2 with the message naming the problem
    (D-pseudonymizer-1: what the service could not enforce exactly stops start-up)."""
    from biostream.release_policies import BoardKeyError

    from pseudonymizer.adapters.keys import KeyMaterialError
    from pseudonymizer.bootstrap import load_board_keys_of, load_releases
    from pseudonymizer.domain.policy import PolicyError

    try:
        load_board_keys_of(settings)  # D46: board keys that cannot be used stop start-up too
        return list(load_releases(settings))
    except (PolicyError, KeyMaterialError, BoardKeyError, ValueError) as error:
        typer.echo(f"pseudonymizer: refused to start: {error}", err=True)
        raise typer.Exit(2) from None


def check() -> None:
    """Each policy in one line, with the digest the ledger's ``pseudonymizer.policy_in_force``
    names (D23c)."""
    from pseudonymizer.bootstrap import load_board_keys_of
    from pseudonymizer.domain.in_force import policy_digest

    settings = PseudonymizerSettings()
    for keyed in releases(settings):
        policy = keyed.policy
        typer.echo(
            f"{policy.policy_version}: approval {policy.approval_ref}, topic {policy.topic}, "
            f"key {policy.key_id}, k={policy.k_anonymity.min_k}, "
            f"consent_required={policy.consent_required}, digest {policy_digest(policy)}"
        )
    # D46: the board keys signed policy versions on access.policies are checked against.
    for key in load_board_keys_of(settings).keys.values():
        retires = "never" if key.retires_at_ms is None else f"at {key.retires_at_ms} ms"
        typer.echo(f"board key {key.version}: id {key.key_id}, retires {retires}")


def reidentify(dataset: str, pseudonym: str, approval: str) -> None:
    """D-pseudonymizer-7: the person id recomputed from the service's state, the request audited
    before the answer is printed. D35: only under a re-identification approval the dataset's
    policy lists and that is valid today; any other is refused, and the refusal audited. D49: for
    a dataset approved at runtime that policy is its newest board-signed version on
    access.policies, whose list names approved re-identification applications by id. Exit 1
    not found, 2 unusable or refused request, 3 partial read (D26)."""
    import datetime as dt
    import time

    from biostream.restore import ReadStalled

    from pseudonymizer.adapters.reidentify import audit_refusal
    from pseudonymizer.adapters.reidentify import reidentify as run_reidentify
    from pseudonymizer.adapters.signed_policies import newest_version
    from pseudonymizer.bootstrap import load_board_keys_of, load_keys
    from pseudonymizer.domain.reidentification import (
        ApprovalRefused,
        approval_on_record,
        signed_basis,
        well_formed,
    )
    from pseudonymizer.domain.release import Keyed

    try:
        ref = well_formed(approval)
    except ValueError as error:
        typer.echo(f"pseudonymizer: {error}", err=True)
        raise typer.Exit(2) from None
    settings = PseudonymizerSettings()
    configure_logging("pseudonymizer", settings.log_level, settings.instance_id)
    matching = [k for k in releases(settings) if k.policy.dataset == dataset]
    topics = Topics(settings.topic_prefix)
    principal = tool_principal(settings, "steward")
    if topics.audit_writer(principal) != "steward":
        # D35: a steward's act, named by the steward's credentials; the service's own principal
        # (which could read its state) does not re-identify.
        typer.echo(
            f"pseudonymizer: re-identification runs as the steward principal, not {principal}",
            err=True,
        )
        raise typer.Exit(2)
    try:
        if matching:
            policy = matching[0].policy
        else:
            # D49: a dataset the board approved at runtime: its signed version on the topic.
            policy = signed_basis(
                dataset,
                asyncio.run(
                    newest_version(
                        settings.kafka, topics.access_policies, dataset, settings.read_timeout_s
                    )
                ),
                load_board_keys_of(settings),
                int(time.time() * 1000),
            )
        approval_on_record(policy, ref, dt.datetime.now(dt.UTC).date())
    except ReadStalled as stall:
        typer.echo(f"pseudonymizer: no answer: {stall}", err=True)
        raise typer.Exit(3) from None
    except ApprovalRefused as refusal:
        try:
            asyncio.run(
                audit_refusal(
                    settings.kafka, topics, principal, dataset, pseudonym, ref,
                    refusal.reason_code,
                )
            )  # fmt: skip
        except Exception as error:  # refused either way; say that the trail lacks it
            typer.echo(
                f"pseudonymizer: the refusal could not be audited ({type(error).__name__})",
                err=True,
            )
        typer.echo(f"pseudonymizer: refused: {refusal}", err=True)
        raise typer.Exit(2) from None
    store = load_keys(settings)
    versions = store.versions(policy.pseudonym_domain)
    if policy.key_version not in versions and store.has(policy.key_id):
        versions[policy.key_version] = store.key(policy.key_id)  # D46: derived from the root
    keyed = matching[0] if matching else Keyed(policy, versions[policy.key_version])
    try:
        answer = asyncio.run(
            run_reidentify(
                settings.kafka, topics, principal, keyed, versions, pseudonym, ref,
                limit_s=settings.read_timeout_s,
            )
        )  # fmt: skip
    except ReadStalled as stall:
        typer.echo(f"pseudonymizer: no answer: {stall}", err=True)
        raise typer.Exit(3) from None
    if answer.person_id is None:
        typer.echo("not found", err=True)
        raise typer.Exit(1)
    typer.echo(f"{answer.person_id}\t(key {keyed.policy.pseudonym_domain}/{answer.key_version})")


def risk() -> None:
    """D48: answer disclosure-risk requests from the retained data until SIGTERM or SIGINT."""
    import signal

    from biostream.codec import default_codec

    from pseudonymizer.adapters.risk_reports import RiskReports

    settings = PseudonymizerSettings()
    configure_logging("pseudonymizer", settings.log_level, settings.instance_id)
    topics = Topics(settings.topic_prefix)
    principal = tool_principal(settings, "svc-pseudonymizer")
    service = RiskReports(
        settings.kafka, topics, principal, default_codec(), settings.read_timeout_s
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    asyncio.run(serve())
