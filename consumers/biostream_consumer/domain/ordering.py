"""The apply order of the two topics of a dataset, as a pure rule.

A notice on ``curated.<dataset>.notices`` refers to records released before it (in an earlier
transaction of the pseudonymizer, or the same one). With read_committed reads:

1. take the notices topic's end offsets N (last stable offsets),
2. then the data topic's end offsets D,
3. apply the data topic up to D, then the notices up to N; repeat.

Every notice below N committed before step 1; every record it refers to committed no later, so it
is below D, which was taken afterwards. Hence when a notice is applied, the records it moves or
deletes are already held. Data applied past a notice is harmless: records released after a
CORRECTION already carry the new pseudonym (a move matches curated id *and* the old pseudonym, so
it never touches them), and nothing is released for a person after a WITHDRAWAL.
"""

from __future__ import annotations

from collections.abc import Mapping

Offsets = Mapping[tuple[str, int], int]


def behind(positions: Offsets, ends: Offsets) -> dict[tuple[str, int], int]:
    """Messages left per partition (only partitions with something left)."""
    return {
        tp: end - positions.get(tp, 0) for tp, end in ends.items() if positions.get(tp, 0) < end
    }
