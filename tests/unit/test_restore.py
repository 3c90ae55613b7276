"""biostream.restore: when a state restore is done, keeps waiting or gives up (D22)."""

from __future__ import annotations

from biostream.restore import (
    FIRST_POLL_MS,
    MAX_POLL_MS,
    RestoreWatch,
    Step,
    next_poll_ms,
    restore_step,
)

TARGETS = {0: 1000, 1: 500}


def test_done_only_when_every_partition_reached_its_target() -> None:
    assert restore_step({0: 1000, 1: 500}, TARGETS, 0.0, 60.0) is Step.DONE
    assert restore_step({0: 1001, 1: 500}, TARGETS, 0.0, 60.0) is Step.DONE  # read past: fine
    assert restore_step({0: 1000, 1: 499}, TARGETS, 0.0, 60.0) is Step.WAIT
    assert restore_step({0: 1000}, TARGETS, 0.0, 60.0) is Step.WAIT  # a partition not seen yet


def test_an_empty_changelog_is_done_at_once() -> None:
    assert restore_step({}, {}, 0.0, 60.0) is Step.DONE
    assert restore_step({0: 0}, {0: 0}, 0.0, 60.0) is Step.DONE


def test_keeps_waiting_until_no_progress_for_the_limit() -> None:
    # The old restore gave up after about 2 s of empty polls; this one waits.
    assert restore_step({0: 10, 1: 0}, TARGETS, 2.5, 60.0) is Step.WAIT
    assert restore_step({0: 10, 1: 0}, TARGETS, 59.9, 60.0) is Step.WAIT
    assert restore_step({0: 10, 1: 0}, TARGETS, 60.0, 60.0) is Step.GIVE_UP


def test_done_wins_over_a_stall() -> None:
    assert restore_step({0: 1000, 1: 500}, TARGETS, 600.0, 60.0) is Step.DONE


def test_a_long_restore_that_keeps_moving_is_never_cut_off() -> None:
    watch = RestoreWatch(dict(TARGETS), limit_s=60.0, last_progress_at=0.0)
    # An hour of reading, a little progress every 30 s: always inside the limit.
    for minute_half in range(120):
        now = 30.0 * (minute_half + 1)
        step = watch.observe({0: minute_half + 1, 1: 0}, now)
        assert step is Step.WAIT, now
    assert watch.observe({0: 1000, 1: 500}, 3630.0) is Step.DONE


def test_gives_up_after_the_limit_without_any_position_moving() -> None:
    watch = RestoreWatch(dict(TARGETS), limit_s=60.0, last_progress_at=0.0)
    assert watch.observe({0: 100, 1: 50}, 1.0) is Step.WAIT
    assert watch.observe({0: 100, 1: 50}, 30.0) is Step.WAIT
    assert not watch.progressed
    assert watch.observe({0: 100, 1: 50}, 61.0) is Step.GIVE_UP
    assert watch.stalled_s(61.0) == 60.0


def test_a_position_moving_past_transaction_markers_counts_as_progress() -> None:
    # No record handed out, but the position moved (a commit marker): the stall clock restarts.
    watch = RestoreWatch({0: 101}, limit_s=60.0, last_progress_at=0.0)
    watch.observe({0: 100}, 1.0)
    assert watch.observe({0: 100}, 59.0) is Step.WAIT
    assert watch.observe({0: 101}, 59.5) is Step.DONE
    watch = RestoreWatch({0: 200}, limit_s=60.0, last_progress_at=0.0)
    watch.observe({0: 100}, 1.0)
    assert watch.observe({0: 101}, 59.0) is Step.WAIT
    assert watch.observe({0: 101}, 118.0) is Step.WAIT
    assert watch.observe({0: 101}, 119.0) is Step.GIVE_UP


def test_progress_figures_name_partitions_and_offsets_only() -> None:
    watch = RestoreWatch(dict(TARGETS), limit_s=60.0, last_progress_at=0.0)
    watch.observe({0: 1000, 1: 120}, 1.0)
    assert watch.behind() == 380
    assert watch.lagging() == {"1": [120, 500]}


def test_the_poll_backs_off_while_nothing_moves_and_resets_on_progress() -> None:
    waits = [FIRST_POLL_MS]
    for _ in range(8):
        waits.append(next_poll_ms(waits[-1], progressed=False))
    assert waits == [200, 400, 800, 1600, 2000, 2000, 2000, 2000, 2000]
    assert max(waits) == MAX_POLL_MS
    assert next_poll_ms(MAX_POLL_MS, progressed=True) == FIRST_POLL_MS
