"""Korean names: surnames by census share, given names by birth cohort and sex, romanised spellings.

Figures are public facts, rounded: surname shares from the 2015 census (Statistics Korea,
성씨·본관 조사), popular given names by decade from the Supreme Court's family register statistics
and press summaries of them. The romanised spellings are the ones people put in passports and that
older (McCune-Reischauer) systems wrote; written here for this generator, not taken from code.
"""

from __future__ import annotations

import random
from typing import Final

from biostream.hangul import HANGUL_FIRST, HANGUL_LAST, romanize_syllable

# Surname -> share of the population in percent (2015 census; 김 21.5, 이 14.7, 박 8.4 ...).
SURNAME_SHARES: Final[dict[str, float]] = {
    "김": 21.5, "이": 14.7, "박": 8.4, "최": 4.7, "정": 4.3, "강": 2.4, "조": 2.1, "윤": 2.1,
    "장": 2.0, "임": 1.7, "한": 1.5, "오": 1.5, "서": 1.5, "신": 1.4, "권": 1.4, "황": 1.4,
    "안": 1.4, "송": 1.3, "전": 1.1, "홍": 1.1, "유": 1.1, "고": 0.9, "문": 0.9, "양": 0.8,
    "손": 0.9, "배": 0.8, "백": 0.7, "허": 0.6, "남": 0.5, "심": 0.5, "노": 0.4, "하": 0.4,
    "곽": 0.4, "성": 0.4, "차": 0.4, "주": 0.4, "우": 0.4, "구": 0.4, "류": 0.3, "나": 0.3,
    "민": 0.3, "진": 0.3, "지": 0.3, "엄": 0.3, "원": 0.3, "채": 0.2, "천": 0.2, "방": 0.2,
    "공": 0.2, "현": 0.2, "함": 0.2, "변": 0.2, "염": 0.1, "여": 0.1, "추": 0.1, "도": 0.1,
    "소": 0.1, "석": 0.1, "선": 0.1, "설": 0.1, "마": 0.1, "길": 0.1, "연": 0.1, "위": 0.1,
    "표": 0.1, "명": 0.1, "기": 0.1, "반": 0.1, "왕": 0.1, "금": 0.1, "옥": 0.1, "육": 0.1,
    "인": 0.1, "맹": 0.1, "제": 0.1, "모": 0.1,
}  # fmt: skip

# Initial-sound rule (두음법칙) spellings a clerk or the person may use instead.
SURNAME_INITIAL_SOUND: Final[dict[str, str]] = {
    "이": "리", "리": "이", "유": "류", "류": "유", "임": "림", "림": "임", "노": "로", "로": "노",
    "나": "라", "라": "나", "양": "량", "여": "려",
}  # fmt: skip

