"""Evidence no sum of agreements may override: where Fellegi-Sunter's conditional independence
fails (twins share surname, birth date, address and the household phone), a rule caps the weight.

Each rule answers "at most how much may this pair weigh?" and only ever lowers a score, so the
candidate bound of D-linkage-6 holds after the rules too. :func:`apply_rules` runs them in order;
the first rule that decides wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rapidfuzz.distance import OSA

from linkage.domain import names
from linkage.domain.comparison import LEVELS, Levels, hangul_named, romanised_only
from linkage.domain.profile import Profile, one_slip_apart, same_rrn
from linkage.domain.weights import Params

# Two close given names both at least this frequent relative to each other are two names (twins),
# not one name and its slip (two_names_rule).
DISTINCT_NAME_RATIO: Final = 0.1
# Twin-pattern pairs at least this many times what given-name slips explain: the data hold twins
# (twins_expected).
TWIN_EVIDENCE_MIN: Final = 0.5


def apply_rules(params: Params, a: Profile, b: Profile, levels: Levels, score: float) -> float:
    """The pair's weight after every rule (D-linkage-1, D-linkage-7), in this order:

    1. :func:`different_registration_numbers_rule`, :func:`different_newborns_rule`, then
       :func:`household_member_rule`, :func:`one_of_twins_rule` and
       :func:`romanised_evidence_too_weak`;
    2. the same given name (or an unknown one) is not the twin pattern: the score stands;
    3. :func:`different_sex_rule`;
    4. :func:`personal_identifier_agrees` or :func:`names_swapped_between_fields`, or no twins
       in the data (:func:`twins_expected`): the score stands;
    5. :func:`twin_rule`.
    """
    family, given, _latin, _birth, sex, _rrn, _ids, _phone, _address = levels
    capped = different_registration_numbers_rule(params, a, b, levels, score)
    if capped is not None:
        return capped
    if different_newborns_rule(a, b):
        return min(score, params.thresholds.review - 1.0)
    if (
        household_member_rule(levels)
        or one_of_twins_rule(a, b, levels)
        or romanised_evidence_too_weak(levels)
    ):
        return min(score, params.thresholds.match - 0.5)
    if given is None or given == LEVELS["given"] - 1:
        return score
    if sex == 0:
        return different_sex_rule(params, score)
    if (
        personal_identifier_agrees(levels)
        or names_swapped_between_fields(a, b)
        or not twins_expected(params)
    ):
        return score
    return twin_rule(params, a, b, family, given, score)


def different_registration_numbers_rule(
    params: Params, a: Profile, b: Profile, levels: Levels, score: float
) -> float | None:
    """D-linkage-1: different *strong* registration numbers (date, sex and check digit consistent
    on both sides) are different people: below review whatever else agrees. ``None``: the rule
    does not apply."""
    rrn = levels[5]
    if rrn == 0 and a.rrn_strong and b.rrn_strong:
        return min(score, params.thresholds.review - 1.0)
    return None


def different_newborns_rule(a: Profile, b: Profile) -> bool:
    """D43: two newborn aliases with different twin markers (아기1 / 아기2, A / B) are the two
    babies of one birth: different people, below review."""
    return bool(a.newborn and b.newborn and a.newborn != b.newborn)


def one_of_twins_rule(a: Profile, b: Profile, levels: Levels) -> bool:
    """D43: a newborn alias with a twin marker is one of twins, and nothing but an identifier
    says which one a named child is: against a record that is not a newborn alias it is a
    review at most, unless a personal identifier agrees (the hospital kept its patient
    number)."""
    marked = bool(a.newborn and b.newborn is None) or bool(b.newborn and a.newborn is None)
    return marked and not personal_identifier_agrees(levels)


def romanised_evidence_too_weak(levels: Levels) -> bool:
    """D44: where the romanised name is the only name both records carry (a romanised-only
    record against a Hangul one, or two romanised-only records), it says little: one
    romanised form stands for several Hangul names (예현 and 예윤 both fold to one form). Such a
    pair needs the same romanised name (folded) *and* the same birth date, or a personal
    identifier; otherwise it is review at most. Without this a romanised-only record joined a
    twin on birth date, phone and address alone, or a sibling without any birth date."""
    family, given, latin, birth = levels[0], levels[1], levels[2], levels[3]
    return (
        family is None
        and given is None
        and latin is not None
        and (latin != LEVELS["latin"] - 1 or birth != 2)
        # The romanised name itself is the evidence in question: only a registration number
        # or an identifier of a shared system exempts.
        and not (levels[5] == 1 or levels[6])
    )


def household_member_rule(levels: Levels) -> bool:
    """D43: a pair that agrees on the household (phone, address, surname) but not on the birth
    date, not even by one slip, and not on the given name (another one, or none on a side: a
    newborn alias names its mother) is another member of the household (a parent, a child, a
    sibling), unless a personal identifier agrees: review at most, however much the household
    fields weigh."""
    given, birth = levels[1], levels[3]
    return birth == 0 and given != LEVELS["given"] - 1 and not personal_identifier_agrees(levels)


def different_sex_rule(params: Params, score: float) -> float:
    """D-linkage-7: sex known on both sides and different, with given names that are not the same,
    is never a match, at most a review (boy-girl twins 민지/민재 share everything else; an entry
    error in both fields at once is for a reviewer)."""
    return min(score, params.thresholds.match - 0.5)


def personal_identifier_agrees(levels: Levels) -> bool:
    """D-linkage-7: the exemptions from the twin rule. The registration number, an identifier in a
    shared system (the same value, or one character off: a slip in a personal number, FEBRL's
    commonest error) or the Latin name (another writing of the given name, so the Hangul
    difference is a slip). A phone or an address does not count: twins share the household's."""
    _family, _given, latin, _birth, _sex, rrn, ids, _phone, _address = levels
    return rrn == 1 or bool(ids) or latin == 2


