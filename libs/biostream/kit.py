"""The service kit: every service is built and run from these, the same way.

- ``parts(service, settings)``: what every handler is made of (metrics registry, topics, the
  codec, envelopes sealing dead letters with the service's key);
- ``stream_service(...)``: one call from settings, a handler factory and the inputs to a runnable
  stream service (its transactional processor behind the metrics and health server);
- ``run_service(...)``: the ``run`` command of every service.

Reading an input or rejecting it is ``Envelopes.decode_or_reject``; the shared codec is
``biostream.codec.default_codec``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry

from biostream.codec import AvroCodec, default_codec
from biostream.contract import FailureHandler, Handler, IdleHandler
from biostream.envelopes import Envelopes, dead_letter_sealer
from biostream.logs import configure_logging
from biostream.observability import ProcessorMetrics
from biostream.processor import HoldForReady, ProcessorConfig, Replay, TransactionalProcessor
from biostream.service import Runnable, RunnableService, run_until_stopped
from biostream.settings import ServiceSettings
from biostream.state import StateStore
from biostream.topics import AUDIT_WRITERS, Topics

S = TypeVar("S", bound=ServiceSettings)
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Parts:
    """The collaborators a service's handler is built from."""

    service: str
    settings: ServiceSettings
    registry: CollectorRegistry
    topics: Topics
    codec: AvroCodec
    envelopes: Envelopes


def service_principal(
    service: str, settings: ServiceSettings, topics: Topics, audits: bool = True
) -> str:
    """D31: the principal a service's audit events name is the one Kafka authenticates it as
    (its SCRAM user or certificate); a different ``BIOSTREAM_PRINCIPAL`` is a configuration
    error, as is a principal with no audit topic of its own.

    Credentials of a principal outside the matrix (the super user, in tests' set-up) or none at
    all: ``BIOSTREAM_PRINCIPAL``, else ``User:<prefix>svc-<service>``. Only the super user can
    write to another principal's audit topic, by ACL, so this claims nothing it could not do."""
    authenticated = settings.kafka.authenticated_principal()
    if authenticated is not None and (
        not audits or topics.audit_writer(authenticated) in AUDIT_WRITERS
    ):
        if settings.principal is not None and settings.principal != authenticated:
            raise ValueError(
                f"BIOSTREAM_PRINCIPAL {settings.principal} is not {authenticated}, the principal "
                "the Kafka credentials authenticate"
            )
        return authenticated
    principal = settings.principal or f"User:{topics.prefix}svc-{service}"
    if audits and topics.audit_writer(principal) not in AUDIT_WRITERS:
        raise ValueError(
            f"principal {principal} has no audit topic (one of {', '.join(AUDIT_WRITERS)})"
        )
    return principal


def tool_principal(settings: ServiceSettings, role: str) -> str:
    """D31: the principal a command's audit events name: the one its Kafka credentials
    authenticate (``--reviewer``-style flags are not identities); without credentials
    ``BIOSTREAM_PRINCIPAL``, else ``User:<prefix><role>``, ``role`` being the matrix's."""
    topics = Topics(settings.topic_prefix)
    authenticated = settings.kafka.authenticated_principal()
    if authenticated is not None and topics.audit_writer(authenticated) in AUDIT_WRITERS:
        return authenticated
    return settings.principal or f"User:{topics.prefix}{role}"


def parts(
    service: str,
    settings: ServiceSettings,
    registry: CollectorRegistry | None = None,
    *,
    dead_letters: bool = True,
    audits: bool = True,
) -> Parts:
    """A service's registry (a new one if None), topics, codec and envelopes. Its dead letters
    are sealed (D12: no key, no start, unless clear text was asked for); a service that never
    dead-letters (``dead_letters=False``, the review desk) has envelopes for audit events only."""
    topics = Topics(settings.topic_prefix)
    codec = default_codec()
    sealer = dead_letter_sealer(settings) if dead_letters else None
    principal = service_principal(service, settings, topics, audits)
    envelopes = Envelopes(service, principal, codec, topics, sealer)
    return Parts(service, settings, registry or CollectorRegistry(), topics, codec, envelopes)


def stream_service(
    service: str,
    settings: ServiceSettings,
    handler: Callable[[Parts], H],
    inputs: Callable[[Topics], Sequence[str]],
    registry: CollectorRegistry | None = None,
    *,
    on_failure: str | Callable[[Parts], FailureHandler],
    input_pattern: Callable[[Topics], str] | None = None,
    single_writer: bool = False,
    on_idle: Callable[[H], IdleHandler] | None = None,
    hold: Callable[[Parts, H], HoldForReady | None] | None = None,
    batch_audit: bool = True,
    replay: Callable[[Parts, H], Replay | None] | None = None,
    on_commit: Callable[[Parts, H], Callable[[StateStore], None] | None] | None = None,
) -> RunnableService:
    """A stream service from its settings, a handler factory and its input topics.

    ``on_failure``: the reason code of the dead letter (and ``<service>.failed`` audit event) a
    message whose handler raised becomes, or a factory of the service's own failure handler.
    ``input_pattern``: inputs by topic pattern instead (ingest's feeds). ``single_writer``: one
    member of the group owns every input partition (D-linkage-3). ``on_idle``: time-driven work
    of the handler. ``hold``: inputs held back until the handler can deal with them (D18).
    ``batch_audit``: the service's audit events leave as one batch per transaction (D15).
    ``replay``: retained records the handler asks for again (D46: a dataset's history).
    ``on_commit``: told the state after each commit and restore (D46: broker ACLs follow it).
    """
    kit = parts(service, settings, registry, audits=batch_audit)
    built = handler(kit)
    failure = (
        kit.envelopes.failure_handler(on_failure)
        if isinstance(on_failure, str)
        else on_failure(kit)
    )
    config = ProcessorConfig.for_service(
        settings,
        service,
        list(inputs(kit.topics)),
        input_pattern=input_pattern(kit.topics) if input_pattern else None,
        single_writer=single_writer,
    )
    processor = TransactionalProcessor(
        config,
        built,
        failure,
        ProcessorMetrics.create(kit.registry, service),
        on_idle=on_idle(built) if on_idle else None,
        audit_batching=kit.envelopes.audit_batching() if batch_audit else None,
        hold=hold(kit, built) if hold else None,
        replay=replay(kit, built) if replay else None,
        on_commit=on_commit(kit, built) if on_commit else None,
    )
    return RunnableService(service, settings, kit.registry, processor)


def run_service(
    service: str,
    settings_type: Callable[[], S],
    build: Callable[[S], Runnable],
    check: Callable[[S], object] | None = None,
) -> None:
    """Every service's ``run`` command: its settings read once from the environment, logging
    configured, ``check`` (which refuses to start, naming the problem), then the service until
    SIGTERM/SIGINT; exits with the service's error if it fails."""
    settings = settings_type()
    configure_logging(service, settings.log_level, settings.instance_id)
    if check is not None:
        check(settings)
    asyncio.run(run_until_stopped(build(settings)))
