"""Free-text scrubbing: identifiers in clinical notes replaced by typed placeholders.

Deliberately greedy: a false positive costs a few characters of a note, a false negative leaks an
identifier. Patterns follow /work/shared/notes/korea.md (RRN layout, mobile and landline prefixes,
road-name addresses).
"""

from __future__ import annotations

import re
from typing import Final

_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("[EMAIL]", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    # Registration numbers: YYMMDD-SXXXXXX with any separator or none (13 digits).
    ("[RRN]", re.compile(r"(?<!\d)\d{6}\s*[-‐–]?\s*[0-9]\d{6}(?!\d)")),
    # Phones: mobile 01X and +82, landlines 02 / 0XX, with or without separators.
    (
        "[PHONE]",
        re.compile(
            r"(?<![\d+])(?:\+?82[\s-]?|0)(?:1[016789]|2|[3-6][1-5]|70)[\s).-]?\d{3,4}[\s.-]?\d{4}(?!\d)"
        ),
    ),
    # Hospital patient numbers: a label followed by a number, and any long bare digit run.
    (
        "[PATIENT_NO]",
        re.compile(
            r"(?:등록\s*번호|환자\s*번호|병록\s*번호|차트\s*번호|MRN|Patient\s*(?:No|ID|#)|ID)\s*[:#.]?\s*[A-Za-z-]*\d[\w-]*",
            re.IGNORECASE,
        ),
    ),
    # Names next to a label or an honorific: "성명: 홍길동", "환자 김서연", "이민준 님".
    (
        "[NAME]",
        re.compile(r"(?:(?<=성명)|(?<=이름)|(?<=환자)|(?<=보호자))\s*[:：]?\s*[가-힣]{2,4}"),
    ),
    ("[NAME]", re.compile(r"[가-힣]{2,4}(?=\s*(?:님|씨|환자분))")),
    ("[NUMBER]", re.compile(r"(?<![\w.])\d{6,}(?![\w.])")),
    # Road-name and lot addresses: "<...>로 12", "<...>길 3-4", "<...>동 123-45", "<...>번지".
    (
        "[ADDRESS]",
        re.compile(
            r"(?:[가-힣]+(?:특별시|광역시|특별자치시|특별자치도|도|시|군|구)\s*)*"
            r"[가-힣0-9]+(?:로|길|동|리)\s*\d+(?:-\d+)?(?:\s*번지)?(?:\s*,?\s*\d+\s*(?:층|호|동))*"
        ),
    ),
    (
        "[ADDRESS]",
        re.compile(r"[가-힣]+(?:특별시|광역시|특별자치시|특별자치도)\s+[가-힣]+(?:시|군|구)"),
    ),
)


def scrub(text: str) -> str:
    for placeholder, pattern in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text