def names_swapped_between_fields(a: Profile, b: Profile) -> bool:
    """D-linkage-5 (3), D-linkage-7: names entered in each other's field, one of them exactly the
    same crosswise, are not a different given name."""
    return a.given == b.family or a.family == b.given


def twins_expected(params: Params) -> bool:
    """D42: whether the twin rule is needed: the data hold twins when pairs with the twin pattern
    (same surname, birth date and household, given names different, no identifier agreeing)
    outnumber what the given-name slips learnt by EM explain (``params.twin_evidence``, see
    ``training.twin_evidence``) by ``TWIN_EVIDENCE_MIN``. Any population with families does
    (Korea: about 3 % of births are twins); a file of independently corrupted copies (FEBRL)
    does not, and there the pattern is a replaced given name. Untrained: assumed present."""
    evidence = params.twin_evidence
    return evidence is None or evidence >= TWIN_EVIDENCE_MIN


def twin_rule(
    params: Params, a: Profile, b: Profile, family: int | None, given: int, score: float
) -> float:
    """D-linkage-1, D-linkage-7: a given name that is not the same is the twin and sibling
    pattern, so surname, birth date, address and phone must not add up to a match. A completely
    different given name, or a close one (one jamo or letter off, 병식/병석) with the surname
    agreeing when both are established names (:func:`two_names_rule`), goes to review at most.
    D43: so does a merely similar one (more than one edit apart, katherine/kathryn): a slip is
    one edit."""
    if given < LEVELS["given"] - 2 or (family and two_names_rule(params, a.given, b.given)):
        return min(score, params.thresholds.match - 0.5)
    return score


def two_names_rule(params: Params, a: str | None, b: str | None) -> bool:
    """D-linkage-7: whether two close given names are two people's names rather than one name and
    a slip.

    Label-free, from the given-name frequencies learnt on the data (``params.tf``): a slip of the
    keyboard is rare (seen fewer than a few times, or far rarer than the name it comes from),
    while twins are given two established names (병식/병석, Aidan/Aiden). Without any given-name
    frequencies (untrained defaults) every close pair is taken as two names.
    """
    shares = params.tf.get("given")
    if not shares:
        return True
    share_a, share_b = shares.get(a or ""), shares.get(b or "")
    if share_a is None or share_b is None:
        return False
    return min(share_a, share_b) >= DISTINCT_NAME_RATIO * max(share_a, share_b)