# Surname -> spellings seen in passports and foreign systems, most common first.
SURNAME_LATIN: Final[dict[str, tuple[str, ...]]] = {
    "김": ("Kim", "Gim", "Kym"), "이": ("Lee", "Yi", "Rhee", "I", "Rhie"),
    "박": ("Park", "Pak", "Bak", "Bahk"), "최": ("Choi", "Choe", "Chey"),
    "정": ("Jung", "Jeong", "Chung", "Cheong"), "강": ("Kang", "Gang"), "조": ("Cho", "Jo", "Joe"),
    "윤": ("Yoon", "Yun"), "장": ("Jang", "Chang"), "임": ("Lim", "Im", "Yim", "Rim"),
    "한": ("Han",), "오": ("Oh", "O"), "서": ("Seo", "Suh", "So"), "신": ("Shin", "Sin"),
    "권": ("Kwon", "Gwon"), "황": ("Hwang",), "안": ("Ahn", "An"), "송": ("Song",),
    "전": ("Jeon", "Jun", "Chun", "Chon"), "홍": ("Hong",), "유": ("Yoo", "Yu", "You"),
    "류": ("Ryu", "Yoo", "Rhyu", "Yu"), "고": ("Ko", "Go", "Koh"), "문": ("Moon", "Mun"),
    "양": ("Yang",), "손": ("Son", "Sohn"), "배": ("Bae", "Pae"), "백": ("Baek", "Paik", "Baik"),
    "허": ("Heo", "Huh", "Hur"), "남": ("Nam",), "심": ("Shim", "Sim"), "노": ("Noh", "Roh", "No"),
    "하": ("Ha",), "곽": ("Kwak", "Gwak"), "성": ("Sung", "Seong"), "차": ("Cha",),
    "주": ("Joo", "Ju", "Chu"), "우": ("Woo", "U"), "구": ("Koo", "Gu", "Ku"), "나": ("Na", "Ra"),
    "민": ("Min",), "진": ("Jin", "Chin"), "지": ("Ji", "Chi"), "엄": ("Eom", "Um", "Uhm"),
    "원": ("Won",), "채": ("Chae", "Chai"), "천": ("Cheon", "Chun"), "방": ("Bang",),
    "공": ("Kong", "Gong"), "현": ("Hyun", "Hyeon"), "함": ("Ham",), "변": ("Byun", "Byeon", "Pyun"),
    "염": ("Yeom", "Yum"), "여": ("Yeo", "Yuh"), "추": ("Choo", "Chu"), "도": ("Do", "Doh"),
    "석": ("Seok", "Suk"), "선": ("Sun", "Seon"), "설": ("Seol", "Sul"), "길": ("Gil", "Kil"),
    "연": ("Yeon", "Youn"), "위": ("Wi", "Wee"), "명": ("Myung", "Myeong"), "기": ("Ki", "Gi"),
    "반": ("Ban", "Pan"), "금": ("Geum", "Keum"), "육": ("Yook", "Yuk"), "제": ("Je", "Jeh"),
    "리": ("Lee", "Ri"), "림": ("Lim", "Rim"), "로": ("Roh", "Ro"),
}  # fmt: skip

# Popular given names by the decade of birth, most popular first (top ~20-30 of each decade).
_POPULAR: Final[dict[tuple[int, str], str]] = {
    (1930, "M"): "영수 영호 영식 정수 영철 성수 상철 광수 종수 정호 순철 병철 용수 영일 정식 명수 "
    "만수 춘식 재호 봉수",
    (1930, "F"): "영자 순자 정자 영숙 정숙 영희 명숙 경자 춘자 옥순 정희 순희 영순 말순 영옥 숙자 "
    "경숙 명자 정순 옥자",
    (1950, "M"): "영수 영호 영식 정수 영철 성수 상철 광수 종수 영진 재호 성호 병철 용수 정식 명수 "
    "성진 영일 정호 성철",
    (1950, "F"): "영자 순자 정자 영숙 정숙 영희 명숙 경자 미자 정희 순희 영순 영옥 숙자 경숙 명자 "
    "정순 화자 영애 경희",
    (1960, "M"): "영수 성호 영호 영철 정호 성수 상철 정수 영진 성진 정훈 진호 재호 성철 동수 경수 "
    "병철 상호 명호 종호",
    (1960, "F"): "미숙 영숙 경숙 정숙 영희 미경 경희 순영 정희 현숙 은숙 영미 미영 혜숙 선희 정미 "
    "명숙 경애 은희 인숙",
    (1970, "M"): "정훈 성호 성진 상훈 성훈 영진 정호 지훈 재훈 민수 상현 준호 동현 성민 영민 진호 "
    "재현 현석 상욱 종훈",
    (1970, "F"): "미영 은주 은정 미경 지영 현주 정은 은영 미정 현정 선영 혜진 수진 지현 정아 미선 "
    "은경 미진 유진 소연",
    (1980, "M"): "지훈 성민 현우 정훈 동현 준호 민수 성훈 준영 상현 재현 민호 현준 민석 승현 진우 "
    "지성 재훈 상민 우진",
    (1980, "F"): "지영 지현 수진 은지 혜진 미영 은정 지은 유진 민정 지혜 민지 현정 수정 소영 정은 "
    "지연 선영 혜원 보람",
    (1990, "M"): "동현 지훈 성민 현우 준호 민수 민재 현준 승현 준영 지환 민준 도현 성현 승민 지원 "
    "재원 주원 민성 상우",
    (1990, "F"): "지은 유진 민지 수진 지현 지혜 은지 수빈 예진 혜진 지원 민정 소연 지수 유정 수정 "
    "다은 현지 하은 가영",
    (2000, "M"): "민준 현우 동현 준혁 민재 도현 지훈 준영 현준 승민 지호 건우 우진 성민 주원 승현 "
    "시우 준서 예준 민성",
    (2000, "F"): "서연 민서 지민 서현 수빈 유진 지원 민지 예은 하은 윤서 지현 채원 예진 수민 서영 "
    "지은 다은 은서 지유",
    (2010, "M"): "민준 서준 예준 도윤 시우 주원 하준 지호 지후 준서 준우 현우 도현 지훈 건우 우진 "
    "선우 서진 민재 현준 연우 유준 정우 승우 승현 시윤 준혁 은우 지환 승민",
    (2010, "F"): "서연 서윤 지우 서현 민서 하은 하윤 윤서 지유 지민 채원 수아 지아 지윤 다은 은서 "
    "예은 수빈 소율 예린 하린 유나 시은 예서 아린",
    (2020, "M"): "이준 하준 도윤 서준 시우 은우 지호 예준 수호 유준 선우 로운 이안 주원 도하 연우 "
    "지안 우주 시윤 서우",
    (2020, "F"): "이서 하윤 서아 지안 아윤 하린 지우 서윤 아린 시아 유나 채아 수아 예린 서하 지아 "
    "윤슬 하은 다인 소율",
}

