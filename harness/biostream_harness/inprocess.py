"""The four services in-process, in one event loop, on a real broker: for integration tests."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from audit.bootstrap import build as build_audit
from audit.settings import AuditSettings
from biostream.codec import default_codec
from biostream.kafka import ensure_topics
from biostream.service import RunnableService
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev.access import SERVICE_ROLES, Credentials, provision_services, wait_until_usable
from biostream_dev.observer import PipelineObserver
from ingest.bootstrap import build as build_ingest
from ingest.settings import IngestSettings
from linkage.bootstrap import build as build_linkage
from linkage.settings import LinkageSettings
from pseudonymizer.bootstrap import build as build_pseudonymizer
from pseudonymizer.settings import PseudonymizerSettings
from pydantic import SecretStr

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
DATASET = "cohort-demo"


@dataclass
class Keys:
    patient_ref: str
    person: str
    pseudonym: str
    ledger_signing: str = ""
    dead_letter: str = ""
    rrn: str = ""

    @classmethod
    def fresh(cls) -> Keys:
        return cls(*(secrets.token_hex(32) for _ in range(6)))


def build_services(
    kafka: KafkaSettings,
    prefix: str,
    keys: Keys,
    policy_dir: Path = POLICY_DIR,
    pseudonym_keys: dict[str, str] | None = None,
    credentials: Credentials | None = None,
    audit: dict[str, object] | None = None,
    keys_dirs: dict[str, Path] | None = None,
) -> dict[str, RunnableService]:
    """``pseudonym_keys`` maps ``<domain>/<version>`` to a key; by default the demo policy's
    domain gets ``keys.pseudonym``. ``keys_dirs`` gives keys as directories of versions (D33)
    instead: setting stem (``patient_ref``, ``person``, ``rrn``, ``dead_letter``) -> directory.
    Each service connects as its own principal when ``credentials`` are given. ``audit``: extra
    settings of the audit service."""
    domain_keys = pseudonym_keys or {f"{DATASET}/k1": keys.pseudonym}
    dirs = keys_dirs or {}

    def key(stem: str, value: str) -> dict[str, object]:
        if stem in dirs:
            return {f"{stem}_keys_dir": dirs[stem]}
        return {f"{stem}_key": SecretStr(value)}

    # model_validate, not the constructors: explicit values must win over any BIOSTREAM_* in env.
    def common(service: str) -> dict[str, object]:
        own = credentials.settings(SERVICE_ROLES[service]) if credentials else kafka
        return {"kafka": own, "topic_prefix": prefix, "poll_timeout_ms": 100,
                "principal": f"User:{prefix}svc-{service}",
                **key("dead_letter", keys.dead_letter)}  # fmt: skip

    return {
        "ingest": build_ingest(
            IngestSettings.model_validate(
                {
                    **common("ingest"),
                    **key("patient_ref", keys.patient_ref),
                    **key("rrn", keys.rrn),
                }
            )
        ),
        "linkage": build_linkage(
            LinkageSettings.model_validate(
                {
                    **common("linkage"),
                    **key("person", keys.person),
                    **key("rrn", keys.rrn),
                }
            )
        ),
        "pseudonymizer": build_pseudonymizer(
            PseudonymizerSettings.model_validate(
                {
                    **common("pseudonymizer"),
                    "policy_dir": policy_dir,
                    "pseudonym_keys": {k: SecretStr(v) for k, v in domain_keys.items()},
                }
            )
        ),
        "audit": build_audit(
            AuditSettings.model_validate(
                {
                    **common("audit"),
                    "ledger_signing_key": SecretStr(keys.ledger_signing),
                    **(audit or {}),
                }
            )
        ),
    }


@asynccontextmanager
async def running_pipeline(
    kafka: KafkaSettings,
    prefix: str,
    hospitals: list[str],
    keys: Keys,
    *,
    policy_dir: Path = POLICY_DIR,
    datasets: list[str] | None = None,
    pseudonym_keys: dict[str, str] | None = None,
    audit: dict[str, object] | None = None,
    keys_dirs: dict[str, Path] | None = None,
) -> AsyncIterator[PipelineObserver]:
    """``audit``: extra audit settings (e.g. checkpoint intervals) for the test at hand;
    ``keys_dirs``: keys as directories of versions (D33), as ``build_services`` takes them."""
    datasets = datasets or [DATASET]
    topics = Topics(prefix)
    await ensure_topics(kafka, topics.pipeline_specs(hospitals, datasets))
    # With a SASL admin, every service runs as its own least-privilege principal.
    credentials = await asyncio.to_thread(provision_services, kafka, prefix)
    if credentials is not None:
        await wait_until_usable(credentials)
    services = build_services(
        kafka, prefix, keys, policy_dir, pseudonym_keys, credentials, audit, keys_dirs
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.processor.run(stop), name=n) for n, s in services.items()]
    observer = PipelineObserver(kafka, topics, default_codec(), datasets)
    try:
        for _ in range(600):
            failed = [t for t in tasks if t.done()]
            if failed:
                failed[0].result()  # raises the service's error
            if all(s.processor.ready for s in services.values()):
                break
            await asyncio.sleep(0.1)
        else:
            raise TimeoutError("services did not become ready")
        await observer.start()
        yield observer
    finally:
        stop.set()
        await observer.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