def given_names_say_different_people(
    params: Params, a: Sequence[Profile], b: Sequence[Profile]
) -> bool:
    """D43: the records of two persons (or a record and a person) carry Hangul given names of
    which no pair is the same or a slip of each other (one jamo, not two established names:
    ``two_names_rule``): two members of a family, where the data hold families
    (``twins_expected``). A record without a given name (a newborn alias, a romanised-only
    record) is no evidence either way; it is what chains twins together when nothing checks."""
    if not twins_expected(params):
        return False
    names_a = {p.given for p in a if p.given and names.starts_hangul(p.given)}
    names_b = {p.given for p in b if p.given and names.starts_hangul(p.given)}
    if not names_a or not names_b:
        return False
    for x in names_a:
        for y in names_b:
            if x == y:
                return False
            close = OSA.distance(names.jamo(x), names.jamo(y), score_cutoff=1) <= 1
            if close and not two_names_rule(params, x, y):
                return False
    return True


def persons_may_merge(
    a: Sequence[Profile], b: Sequence[Profile], params: Params | None = None
) -> bool:
    """D39: two established persons (the records of each) are merged automatically only when
    nothing they hold says they are different people: strong registration numbers that differ
    (under a key version both carry, D33), birth dates of which no pair is the same or one
    typing slip apart (``one_slip_apart``), or a sex each states and no sex in common. One new
    record that matches both (a bridging record) cannot override that, however high it scores:
    transitively, one ambiguous record would glue a family together. A steward may still join
    them. D43: with ``params``, also given names that say different people
    (``given_names_say_different_people``)."""
    if params is not None and given_names_say_different_people(params, a, b):
        return False
    strong_a = [p.rrn for p in a if p.rrn is not None and p.rrn_strong]
    strong_b = [p.rrn for p in b if p.rrn is not None and p.rrn_strong]
    if strong_a and strong_b and all(same_rrn(x, y) is False for x in strong_a for y in strong_b):
        return False
    births_a = {p.birth for p in a if p.birth}
    births_b = {p.birth for p in b if p.birth}
    if births_a and births_b and not any(one_slip_apart(x, y) for x in births_a for y in births_b):
        return False
    sexes_a = {p.sex for p in a if p.sex}
    sexes_b = {p.sex for p in b if p.sex}
    return not (sexes_a and sexes_b and not sexes_a & sexes_b)


def may_bridge(profile: Profile, other: Sequence[Profile]) -> bool:
    """D44: whether a new record may merge another person it matches (the records ``other``)
    into the one it joins. A romanised-only record may not bridge a person named in Hangul:
    one romanised form is shared by several Hangul names (Jieun: 지은 and 지운 fold alike), so
    it matches relatives and would glue them together."""
    return not (romanised_only(profile) and any(hangul_named(p) for p in other))


def record_may_join(
    params: Params, profile: Profile, person: Sequence[Profile], best: Levels
) -> bool:
    """D43: a new record joins a matched person only when nothing the person's records hold says
    the record is someone else (``persons_may_merge``: birth date, sex, strong registration
    number; and given name, unless a personal identifier agrees with the person's best-scoring
    record ``best``). The best-scoring record may say little (a newborn alias, a record without
    a birth date): compared with it alone, a baby joins its mother and twins chain together.
    Only where the data hold families (``twins_expected``): in a file of independent copies a
    birth date is simply mistyped more often than once."""
    if not twins_expected(params):
        return True
    # An identifier already says which member of the family: the given names are not checked
    # then; the hard conflicts (registration number, sex, birth date) still are.
    named = personal_identifier_agrees(best)
    return persons_may_merge([profile], person, None if named else params)