# Syllables of the long tail (names outside the top lists), by era and sex: (first, second).
_TAIL: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("old", "M"): ("영정성상종병재광용동경명진기춘만태원철인창봉덕문형대순희호일",
                   "수호철식석기일남진환국현근덕우규택만용성섭배연출복길"),
    ("old", "F"): ("영정순경명미옥춘숙말금은혜선화인복정귀분봉길점덕연향월양",
                   "자숙희순옥애분례녀영임이선란경미남화연실심향덕주"),
    ("mid", "M"): ("성정상재지민현동준승진영태우종선형용경건기병대철원규석호인",
                   "훈호민현수우진석준영욱철환원성규혁식기태일용범근택"),
    ("mid", "F"): ("지수은미혜민유소선현정보윤아희경다예하주인세효명나진슬가",
                   "영진정은주현희경아연미선원지혜숙빈리라화란옥선애"),
    ("new", "M"): ("민서도시하지준예주건우현승선유은연이태로재성윤한정원규동진",
                   "준윤우호원후서진혁재민현율안성빈한결훈원겸찬범수"),
    ("new", "F"): ("서지하민수채윤예아다소유시은가나세이연주혜수보라린예현희",
                   "연윤은아린우원민서유율빈진현하희나영경주인솔별담"),
}  # fmt: skip


