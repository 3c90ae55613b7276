"""Free-text scrubbing: identifiers in clinical notes replaced by typed placeholders.

Deliberately greedy: a false positive costs a few characters of a note, a false negative leaks an
identifier. Patterns follow /work/shared/notes/korea.md (RRN layout, mobile and landline prefixes,
road-name addresses, surnames and their romanisations).

This is the second net. Ingest already removed the patient's *own* name, numbers and address in
any script, which it knows while it splits the message (D24c); what reaches here is scrubbed by
shape (D24d): other people's names next to a label or an honorific, numbers and ids of known
shapes, addresses, e-mails. A Hangul name is recognised by shape, not by a dictionary: a surname
syllable and one to three more, next to 환자/님/씨/성명..., and not a word notes use there
(당뇨 환자, 담당 선생님).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

# Surnames (korea.md: the top of the census and the initial-sound spellings), first syllable.
_SURNAMES: Final = frozenset(
    "김이박최정강조윤장임한오서신권황안송전홍유류고문양손배백허남심노하곽성차주우구민나진지엄채"
    "원천방공현함변염여추도소석선설마길연위표명기반라왕금옥육인맹제모탁국어은편용예경봉사부태리림"
    "로량려"
)
_TWO_SYLLABLE_SURNAMES: Final = frozenset(
    {"남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방"}
)
# Words a note puts where a name could stand (before 환자/님/씨, after 환자/보호자) that start with
# a surname syllable. Not exhaustive: with the suffixes below they keep the common cases readable.
_NOT_NAMES: Final = frozenset(
    {
        # before 님/씨 and after 환자: titles, roles, family
        "선생", "원장", "부장", "과장", "사모", "어머", "어머니", "아버", "이모", "고모",
        "고객", "기사", "여사", "주치의", "소장", "조교", "연구원", "전공의", "조무사",
        "간호사", "간호", "교수", "보호자", "가족", "남편", "부인", "아내", "자녀", "손님",
        "장모", "장인", "형님", "누님", "선배", "후배", "사장", "회장", "이사", "대표",
        "상담사", "약사", "의사", "치료사", "환자분", "환자",
        # before 환자: kinds of patient
        "고혈압", "고지혈", "고위험", "고령자", "고도비만", "신부전", "신생아", "신장내과",
        "심부전", "정신과", "조현병", "전립선", "유방암", "백혈병", "방광암", "장폐색",
        "구강암", "소아과", "소화기", "신경과", "이식후", "이상지질", "임산부", "임신부",
        "전신성", "노인성", "우울증", "조울증", "허혈성", "천식성", "마비성", "진폐증",
        "지방간", "편두통", "경련성", "성인병", "염증성", "외래", "입원", "응급", "중환자",
        "기존", "신규", "해당", "동일", "모든", "다른", "일반", "주요", "장기", "단기",
        # after 환자: what a note says next
        "이송", "이상", "이전", "이후", "정보", "정상", "정도", "조치", "진료", "진단",
        "전원", "전신", "안정", "안내", "유지", "호전", "상태", "설명", "교육", "관찰",
        "확인", "보고", "연락", "도착", "내원", "퇴원", "사망", "수술", "검사", "처치",
        "본인", "동의", "거부", "요청", "주소", "방문", "투약", "복용", "상담", "면담",
    }
)  # fmt: skip
# Last syllables of medical words (症 病 癌 炎 壓 痛 科 術 菌 患 質): 우울증 / 당뇨병 / 위암 ...
_MEDICAL_ENDINGS: Final = frozenset("증병암염압통과술균환질")
_PARTICLES: Final = ("에게", "께서", "님", "씨", "은", "는", "이", "가", "을", "를", "의", "도", "와", "과")  # fmt: skip


def _name_shaped(word: str, lengths: tuple[int, ...]) -> bool:
    """A surname syllable (or a two-syllable surname) and given syllables, ``lengths`` long."""
    if len(word) not in lengths or word in _NOT_NAMES or word[-1] in _MEDICAL_ENDINGS:
        return False
    if word[:2] in _TWO_SYLLABLE_SURNAMES and len(word) >= 3:
        return True
    return word[0] in _SURNAMES and len(word) <= 3


def _strip_particle(word: str) -> tuple[str, str]:
    for particle in _PARTICLES:
        if len(word) > len(particle) + 2 and word.endswith(particle):
            return word[: -len(particle)], particle
    return word, ""


def _label_then_name(match: re.Match[str]) -> str:
    """``성명: 홍길동`` (a strong label: any 2-4 syllables) or ``환자 홍길동`` / ``보호자 김영희``
    (a weak label: the word after it must look like a name)."""
    label, gap, word = match.group("label"), match.group("gap"), match.group("word")
    name, rest = _strip_particle(word)
    strong = label not in ("환자", "보호자")
    if (strong and 2 <= len(name) <= 4) or (not strong and _name_shaped(name, (3, 4))):
        return f"{label}{gap}[NAME]{rest}"
    return match.group(0)


def _name_then_honorific(match: re.Match[str]) -> str:
    """``김철수 환자``, ``이민준 님``, ``김서연씨``: 2-4 syllables before 님/씨, 3-4 before 환자."""
    word, after = match.group("word"), match.group("after")
    lengths = (3, 4) if after.lstrip().startswith("환자") else (2, 3, 4)
    return f"[NAME]{after}" if _name_shaped(word, lengths) else match.group(0)


# Romanised surnames (korea.md and the census tail), in Title and upper case.
_LATIN_SURNAME_TEXT: Final = (
    "Kim Gim Lee Yi Rhee Ri Park Pak Bak Choi Choe Chey Jung Jeong Chung Kang Gang Cho Jo Yoon "
    "Yun Jang Chang Lim Im Rim Han Oh Seo Suh Shin Sin Kwon Gwon Hwang Ahn An Song Jeon Jun Chun "
    "Hong Yoo Yu Ryu Ko Go Moon Mun Yang Son Sohn Bae Baek Paik Baik Heo Huh Nam Shim Sim Noh Roh "
    "Ha Kwak Gwak Sung Seong Cha Joo Ju Woo Koo Gu Ku Min Na Ra Jin Ji Eom Um Chae Won Cheon Bang "
    "Kong Gong Hyun Hyeon Ham Byun Byeon Yeom Yeo Choo Chu Seok Suk Seon Sun Seol Sul Gil Kil Yeon "
    "Wi Wee Pyo Myung Myeong Ban Wang Keum Geum Yook Yuk Maeng Tak Kook Guk Eun Pyeon Pyun Bong Tae "
    "Namgung Namkoong Hwangbo Jegal Sunwoo Dokgo"
)
_LATIN_SURNAMES: Final = tuple(_LATIN_SURNAME_TEXT.split())
_SURNAME_SET: Final = frozenset(s.upper() for s in _LATIN_SURNAMES)
# One syllable of Revised or McCune-Reischauer romanisation: initial, vowel, final.
_SYLLABLE: Final = (
    r"(?:kk|tt|pp|ss|jj|ch|sh|[kgndtrlmbpsjhwy])?"
    r"(?:yeo|yae|wae|wa|wo|we|wi|ya|ye|yo|yu|ae|eo|eu|ui|oe|oo|ee|ou|a|e|i|o|u)"
    r"(?:ng|[kntlmp])?"
)
_GIVEN_SHAPE: Final = re.compile(rf"(?:{_SYLLABLE}){{1,3}}", re.IGNORECASE)
# Two or three capitalised or upper-case words (hyphens inside), a comma allowed after the first.
_LATIN_WORD: Final = r"(?:[A-Z][a-z]+(?:-[A-Za-z][a-z]+)?|[A-Z]{2,}(?:-[A-Z]+)?)"
_LATIN_PHRASE: Final = re.compile(
    rf"(?<![A-Za-z]){_LATIN_WORD}(?:,?[ \t]+{_LATIN_WORD}){{1,2}}(?![A-Za-z])"
)


def _korean_name(words: list[str]) -> bool:
    """A romanised surname first or last, the other words one Korean given name."""
    for surname, given in ((words[0], words[1:]), (words[-1], words[:-1])):
        letters = re.sub(r"[^A-Za-z]", "", "".join(given))
        if surname.upper() in _SURNAME_SET and _GIVEN_SHAPE.fullmatch(letters) is not None:
            return True
    return False


def _romanised_name(match: re.Match[str]) -> str:
    """``Kim Seoyeon``, ``HONG, GIL DONG``, ``Gil-dong Hong``, ``BYEONG-SIK CHOI``, ``Moon
    Jae-in``; in a longer run of capitalised words, its first or last two (``Dear Kim Seoyeon``)."""
    phrase = match.group(0)
    spans = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z-]+", phrase)]
    words = [phrase[s:e] for s, e in spans]
    if _korean_name(words):
        return "[NAME]"
    if len(words) == 3 and _korean_name(words[:2]):
        return "[NAME]" + phrase[spans[1][1] :]
    if len(words) == 3 and _korean_name(words[1:]):
        return phrase[: spans[1][0]] + "[NAME]"
    return phrase


def _id_shaped(match: re.Match[str]) -> str:
    """A token with letters and at least four digits joined by - or _, or letters then five
    digits or more: an id, not a marker name (COVID-19, CA19-9, HER2-positive)."""
    token = match.group(0)
    digits = sum(c.isdigit() for c in token)
    return "[ID]" if digits >= 4 and digits < len(token) - token.count("-") else token


Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]
_RULES: Final[tuple[Rule, ...]] = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    # Registration numbers: YYMMDD-SXXXXXX with any separator or none (13 digits).
    (re.compile(r"(?<!\d)\d{6}\s*[-‐–]?\s*[0-9]\d{6}(?!\d)"), "[RRN]"),
    # Phones: mobile 01X and +82, landlines 02 / 0XX, with or without separators and brackets.
    (
        re.compile(
            r"(?<![\d+])\(?(?:\+?82[\s-]?(?:\(0\))?|0)(?:1[016789]|2|[3-6][1-5]|70)[\s).-]{0,2}"
            r"\d{3,4}[\s.-]?\d{4}(?!\d)"
        ),
        "[PHONE]",
    ),
    # Hospital patient numbers: a label followed by a number.
    (
        re.compile(
            r"(?:등록\s*번호|환자\s*번호|병록\s*번호|차트\s*번호|(?<![A-Za-z])(?:MRN|Patient\s*(?:No|ID|#)"
            r"|ID)(?![A-Za-z]))\s*[:#.]?\s*[A-Za-z-]*\d[A-Za-z0-9_-]*",
            re.IGNORECASE,
        ),
        "[PATIENT_NO]",
    ),
    # Specimen and accession numbers after a label ("specimen SPC-2026-0001", "검체번호 S26-123").
    (
        re.compile(
            r"(?:검체\s*(?:번호)?|접수\s*번호|병리\s*번호|바코드|(?<![A-Za-z])(?:specimen|accession|"
            r"barcode)(?:\s*(?:no|id|number|#))?)\s*[:#.]?\s*"
            r"(?=[A-Za-z0-9_-]{4})[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*",
            re.IGNORECASE,
        ),
        "[SPECIMEN_ID]",
    ),
    # Unlabelled ids: letters and at least four digits joined by - or _ (SPC-2026-0001,
    # FASTQ-H001-0042), or letters then five digits or more (AC123456). Not COVID-19, CA19-9, HbA1c.
    (
        re.compile(
            r"(?<![A-Za-z0-9_.-])(?:[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+(?![A-Za-z0-9_-])"
            r"|[A-Za-z]{1,6}\d{5,}(?![A-Za-z0-9_.-]))"
        ),
        _id_shaped,
    ),
    # Hangul names: after a label, before an honorific or 환자.
    (
        re.compile(
            r"(?P<label>성명|이름|성함|환자명|환자\s*이름|보호자명|보호자|환자)(?P<gap>\s*[:：]?\s*)"
            r"(?P<word>[가-힣]{2,6})"
        ),
        _label_then_name,
    ),
    (
        re.compile(r"(?<![가-힣])(?P<word>[가-힣]{2,4})(?P<after>\s*(?:님|씨|환자분|환자))"),
        _name_then_honorific,
    ),
    # Latin-script names: a title or a label, or a romanised surname beside a Korean given name.
    (
        re.compile(
            r"(?<![A-Za-z])(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+[A-Z][A-Za-z'-]+(?:,?\s+[A-Z][A-Za-z'-]+){0,2}"
            r"|(?<![A-Za-z])(?:Name|Patient|Pt|Guardian)\s*[:：]\s*[A-Z][A-Za-z'-]*"
            r"(?:,?\s+[A-Z][A-Za-z'-]*){0,2}"
        ),
        "[NAME]",
    ),
    (_LATIN_PHRASE, _romanised_name),
    (re.compile(r"(?<![A-Za-z0-9.])\d{6,}(?![A-Za-z0-9.])"), "[NUMBER]"),
    # Road-name and lot addresses: "<...>로 12", "<...>길 3-4", "<...>동 123-45", "<...>번지".
    (
        re.compile(
            r"(?:[가-힣]+(?:특별시|광역시|특별자치시|특별자치도|도|시|군|구)\s*)*"
            r"[가-힣0-9]+(?:로|길|동|리)\s*\d+(?:-\d+)?(?:\s*번지)?(?:\s*,?\s*\d+\s*(?:층|호|동))*"
        ),
        "[ADDRESS]",
    ),
    (
        re.compile(r"[가-힣]+(?:특별시|광역시|특별자치시|특별자치도)\s+[가-힣]+(?:시|군|구)"),
        "[ADDRESS]",
    ),
)


def scrub(text: str) -> str:
    """D24d: identifiers of known shapes in a note become typed placeholders."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
