"""Every topic the project creates declares its retention (D21), and the rule that brings an
existing topic to it never shortens what a topic keeps unless asked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from biostream.topics import (
    COMPACTED,
    DAY_MS,
    DEFAULT_WINDOWS,
    FOREVER,
    Retention,
    RetentionWindows,
    Topics,
    for_days,
    retention_update,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("libs", "services", "consumers", "tools", "tests")
KEPT_FOREVER = {
    "identity.records", "identity.patient-merges", "clinical.records", "linkage.decisions",
    "linkage.review-tasks", "linkage.review-decisions", "consent.events", "audit.ledger",
    "audit.checkpoints", "curated.cohort-demo", "curated.cohort-demo.notices",
    "curated.genome-b", "curated.genome-b.notices", "access.events",
    "access.risk-requests", "access.risk-reports",
}  # fmt: skip
CHANGELOGS = {f"{app}.state-changelog" for app in ("ingest", "linkage", "pseudonymizer", "audit")}
# D41: keyed by parameter version, the newest record of each is where it stands.
COMPACTED_TABLES = {"linkage.params", "access.policies"}


def specs(windows: RetentionWindows = DEFAULT_WINDOWS) -> dict[str, Retention]:
    table = Topics().pipeline_specs(["H001", "H002"], ["cohort-demo", "genome-b"], windows)
    return {spec.name: spec.retention for spec in table}


def test_the_ledger_replay_inputs_and_datasets_are_kept_forever() -> None:
    table = specs()
    for name in KEPT_FOREVER:
        assert table[name] == FOREVER, name
        assert table[name].configs() == {
            "cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1",
        }  # fmt: skip


def test_state_changelogs_are_compacted_and_never_deleted_by_time() -> None:
    table = specs()
    for name in CHANGELOGS | COMPACTED_TABLES:
        assert table[name] == COMPACTED, name
        assert table[name].configs()["cleanup.policy"] == "compact"
        assert table[name].configs()["retention.ms"] == "-1"


def test_feeds_audit_events_and_dead_letters_keep_the_configured_windows() -> None:
    default = specs()
    assert default["feed.H001"] == default["audit.events.svc-ingest"] == for_days(365)
    assert default["ops.dead-letters"] == for_days(365)
    chosen = specs(RetentionWindows(input_days=90, dead_letter_days=400))
    assert (
        chosen["feed.H002"].retention_ms
        == chosen["audit.events.consent"].retention_ms
        == 90 * DAY_MS
    )
    assert chosen["ops.dead-letters"].retention_ms == 400 * DAY_MS
    with pytest.raises(ValueError):
        RetentionWindows(input_days=0)


def test_every_topic_name_the_project_knows_is_in_the_table() -> None:
    topics = Topics()
    named = {
        getattr(topics, attr)
        for attr, value in vars(Topics).items()
        if isinstance(value, property) and attr not in {"feed_pattern", "audit_event_topics"}
    }
    named |= set(topics.audit_event_topics)
    named |= {topics.feed("H001"), topics.curated("cohort-demo"), topics.notices("cohort-demo")}
    named |= {topics.state(app) for app in ("ingest", "linkage", "pseudonymizer", "audit")}
    assert named <= set(specs()), named - set(specs())
    assert set(specs()) == KEPT_FOREVER | CHANGELOGS | COMPACTED_TABLES | {
        "feed.H001", "feed.H002", *topics.audit_event_topics, "ops.dead-letters",
    }  # fmt: skip


def _calls(name: str, dirs: tuple[str, ...]) -> list[tuple[Path, ast.Call]]:
    found = []
    for folder in dirs:
        for path in (ROOT / folder).rglob("*.py"):
            if ".venv" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call):
                    func = node.func
                    called = (
                        func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    )
                    if called == name:
                        found.append((path, node))
    return found


def test_every_topic_spec_constructed_anywhere_declares_a_retention() -> None:
    """Benchmarks and tests create topics through ensure_topics too: TopicSpec takes the
    retention as its third argument, and no call may leave it out."""
    calls = _calls("TopicSpec", SOURCE_DIRS)
    assert len(calls) >= 15  # the table itself and the benchmark and test topics
    for path, call in calls:
        keywords = {k.arg for k in call.keywords}
        assert len(call.args) >= 3 or "retention" in keywords, f"{path}:{call.lineno}"
        assert "compacted" not in keywords, f"{path}:{call.lineno}"


def test_only_the_provisioning_function_creates_topics_and_it_passes_their_retention() -> None:
    """NewTopic outside biostream.kafka (the dev broker's readiness probe) still sets a retention;
    tests are left out: the short-retention e2e test makes an undeclared control topic on purpose."""
    calls = _calls("NewTopic", ("libs", "services", "consumers", "tools"))
    assert {p.relative_to(ROOT).as_posix() for p, _ in calls} == {
        "libs/biostream/kafka.py", "libs/biostream_dev/broker/readiness.py",
    }  # fmt: skip
    for path, call in calls:
        configs = next((k.value for k in call.keywords if k.arg == "topic_configs"), None)
        assert configs is not None, f"{path}:{call.lineno}"
        # The configuration of a declared Retention (spec.retention.configs(), for_days(1)...).
        assert ast.unparse(configs).endswith(".configs()"), f"{path}:{call.lineno}"


def test_the_strimzi_topics_carry_the_declared_retention() -> None:
    from biostream_harness.__main__ import DEPLOY_DATASETS, DEPLOY_HOSPITALS

    table = {
        s.name: s.retention for s in Topics().pipeline_specs(DEPLOY_HOSPITALS, DEPLOY_DATASETS)
    }
    text = (ROOT / "deploy/k8s/base/kafka-topics.yaml").read_text()
    resources = [r for r in yaml.safe_load_all(text) if r]
    assert {r["spec"]["topicName"] for r in resources} == set(table)
    for resource in resources:
        config = resource["spec"]["config"]
        declared = table[resource["spec"]["topicName"]]
        assert {k: str(config[k]) for k in declared.configs()} == declared.configs()


WEEK = str(7 * DAY_MS)


@pytest.mark.parametrize(
    ("declared", "current", "expected"),
    [
        # Created before D21: Kafka's defaults, spelled out or absent.
        (FOREVER, {"cleanup.policy": "delete", "retention.ms": WEEK}, {"retention.ms": "-1"}),
        (FOREVER, {}, {"retention.ms": "-1"}),
        (for_days(365), {"retention.ms": WEEK}, {"retention.ms": str(365 * DAY_MS)}),
        (FOREVER, {"retention.ms": "-1", "retention.bytes": "1000"}, {"retention.bytes": "-1"}),
        # Already as declared, or keeping longer: nothing changes.
        (FOREVER, {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}, {}),
        (for_days(30), {"retention.ms": str(90 * DAY_MS)}, {}),
        (for_days(30), {"retention.ms": "-1"}, {}),
        # Compaction only where declared; a compacted changelog with time deletion loses state.
        (COMPACTED, {"cleanup.policy": "compact", "retention.ms": WEEK}, {"retention.ms": "-1"}),
        (COMPACTED, {"cleanup.policy": "compact,delete", "retention.ms": "-1"},
         {"cleanup.policy": "compact"}),
        (FOREVER, {"cleanup.policy": "compact", "retention.ms": "-1"}, {"cleanup.policy": "delete"}),
    ],
)  # fmt: skip
def test_existing_topics_are_brought_up_to_their_declared_retention(
    declared: Retention, current: dict[str, str], expected: dict[str, str]
) -> None:
    assert retention_update(declared, current) == expected


def test_a_longer_retention_is_only_cut_down_when_asked() -> None:
    current = {"cleanup.policy": "delete", "retention.ms": str(90 * DAY_MS)}
    assert retention_update(for_days(30), current) == {}
    assert retention_update(for_days(30), current, shorten=True) == {
        "retention.ms": str(30 * DAY_MS)
    }


def test_retention_values_are_forever_or_positive() -> None:
    with pytest.raises(ValueError):
        Retention("delete", 0)
    with pytest.raises(ValueError):
        Retention("delete", -1, retention_bytes=-5)
    with pytest.raises(ValueError):
        for_days(0)