def _decade(year: int) -> int:
    return 1930 if year < 1950 else min(2020, year // 10 * 10)


def _era(year: int) -> str:
    return "old" if year < 1970 else "mid" if year < 2000 else "new"


_POPULAR_LISTS: Final = {key: tuple(value.split()) for key, value in _POPULAR.items()}
# Zipf-like weights: the first name of a decade is given about three times as often as the 20th.
_ZIPF: Final = tuple(1.0 / (rank + 1) ** 0.35 for rank in range(40))
# Names were more concentrated in older cohorts: the share of the top list, relative to
# ``popular_name_share``.
_ERA_CONCENTRATION: Final = {"old": 1.2, "mid": 1.0, "new": 0.6}


_SURNAME_NAMES: Final = tuple(SURNAME_SHARES)
_SURNAME_CUM: Final = tuple(
    sum(list(SURNAME_SHARES.values())[: i + 1]) for i in range(len(SURNAME_SHARES))
)


def surname(rng: random.Random) -> str:
    """A surname by census share."""
    return rng.choices(_SURNAME_NAMES, cum_weights=_SURNAME_CUM)[0]


def given_name(rng: random.Random, year: int, sex: str, popular_share: float) -> str:
    """A given name for someone born in ``year``: one of the decade's popular names with
    probability ``popular_share`` (more in older cohorts, less in the newest), else a
    two-syllable name of the era's long tail (a few one-syllable names, as 2-3 % of Koreans have)."""
    key = (_decade(year), sex)
    if rng.random() < popular_share * _ERA_CONCENTRATION[_era(year)]:
        names = _POPULAR_LISTS[key]
        return rng.choices(names, weights=_ZIPF[: len(names)])[0]
    first, second = _TAIL[(_era(year), sex)]
    if rng.random() < 0.02:
        return rng.choice(second)
    while True:
        name = rng.choice(first) + rng.choice(second)
        if name[0] != name[1]:
            return name


def twin_given_name(rng: random.Random, sibling: str, year: int, sex: str, share: float) -> str:
    """A twin's given name: often sharing a syllable with the co-twin (민준/민재, 서연/서윤)."""
    for _ in range(20):
        if len(sibling) == 2 and rng.random() < share:
            first, second = _TAIL[(_era(year), sex)]
            name = (
                sibling[0] + rng.choice(second)
                if rng.random() < 0.7
                else rng.choice(first) + sibling[1]
            )
        else:
            name = given_name(rng, year, sex, 0.5)
        if name != sibling:
            return name
    return sibling[0] + ("진" if sibling[-1] != "진" else "우")


# ------------------------------------------------------------------------------ jamo-level edits

_FINAL_SLIPS: Final = {4: (21, 16), 21: (4, 16), 16: (21, 4), 8: (0,), 0: (4, 21), 1: (21,)}
_VOWEL_SLIPS: Final = {1: (5,), 5: (1,), 4: (8, 6), 8: (13, 4), 13: (8, 17), 6: (12, 4), 12: (6,),
                       11: (10, 15), 10: (11, 15), 15: (11, 10), 20: (18,), 18: (20,), 17: (13,)}  # fmt: skip
_INITIAL_SLIPS: Final = {12: (14, 13), 14: (12,), 0: (15, 1), 15: (0,), 3: (16, 4), 16: (3,),
                         7: (17, 8), 17: (7,), 9: (10,), 10: (9,)}  # fmt: skip


def _split(ch: str) -> tuple[int, int, int] | None:
    code = ord(ch)
    if not HANGUL_FIRST <= code <= HANGUL_LAST:
        return None
    offset = code - HANGUL_FIRST
    return offset // 588, (offset // 28) % 21, offset % 28


def _join(initial: int, vowel: int, final: int) -> str:
    return chr(HANGUL_FIRST + initial * 588 + vowel * 28 + final)


def jamo_slip(rng: random.Random, name: str) -> str:
    """The name with one jamo changed as a clerk mishears or mistypes it: a final ㄴ/ㅇ/ㅁ (서연/서영,
    민준/민중), a vowel ㅐ/ㅔ, ㅓ/ㅗ, ㅕ/ㅛ, or a plain/aspirated initial (ㅈ/ㅊ). Same name back if
    no syllable can change."""
    positions = [i for i, ch in enumerate(name) if _split(ch)]
    rng.shuffle(positions)
    kinds = ["final", "vowel", "initial"]
    for i in positions:
        parts = _split(name[i])
        assert parts is not None
        initial, vowel, final = parts
        rng.shuffle(kinds)
        for kind in kinds:
            if kind == "final" and final in _FINAL_SLIPS:
                new = _join(initial, vowel, rng.choice(_FINAL_SLIPS[final]))
            elif kind == "vowel" and vowel in _VOWEL_SLIPS:
                new = _join(initial, rng.choice(_VOWEL_SLIPS[vowel]), final)
            elif kind == "initial" and initial in _INITIAL_SLIPS:
                new = _join(rng.choice(_INITIAL_SLIPS[initial]), vowel, final)
            else:
                continue
            return name[:i] + new + name[i + 1 :]
    return name


# ------------------------------------------------------------------------------ romanisation

# McCune-Reischauer without diacritics or apostrophes, each syllable on its own (as names are
# written with a hyphen: Kil-tong): unvoiced initials, ŏ -> o, ŭ -> u.
_MR_INITIALS: Final = (
    "k", "kk", "n", "t", "tt", "r", "m", "p", "pp", "s", "ss", "", "ch", "tch", "ch", "k", "t", "p",
    "h",
)  # fmt: skip
_MR_VOWELS: Final = (
    "a", "ae", "ya", "yae", "o", "e", "yo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we",
    "wi", "yu", "u", "ui", "i",
)  # fmt: skip
_MR_FINALS: Final = (
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p",
    "t", "t", "ng", "t", "t", "k", "t", "p", "t",
)  # fmt: skip

# Passport-style spellings of frequent name syllables (준 Joon, 영 Young, 현 Hyun ...).
_COMMON_SYLLABLE: Final = {
    "준": "joon", "영": "young", "현": "hyun", "정": "jung", "성": "sung", "서": "seo", "은": "eun",
    "수": "soo", "우": "woo", "주": "joo", "희": "hee", "연": "yeon", "석": "suk", "혁": "hyuk",
    "민": "min", "진": "jin", "지": "ji", "윤": "yoon", "훈": "hoon", "경": "kyung", "철": "chul",
    "원": "won", "규": "kyu", "용": "yong", "숙": "sook", "순": "soon", "명": "myung", "선": "sun",
    "동": "dong", "상": "sang", "재": "jae", "태": "tae", "하": "ha", "시": "si", "승": "seung",
    "유": "yu", "예": "ye", "도": "do", "건": "gun", "근": "keun", "혜": "hye", "미": "mi", "린": "lin",
}  # fmt: skip


def romanize_rr(text: str) -> str:
    return "".join(romanize_syllable(ch) for ch in text)


def _romanize_mr_syllable(ch: str) -> str:
    parts = _split(ch)
    if parts is None:
        return ch
    initial, vowel, final = parts
    spelled = _MR_INITIALS[initial] + _MR_VOWELS[vowel] + _MR_FINALS[final]
    return "shi" + spelled[2:] if spelled.startswith("si") else spelled


def romanized_given_syllables(rng: random.Random, given: str) -> list[str]:
    """The given name's syllables, romanised in one system chosen for this record: Revised
    Romanization (biostream.hangul), McCune-Reischauer, or passport habit."""
    system = rng.choices(("rr", "mr", "common"), weights=(0.45, 0.2, 0.35))[0]
    out: list[str] = []
    for ch in given:
        if system == "mr":
            out.append(_romanize_mr_syllable(ch))
        elif system == "common" and ch in _COMMON_SYLLABLE:
            out.append(_COMMON_SYLLABLE[ch])
        else:
            out.append(romanize_syllable(ch))
    return out


def romanized_surname(rng: random.Random, family: str) -> str:
    spellings = SURNAME_LATIN.get(family)
    if not spellings:
        return romanize_rr(family).capitalize()
    weights = (
        [0.7] + [0.3 / (len(spellings) - 1)] * (len(spellings) - 1) if len(spellings) > 1 else [1.0]
    )
    return rng.choices(spellings, weights=weights)[0]


LATIN_LAYOUTS: Final = ("FAMILY, GIVEN GIVEN", "Given-given Family", "Family Givengiven",
                        "FAMILY GIVENGIVEN", "Family Given Given", "FAMILY Given-given")  # fmt: skip


def latin_name(rng: random.Random, family: str, given: str) -> tuple[str, str, str, str]:
    """(layout, family in Latin, given in Latin, whole name as written), e.g. "HONG, GIL DONG",
    "Gil-dong Hong", "Hong Gildong", "HONG GILDONG"."""
    fam = romanized_surname(rng, family)
    syll = romanized_given_syllables(rng, given) or [""]
    layout = rng.choice(LATIN_LAYOUTS)
    hyphen = "-".join(syll).capitalize()
    joined = "".join(syll).capitalize()
    spaced = " ".join(s.capitalize() for s in syll)
    if layout == "FAMILY, GIVEN GIVEN":
        g = " ".join(syll).upper()
        return layout, fam.upper(), g, f"{fam.upper()}, {g}"
    if layout == "Given-given Family":
        return layout, fam, hyphen, f"{hyphen} {fam}"
    if layout == "Family Givengiven":
        return layout, fam, joined, f"{fam} {joined}"
    if layout == "FAMILY GIVENGIVEN":
        return layout, fam.upper(), joined.upper(), f"{fam.upper()} {joined.upper()}"
    if layout == "Family Given Given":
        return layout, fam, spaced, f"{fam} {spaced}"
    return layout, fam.upper(), hyphen, f"{fam.upper()} {hyphen}"
