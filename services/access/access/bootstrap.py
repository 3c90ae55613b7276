"""The one place that builds the access service's collaborators (through ``biostream.kit``)."""

from __future__ import annotations

import uuid

from biostream.kit import parts
from biostream.settings import read_secret
from biostream.web_auth import Sessions, parse_users
from prometheus_client import CollectorRegistry

from access.adapters.files import load_board, load_catalogue, shipped_duo_terms
from access.adapters.pages import AccessPages
from access.adapters.policies import board_signer
from access.adapters.risk_reports import ReportFollower
from access.adapters.service import AccessService
from access.adapters.stream import CommandDesk, EventFollower, TransactionalWriter, utc_now
from access.adapters.visas import VisaSigner
from access.adapters.web import AccessApi
from access.domain.commands import AccessRules
from access.handlers import SERVICE, AccessHandler, AccessMetrics
from access.settings import AccessSettings


def build_rules(settings: AccessSettings) -> AccessRules:
    """The board file and the catalogue (refused at start, naming the problem) and the shipped
    DUO term list."""
    terms = shipped_duo_terms()
    catalogue = load_catalogue(settings.catalogue_file, terms)
    return AccessRules(load_board(settings.board_file), terms, catalogue)


def build_handler(settings: AccessSettings, registry: CollectorRegistry) -> AccessHandler:
    # The service dead-letters nothing (it reads only its own events); its envelopes are for
    # audit events, on its principal's topic (audit.events.svc-access).
    kit = parts(SERVICE, settings, registry, dead_letters=False)
    return AccessHandler(
        build_rules(settings), kit.codec, kit.topics, kit.envelopes, AccessMetrics.create(registry),
        board_signer(settings.board_signing_key_file, settings.board_signing_key),
    )  # fmt: skip


def build_visa_signer(settings: AccessSettings, rules: AccessRules) -> VisaSigner | None:
    """D47: the board's visa key, when one is configured (none: visas are refused, 503)."""
    if settings.visa_key_file is None and settings.visa_key is None:
        return None
    pem = read_secret(settings.visa_key, settings.visa_key_file, "visa_key")
    return VisaSigner.from_pem(pem, settings.visa_issuer, rules.board.board.url)


def load_users(settings: AccessSettings) -> dict[str, str]:
    if settings.users_file is not None:
        return parse_users(settings.users_file.read_text(encoding="utf-8"))
    if settings.users is not None:
        return parse_users(settings.users.get_secret_value())
    raise ValueError("no accounts: set BIOSTREAM_USERS_FILE or BIOSTREAM_USERS")


def build_writer(settings: AccessSettings, role: str) -> TransactionalWriter:
    """A transactional id of its own (``access-*`` by ACL): the service's is its instance's,
    each command line run gets a random one, so no writer fences another."""
    suffix = settings.instance_id if role == "service" else f"cli-{uuid.uuid4().hex[:12]}"
    return TransactionalWriter(settings.kafka, f"{settings.topic_prefix}{SERVICE}-{suffix}")


def build_follower(
    settings: AccessSettings, handler: AccessHandler, client: str, limit_s: float
) -> EventFollower:
    return EventFollower(settings.kafka, f"{settings.topic_prefix}{client}", handler, limit_s)


def build(settings: AccessSettings, registry: CollectorRegistry | None = None) -> AccessService:
    registry = registry or CollectorRegistry()
    handler = build_handler(settings, registry)
    sessions = Sessions(
        read_secret(settings.session_key, settings.session_key_file, "session_key"),
        settings.session_lifetime_s,
    )
    # The applications are rebuilt from access.events at every start: a state restore (D26).
    follower = build_follower(
        settings, handler, f"{SERVICE}-{settings.instance_id}", settings.restore_timeout_s
    )
    writer = build_writer(settings, "service")
    desk = CommandDesk(handler, writer)
    users = load_users(settings)
    visas = build_visa_signer(settings, handler.rules)
    pages = AccessPages(
        desk, users, sessions, settings.secure_cookie, ready=lambda: follower.ready, visas=visas
    )
    api = AccessApi(
        desk, users, sessions, settings.secure_cookie, ready=lambda: follower.ready,
        pages=pages.routes(), visas=visas,
    )  # fmt: skip
    reports = ReportFollower(
        settings.kafka, f"{settings.topic_prefix}{SERVICE}-risk-{settings.instance_id}", desk,
        handler.topics, utc_now,
    )  # fmt: skip
    return AccessService(settings, registry, follower, writer, desk, api, reports=reports)
