"""HoldBack: records wait in memory until ready, in each partition's order, for a bounded time and
in bounded number; never lost, never reordered within a partition."""

from __future__ import annotations

from biostream.holdback import HoldBack, HoldPolicy

POLICY = HoldPolicy(frozenset({"clinical"}), max_hold_s=2.0, max_held=100)


def test_only_the_policys_topics_are_held() -> None:
    held: HoldBack[str, str] = HoldBack(POLICY)
    assert held.holds("clinical")
    assert not held.holds("decisions")


def test_a_ready_record_goes_out_and_a_waiting_head_blocks_only_its_own_partition() -> None:
    held: HoldBack[str, str] = HoldBack(POLICY)
    held.add("p0", ["a1", "b1", "a2"], now_s=0.0)
    held.add("p1", ["a3"], now_s=0.0)
    # b's decision is not there: p0 stops at b1 (a2 stays behind it), p1 goes on.
    out = list(held.release(lambda item: item.startswith("a"), now_s=1.0))
    assert out == [("p0", "a1"), ("p1", "a3")]
    assert len(held) == 2
    assert held.drain_outcomes() == {"ready": 2}
    # Once b is ready, the rest of p0 follows in offset order.
    assert list(held.release(lambda item: True, now_s=1.5)) == [("p0", "b1"), ("p0", "a2")]
    assert len(held) == 0


def test_ready_sees_what_handling_the_records_before_it_changed() -> None:
    held: HoldBack[str, str] = HoldBack(POLICY)
    held.add("p0", ["opens", "needs-open"], now_s=0.0)
    opened: set[str] = set()

    def ready(item: str) -> bool:
        return item == "opens" or "door" in opened

    handled = []
    for _, item in held.release(ready, now_s=0.1):
        handled.append(item)
        opened.add("door")  # the handler's state change
    assert handled == ["opens", "needs-open"]


def test_a_record_held_for_max_hold_goes_out_anyway() -> None:
    held: HoldBack[str, str] = HoldBack(POLICY)
    held.add("p0", ["old"], now_s=0.0)
    held.add("p0", ["new"], now_s=1.5)
    assert list(held.release(lambda item: False, now_s=1.9)) == []
    # 2 s after "old" arrived: it goes; "new" has waited 0.5 s and stays.
    assert list(held.release(lambda item: False, now_s=2.0)) == [("p0", "old")]
    assert held.drain_outcomes() == {"expired": 1}
    assert len(held) == 1


def test_more_than_max_held_releases_the_oldest_until_within_bound() -> None:
    held: HoldBack[str, int] = HoldBack(HoldPolicy(frozenset({"t"}), max_hold_s=60, max_held=3))
    held.add("p0", [1, 2, 3, 4, 5], now_s=0.0)
    assert list(held.release(lambda item: False, now_s=0.0)) == [("p0", 1), ("p0", 2)]
    assert held.drain_outcomes() == {"full": 2}
    assert len(held) == 3


def test_forget_drops_everything_held() -> None:
    held: HoldBack[str, str] = HoldBack(POLICY)
    held.add("p0", ["a", "b"], now_s=0.0)
    held.forget()
    assert len(held) == 0
    assert list(held.release(lambda item: True, now_s=10.0)) == []
