"""Audit settings (environment, read once in ``__main__``)."""

from __future__ import annotations

from biostream.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    pass
