"""The one place that builds the review desk's collaborators (through ``biostream.kit``)."""

from __future__ import annotations

from biostream.envelopes import Envelopes
from biostream.kit import parts, tool_principal
from biostream.settings import read_secret
from biostream.web_auth import Sessions, parse_users
from prometheus_client import CollectorRegistry

from review.adapters.service import ReviewService
from review.adapters.stream import Publisher, StreamFollower
from review.adapters.web import DeskApp
from review.domain.steward import STEWARD_ROLE
from review.handlers import SERVICE, ReviewHandler, ReviewMetrics
from review.settings import ReviewSettings


def build_handler(settings: ReviewSettings, registry: CollectorRegistry) -> ReviewHandler:
    # The desk never dead-letters (it only reads); its envelopes are for audit events.
    kit = parts(SERVICE, settings, registry, dead_letters=False)
    return ReviewHandler(kit.codec, kit.topics, kit.envelopes, ReviewMetrics.create(registry))


def build_steward_handler(settings: ReviewSettings, registry: CollectorRegistry) -> ReviewHandler:
    """D35: the steward's command line: its audit events name the principal its credentials
    authenticate (``kit.tool_principal``) and go to that principal's audit topic."""
    kit = parts(SERVICE, settings, registry, dead_letters=False, audits=False)
    principal = tool_principal(settings, STEWARD_ROLE)
    envelopes = Envelopes(SERVICE, principal, kit.codec, kit.topics)
    return ReviewHandler(kit.codec, kit.topics, envelopes, ReviewMetrics.create(registry))


def load_users(settings: ReviewSettings) -> dict[str, str]:
    if settings.users_file is not None:
        return parse_users(settings.users_file.read_text(encoding="utf-8"))
    if settings.users is not None:
        return parse_users(settings.users.get_secret_value())
    raise ValueError("no steward accounts: set BIOSTREAM_USERS_FILE or BIOSTREAM_USERS")


def build(settings: ReviewSettings, registry: CollectorRegistry | None = None) -> ReviewService:
    registry = registry or CollectorRegistry()
    handler = build_handler(settings, registry)
    sessions = Sessions(
        read_secret(settings.session_key, settings.session_key_file, "session_key"),
        settings.session_lifetime_s,
    )
    client = f"{settings.topic_prefix}{SERVICE}-{settings.instance_id}"
    publisher = Publisher(settings.kafka, client)
    # The desk's view is rebuilt from its topics at every start: a state restore (D22, D26).
    follower = StreamFollower(settings.kafka, client, handler, limit_s=settings.restore_timeout_s)
    users = load_users(settings)
    desk = DeskApp(
        handler, publisher, users, sessions, settings.secure_cookie, ready=lambda: follower.ready
    )
    return ReviewService(settings, registry, handler, follower, publisher, desk)
