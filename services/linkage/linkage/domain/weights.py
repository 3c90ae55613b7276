"""What an agreement level weighs: Fellegi-Sunter m and u probabilities, term frequencies and
the thresholds (D-linkage-1), and the cheap upper bound that skips hopeless candidates
(D-linkage-6). The rules that override the sum are in ``rules``.

The match weight is the prior log-odds plus ``log2(m/u)`` over the fields both records have.
Exact name agreement is term-frequency adjusted: agreeing on 김 (21.5% of Koreans) is worth far
less than agreeing on a rare surname.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from linkage.domain.comparison import FIELDS, LEVELS, Levels, birth_level, cross_script
from linkage.domain.profile import Profile, same_rrn


@dataclass(frozen=True)
class Thresholds:
    """Match weight (log2 posterior odds) at or above which a candidate is a match / a review."""

    match: float = 6.0
    review: float = 0.0


@dataclass
class Params:
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    prior_log2: float  # log2 odds that two random records are the same person
    thresholds: Thresholds = field(default_factory=Thresholds)
    tf: dict[str, dict[str, float]] = field(default_factory=dict)  # field -> value -> share
    # D42: how many more twin-pattern pairs the data hold than given-name slips explain (see
    # ``training.twin_evidence``); None: not estimated, twins are assumed present.
    twin_evidence: float | None = None

    def __post_init__(self) -> None:
        self.weights: dict[str, list[float]] = {
            f: [
                math.log2(max(m, 1e-6) / max(u, 1e-9))
                for m, u in zip(self.m[f], self.u[f], strict=True)
            ]
            for f in FIELDS
        }
        # For upper_bound: the best weight of each field, and the best below its top level.
        self._best = {f: max(w) for f, w in self.weights.items()}
        self._best_below_top = {f: max(w[:-1]) for f, w in self.weights.items()}

    def to_json(self) -> str:
        return json.dumps(
            {
                "m": self.m, "u": self.u, "prior_log2": self.prior_log2,
                "thresholds": {"match": self.thresholds.match, "review": self.thresholds.review},
                "tf": self.tf, "twin_evidence": self.twin_evidence,
            },
            ensure_ascii=False, indent=1, sort_keys=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str, base: Params | None = None) -> Params:
        """Read parameters; anything the file leaves out comes from ``base`` (the defaults)."""
        raw = json.loads(text)
        base = base or default_params()
        m = {**base.m, **{k: [float(x) for x in v] for k, v in raw.get("m", {}).items()}}
        u = {**base.u, **{k: [float(x) for x in v] for k, v in raw.get("u", {}).items()}}
        for name in FIELDS:
            if len(m[name]) != LEVELS[name] or len(u[name]) != LEVELS[name]:
                raise ValueError(f"{name}: {LEVELS[name]} levels expected")
        th = raw.get("thresholds", {})
        return cls(
            m=m,
            u=u,
            prior_log2=float(raw.get("prior_log2", base.prior_log2)),
            thresholds=Thresholds(
                float(th.get("match", base.thresholds.match)),
                float(th.get("review", base.thresholds.review)),
            ),
            tf={
                k: {str(a): float(b) for a, b in v.items()}
                for k, v in raw.get("tf", base.tf).items()
            },
            twin_evidence=_optional_float(raw.get("twin_evidence", base.twin_evidence)),
        )

    def score(self, a: Profile, b: Profile, levels: Levels) -> float:
        """Prior log-odds plus the weight of every known level, exact names by term frequency
        (D-linkage-1)."""
        total = self.prior_log2
        for index, level in enumerate(levels):
            if level is None:
                continue
            name = FIELDS[index]
            if level == LEVELS[name] - 1 and name in ("family", "given"):
                value = a.family if name == "family" else a.given
                share = self.tf.get(name, {}).get(value or "")
                if share is not None:
                    total += math.log2(max(self.m[name][level], 1e-6) / max(share, 1e-6))
                    continue
            total += self.weights[name][level]
        return total

    def _top_weight(self, name: str, value: str) -> float:
        share = self.tf.get(name, {}).get(value)
        if share is None:
            return self.weights[name][-1]
        return math.log2(max(self.m[name][-1], 1e-6) / max(share, 1e-6))

    def upper_bound(self, a: Profile, b: Profile) -> float:
        """D-linkage-6: a weight ``apply_rules(score(compare(a, b)))`` cannot exceed, from cheap equality tests only.

        Exact fields (birth date, sex, registration number, phone) count as they are; a name or
        address whose top level is ruled out by a plain inequality counts with the best weight
        below the top, everything else with its best weight. Candidates whose bound is below the
        review threshold are left out without the string distances (same outcome, less work).
        """
        total = self.prior_log2
        weights = self.weights
        if a.birth is not None and b.birth is not None:
            total += weights["birth"][birth_level(a.birth, b.birth)]
        if a.sex is not None and b.sex is not None:
            total += weights["sex"][a.sex == b.sex]
        if a.rrn is not None and b.rrn is not None:
            agree = same_rrn(a.rrn, b.rrn)
            if agree is not None:
                total += weights["rrn"][agree]
        if a.phone is not None and b.phone is not None:
            total += weights["phone"][a.phone == b.phone]
        if a.ids and b.ids:
            total += self._best["ids"]
        if (a.latin and b.latin) or cross_script(a, b):  # not compared when both names agree
            total += max(self._best["latin"], 0.0)
        if a.family is not None and b.family is not None:
            # Top level only when equal in place or crosswise (names in each other's field).
            if a.family == b.family or a.family == b.given or a.given == b.family:
                total += max(self._best["family"], self._top_weight("family", a.family))
            else:
                total += self._best_below_top["family"]
        if a.given is not None and b.given is not None:
            if a.given == b.given:  # crosswise the given name is one level lower
                total += max(self._best["given"], self._top_weight("given", a.given))
            else:
                total += self._best_below_top["given"]
        if a.postal is not None and b.postal is not None:
            total += (
                self._best["address"] if a.postal == b.postal else self._best_below_top["address"]
            )
        elif a.address is not None and b.address is not None:
            total += self._best["address"]
        return total


def _optional_float(value: object) -> float | None:
    return None if value is None else float(str(value))


# Korean surname shares (2015 census, top ten; korea.md) as term frequencies before any training.
KOREAN_SURNAME_SHARES: Final[Mapping[str, float]] = {
    "김": 0.215, "이": 0.147, "박": 0.084, "최": 0.047, "정": 0.043,
    "강": 0.024, "조": 0.021, "윤": 0.021, "장": 0.020, "임": 0.017,
}  # fmt: skip


def default_params() -> Params:
    """Hand-set starting values for an index of about a million persons.

    EM (training.py) replaces them from unlabelled data; a parameter file overrides them.
    """
    return Params(
        m={
            "family": [0.03, 0.05, 0.92],
            "given": [0.02, 0.03, 0.08, 0.87],
            "latin": [0.10, 0.30, 0.60],
            "birth": [0.02, 0.03, 0.95],
            "sex": [0.01, 0.99],
            "rrn": [0.03, 0.97],
            "ids": [0.20, 0.10, 0.70],
            "phone": [0.30, 0.70],
            "address": [0.25, 0.10, 0.25, 0.40],
        },
        u={
            "family": [0.88, 0.04, 0.08],
            "given": [0.97, 0.02, 0.008, 0.002],
            "latin": [0.97, 0.025, 0.005],
            "birth": [0.9975, 0.002, 0.0005],
            "sex": [0.5, 0.5],
            "rrn": [0.999999, 0.000001],
            "ids": [0.999, 0.0009, 0.0001],
            "phone": [0.999999, 0.000001],
            "address": [0.90, 0.08, 0.01999, 0.00001],
        },
        prior_log2=-20.0,
        thresholds=Thresholds(),
        tf={"family": dict(KOREAN_SURNAME_SHARES)},
    )
