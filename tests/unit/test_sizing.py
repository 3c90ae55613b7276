"""The sizing arithmetic of deploy/k8s/README.md (D21): measured bytes per feed message, scaled
to a year of messages, held according to each topic's retention, with and without tiering."""

from __future__ import annotations

import dataclasses

import pytest
from biostream.topics import COMPACTED, FOREVER, TopicSpec, for_days
from biostream_harness.bench.sizing import (
    Projection,
    Scenario,
    TopicProjection,
    TopicSize,
    merge_feeds,
    project,
    retention_label,
)

# 100 feed messages from 10 persons measured; 1,000 participants x 10 messages = 10,000
# messages a year: every message-driven figure scales by 100.
SCENARIO = Scenario(
    participants=1_000, messages_per_participant_year=10, years=4, replication=3,
    local_days=7.0, segment_days=7.0, checkpoint_every_seconds=3_153.6, dedup_window_days=73.0,
)  # fmt: skip
SIZES = [
    TopicSize("audit.ledger", "forever", 10, 50_000, 45_000, 50_000),
    TopicSize("feed.*", "365 days", 100, 200_000, 190_000, 200_000),
    TopicSize("ops.dead-letters", "730 days", 1, 1_000, 900, 1_000),
    TopicSize("audit.checkpoints", "forever", 2, 600, 500, 600),
    TopicSize("linkage.state-changelog", "compacted", 80, 16_000, 16_000, 4_000),
    TopicSize("ingest.state-changelog", "compacted", 100, 6_000, 6_000, 5_000),
    TopicSize("audit.state-changelog", "compacted", 9, 3_000, 3_000, 300),
    TopicSize("pseudonymizer.state-changelog", "compacted", 50, 9_000, 9_000, 2_000),
]


def projected(scenario: Scenario = SCENARIO) -> tuple[Projection, dict[str, TopicProjection]]:
    result = project(SIZES, 100, 10, scenario)
    return result, {t.name: t for t in result.topics}


def test_forever_topics_grow_every_year_and_windows_hold_their_days() -> None:
    _, rows = projected()
    assert rows["audit.ledger"].first_year == 5_000_000
    assert rows["audit.ledger"].held_one_copy == 20_000_000
    assert rows["feed.*"].first_year == rows["feed.*"].held_one_copy == 20_000_000
    assert rows["ops.dead-letters"].first_year == 100_000
    assert rows["ops.dead-letters"].held_one_copy == 200_000  # two years of 100 KB
    assert rows["audit.ledger"].bytes_per_message == 500
    assert rows["audit.ledger"].records_per_message == pytest.approx(0.1)
    assert rows["audit.ledger"].bytes_per_record == 5_000


def test_checkpoints_grow_with_time_not_messages() -> None:
    # 300 bytes each, one per 3,153.6 s: 10,000 a year, however many messages.
    _, rows = projected()
    assert rows["audit.checkpoints"].first_year == pytest.approx(3_000_000)
    _, busier = projected(dataclasses.replace(SCENARIO, participants=2_000))
    assert busier["audit.checkpoints"].first_year == pytest.approx(3_000_000)


def test_changelogs_keep_what_compaction_keeps_growing_as_their_keys_do() -> None:
    _, rows = projected()
    # Per participant: 4,000 live bytes for 10 persons, 1,000 participants; no growth after.
    assert rows["linkage.state-changelog"].first_year == 400_000
    assert rows["linkage.state-changelog"].held_one_copy == 400_000
    # The dedup window: 73 of a year's 500,000 live bytes.
    assert rows["ingest.state-changelog"].held_one_copy == pytest.approx(100_000)
    assert rows["audit.state-changelog"].held_one_copy == 300
    # Released ids per patient: with the records, every year.
    assert rows["pseudonymizer.state-changelog"].held_one_copy == 800_000
    assert not any(rows[n].tiered for n in rows if n.endswith("changelog"))


def test_tiered_storage_keeps_two_weeks_local_and_the_rest_once_remote() -> None:
    result, _ = projected()
    state = 400_000 + 100_000 + 300 + 800_000
    delete_held = 20e6 + 20e6 + 0.2e6 + 12e6
    assert result.held_one_copy == pytest.approx(delete_held + state)
    assert result.local_without_tiering == pytest.approx(3 * result.held_one_copy)
    local = 14 / 365 * (5e6 + 20e6 + 0.1e6 + 3e6) + state  # two weeks of each rate, state whole
    assert result.local_with_tiering == pytest.approx(3 * local)
    assert result.remote_with_tiering == pytest.approx(result.held_one_copy - local)


def test_nothing_measured_is_refused() -> None:
    with pytest.raises(ValueError):
        project(SIZES, 0, 10, SCENARIO)


def test_labels_and_feeds_merged() -> None:
    assert retention_label(TopicSpec("t", 1, FOREVER)) == "forever"
    assert retention_label(TopicSpec("t", 1, COMPACTED)) == "compacted"
    assert retention_label(TopicSpec("t", 1, for_days(365))) == "365 days"
    a = TopicSize("feed.*", "365 days", 2, 20, 18, 20)
    b = TopicSize("feed.*", "365 days", 3, 30, 27, 30)
    assert merge_feeds([a, b]) == [TopicSize("feed.*", "365 days", 5, 50, 45, 50)]
