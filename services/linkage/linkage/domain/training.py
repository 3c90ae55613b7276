"""Unsupervised estimation of the Fellegi-Sunter parameters (no labels).

* u (how often non-matches agree): from random pairs of the sample, which are almost all
  non-matches;
* m (how often matches agree) and the share of matches among blocked pairs: expectation
  maximisation over the comparison patterns of the pairs the blocking keys bring together, with u
  held fixed (as Splink does);
* term frequencies of surnames and given names: from the sample.

The prior is the estimated share of matches among *all* pairs. Deterministic for a given sample
and seed.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from linkage.domain.comparison import FIELDS, LEVELS, Levels, compare
from linkage.domain.profile import Profile, blocking_keys
from linkage.domain.weights import Params

_TF_MIN_COUNT = 3
_M_FLOOR_SESSION = 1e-3
_NAMES = frozenset({"family", "given", "latin"})
_NOT_NAMES = frozenset(FIELDS) - _NAMES
_MIN_SESSION_PAIRS = 50
_U_ROUNDS = 2  # u from all random pairs, then from the same pairs weighted as non-matches


def _u_from(
    patterns: Counter[Levels], weights: dict[Levels, float], base: Params, floor: float
) -> dict[str, list[float]]:
    shares = _level_shares(patterns, weights)
    u: dict[str, list[float]] = {}
    for name in FIELDS:
        observed = shares[name]
        if not observed:
            u[name] = list(base.u[name])
            continue
        values = [max(x, floor) for x in observed]
        total = sum(values)
        u[name] = [x / total for x in values]
    return u


def _non_match_posterior(
    patterns: Counter[Levels],
    m: dict[str, list[float]],
    u: dict[str, list[float]],
    prior: float,
) -> dict[Levels, float]:
    """P(non-match | pattern) among all pairs (prior: share of matches among all pairs)."""
    out: dict[Levels, float] = {}
    for pattern in patterns:
        pm, pu = prior, 1.0 - prior
        for index, level in enumerate(pattern):
            if level is not None:
                name = FIELDS[index]
                pm *= m[name][level]
                pu *= u[name][level]
        out[pattern] = pu / (pm + pu) if pm + pu > 0 else 1.0
    return out


def _em_session(
    profiles: Sequence[Profile],
    key_kinds: str,
    u: dict[str, list[float]],
    m: dict[str, list[float]],
    update: frozenset[str],
    rng: random.Random,
    max_pairs: int,
    iterations: int,
) -> tuple[float, int]:
    """EM over the pairs blocked on keys of ``key_kinds``; updates ``m`` for ``update`` in place.

    Returns (estimated share of matches among those pairs, number of pairs).
    """
    pairs = _blocked_pairs(profiles, key_kinds)
    if len(pairs) < _MIN_SESSION_PAIRS:
        return 0.0, len(pairs)
    ordered = sorted(pairs)
    if len(ordered) > max_pairs:
        ordered = rng.sample(ordered, max_pairs)
    patterns: Counter[Levels] = Counter(compare(profiles[i], profiles[j]) for i, j in ordered)
    current = {name: list(values) for name, values in m.items()}
    share = 0.3
    for _ in range(iterations):
        posterior: dict[Levels, float] = {}
        for pattern in patterns:
            pm, pu = share, 1.0 - share
            for index, level in enumerate(pattern):
                if level is not None:
                    name = FIELDS[index]
                    pm *= current[name][level]
                    pu *= u[name][level]
            posterior[pattern] = pm / (pm + pu) if pm + pu > 0 else 0.0
        total = sum(patterns.values())
        share = sum(c * posterior[p] for p, c in patterns.items()) / total
        new_m = _level_shares(patterns, posterior)
        for name in FIELDS:
            if new_m[name]:
                values = [max(x, _M_FLOOR_SESSION) for x in new_m[name]]
                s = sum(values)
                current[name] = [x / s for x in values]
    for name in update:
        m[name] = current[name]
    return share, len(pairs)


def _blocked_pairs(profiles: Sequence[Profile], key_kinds: str) -> set[tuple[int, int]]:
    """Index pairs of the profiles that share a blocking key of one of ``key_kinds`` (its first
    letter), blocks over 200 left out as the index leaves out its largest ones."""
    blocks: dict[str, list[int]] = {}
    for i, p in enumerate(profiles):
        for key in blocking_keys(p):
            if key[0] in key_kinds:
                blocks.setdefault(key, []).append(i)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) > 200:
            continue
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                pairs.add((members[x], members[y]))
    return pairs


def _level_shares(
    patterns: Counter[Levels], weights: dict[Levels, float]
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for index, name in enumerate(FIELDS):
        counts = [0.0] * LEVELS[name]
        for pattern, count in patterns.items():
            level = pattern[index]
            if level is not None:
                counts[level] += count * weights.get(pattern, 1.0)
        total = sum(counts)
        out[name] = [c / total for c in counts] if total > 0 else []
    return out


def estimate(
    profiles: Sequence[Profile],
    base: Params,
    *,
    seed: int = 0,
    random_pairs: int = 200_000,
    max_blocked_pairs: int = 400_000,
    iterations: int = 40,
) -> Params:
    """m, u, prior and term frequencies from unlabelled profiles by EM (D-linkage-1); u recounted
    on the random pairs weighted by their posterior odds of being non-matches, then m once more
    (D-linkage-5 (1))."""
    n = len(profiles)
    if n < 10:
        return base
    rng = random.Random(seed)  # noqa: S311 (sampling, not secrecy)
    # u from random pairs.
    random_patterns: Counter[Levels] = Counter()
    for _ in range(random_pairs):
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j:
            random_patterns[compare(profiles[i], profiles[j])] += 1
    floor = 0.5 / max(1, random_pairs)
    u = _u_from(random_patterns, {}, base, floor)
    m = {name: list(base.m[name]) for name in FIELDS}
    all_pairs = n * (n - 1) / 2
    prior = 0.0
    for round_ in range(_U_ROUNDS):
        if round_:
            # Random pairs are almost all non-matches, but not all: in a file with many
            # duplicates the few true pairs among them dominate the rare agreement levels (same
            # birth date, same identifier), so u of those levels came out as about the share of
            # matches among all pairs, and agreeing on them weighed far too little. u is
            # P(level | non-match): weigh each random pair by its posterior odds of being one.
            u = _u_from(
                random_patterns, _non_match_posterior(random_patterns, m, u, prior), base, floor
            )
        # m by EM, in two sessions (as Splink does): a field agrees by construction among pairs
        # that were blocked on it, so its m is learnt where it was not used for blocking. Name keys
        # exclude pairs that share just a birth date, a phone or an address: mostly households and
        # twins, which EM would otherwise learn as the match class.
        m = {name: list(base.m[name]) for name in FIELDS}
        share, pairs = _em_session(
            profiles, "nml", u, m, _NOT_NAMES, rng, max_blocked_pairs, iterations
        )
        _em_session(profiles, "ri", u, m, _NAMES, rng, max_blocked_pairs, iterations)
        matches = max(share * pairs, 1.0)
        prior = matches / all_pairs
    tf: dict[str, dict[str, float]] = {}
    name_values: dict[str, list[str]] = {
        "family": [p.family for p in profiles if p.family],
        "given": [p.given for p in profiles if p.given],
    }
    for tf_field, tf_values in name_values.items():
        counts = Counter(tf_values)
        total_values = max(len(tf_values), 1)
        tf[tf_field] = {v: c / total_values for v, c in counts.items() if c >= _TF_MIN_COUNT}
    return Params(
        m=m,
        u=u,
        prior_log2=math.log2(prior / (1 - prior)),
        thresholds=base.thresholds,
        tf=tf,
        twin_evidence=twin_evidence(profiles, m["given"]),
    )


def twin_evidence(profiles: Sequence[Profile], m_given: Sequence[float]) -> float:
    """D42: observed over expected twin-pattern pairs, label-free. Among pairs born on the same
    day (the birth-date blocking key) with the same surname and the same household (same full
    address or phone), no personal identifier agreeing and sex not different: those whose given
    names are completely different (observed) against those whose given names are the same times
    the odds of a given-name replacement among matches that EM learnt, ``m[0] / m[same]``
    (expected: what slips alone would give). Twins make the observed far exceed the expected
    (26 times on the project's Korean set); FEBRL's independently corrupted copies stay below
    it (0.03-0.1)."""
    different = same = 0
    for pair in _blocked_pairs(profiles, "d"):
        first, second = profiles[pair[0]], profiles[pair[1]]
        # Cheap equality tests first: at a million persons a birth date holds ~90
        # records, and only pairs of one surname and one phone or postal code can count.
        if first.family != second.family or not (
            (first.phone is not None and first.phone == second.phone)
            or (first.postal is not None and first.postal == second.postal)
            or first.postal is None
            or second.postal is None
        ):
            continue
        levels = compare(first, second)
        family, given, _latin, birth, sex, rrn, ids, phone, address = levels
        household = (address or 0) >= LEVELS["address"] - 1 or phone == 1
        if family != LEVELS["family"] - 1 or birth != 2 or not household or sex == 0:
            continue
        if given == 0 and rrn != 1 and not ids:
            different += 1
        elif given == LEVELS["given"] - 1:
            same += 1
    expected = same * m_given[0] / max(m_given[-1], 1e-6)
    return round(different / max(expected, 1.0), 3)
