"""Korean addresses and telephone numbers.

Districts (시군구) with their 시도, a share of the population (rounded from the 2023 resident
registration figures, the listed districts standing for their province), the first digits of
their 5-digit postal codes (basic district codes, 2015 onwards: 서울 01-09, 경기 10-18, 부산
46-49 ...) and the 시도's area code. Road and neighbourhood (동) names are drawn per district from
common name pools, so the same road always has the same postal code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

# 시도 -> (short form, informal form, telephone area code).
PROVINCES: Final[dict[str, tuple[str, str, str]]] = {
    "서울특별시": ("서울", "서울시", "02"), "부산광역시": ("부산", "부산시", "051"),
    "대구광역시": ("대구", "대구시", "053"), "인천광역시": ("인천", "인천시", "032"),
    "광주광역시": ("광주", "광주시", "062"), "대전광역시": ("대전", "대전시", "042"),
    "울산광역시": ("울산", "울산시", "052"), "세종특별자치시": ("세종", "세종시", "044"),
    "경기도": ("경기", "경기", "031"), "강원특별자치도": ("강원", "강원도", "033"),
    "충청북도": ("충북", "충북", "043"), "충청남도": ("충남", "충남", "041"),
    "전북특별자치도": ("전북", "전라북도", "063"), "전라남도": ("전남", "전남", "061"),
    "경상북도": ("경북", "경북", "054"), "경상남도": ("경남", "경남", "055"),
    "제주특별자치도": ("제주", "제주도", "064"),
}  # fmt: skip

# (시도, 시군구, population weight, first postal code of the district, codes in its range).
_DISTRICTS: Final = (
    ("서울특별시", "강남구", 5.3, 6000, 400), ("서울특별시", "송파구", 6.4, 5500, 400),
    ("서울특별시", "강서구", 5.6, 7500, 300), ("서울특별시", "노원구", 4.9, 1600, 300),
    ("서울특별시", "관악구", 4.8, 8700, 200), ("서울특별시", "은평구", 4.6, 3300, 300),
    ("서울특별시", "마포구", 3.6, 3900, 300), ("서울특별시", "종로구", 1.4, 3000, 200),
    ("서울특별시", "영등포구", 3.7, 7200, 300), ("서울특별시", "성북구", 4.2, 2700, 200),
    ("경기도", "수원시 영통구", 3.6, 16400, 300), ("경기도", "성남시 분당구", 4.7, 13400, 300),
    ("경기도", "고양시 일산동구", 2.9, 10300, 300), ("경기도", "용인시 수지구", 3.8, 16800, 300),
    ("경기도", "부천시", 7.8, 14400, 400), ("경기도", "안산시 단원구", 3.0, 15200, 300),
    ("경기도", "화성시", 9.3, 18200, 600), ("경기도", "남양주시", 7.3, 12000, 300),
    ("경기도", "평택시", 5.9, 17700, 400), ("경기도", "의정부시", 4.6, 11600, 200),
    ("인천광역시", "남동구", 5.0, 21500, 300), ("인천광역시", "부평구", 4.8, 21300, 200),
    ("인천광역시", "연수구", 3.9, 21900, 200), ("인천광역시", "서구", 6.0, 22600, 300),
    ("부산광역시", "해운대구", 3.9, 48000, 200), ("부산광역시", "부산진구", 3.6, 47100, 300),
    ("부산광역시", "사하구", 3.0, 49300, 300), ("부산광역시", "동래구", 2.6, 47700, 200),
    ("대구광역시", "수성구", 4.1, 42000, 300), ("대구광역시", "달서구", 5.2, 42600, 400),
    ("대구광역시", "북구", 4.1, 41400, 300), ("대전광역시", "유성구", 3.6, 34000, 300),
    ("대전광역시", "서구", 4.6, 35200, 300), ("광주광역시", "북구", 4.2, 61000, 300),
    ("광주광역시", "광산구", 3.9, 62200, 300), ("울산광역시", "남구", 3.1, 44600, 300),
    ("울산광역시", "중구", 2.1, 44400, 200), ("세종특별자치시", "세종시", 3.9, 30000, 200),
    ("강원특별자치도", "춘천시", 2.9, 24200, 300), ("강원특별자치도", "원주시", 3.6, 26300, 300),
    ("강원특별자치도", "강릉시", 2.1, 25400, 300), ("충청북도", "청주시 흥덕구", 4.3, 28400, 300),
    ("충청북도", "충주시", 2.1, 27300, 300), ("충청남도", "천안시 서북구", 4.0, 31000, 300),
    ("충청남도", "아산시", 3.4, 31400, 300), ("전북특별자치도", "전주시 완산구", 3.4, 54800, 300),
    ("전북특별자치도", "익산시", 2.7, 54500, 300), ("전라남도", "여수시", 2.7, 59600, 300),
    ("전라남도", "순천시", 2.8, 57900, 300), ("전라남도", "목포시", 2.1, 58600, 200),
    ("경상북도", "포항시 북구", 2.6, 37500, 300), ("경상북도", "구미시", 4.0, 39100, 400),
    ("경상북도", "경주시", 2.5, 38000, 300), ("경상남도", "창원시 성산구", 2.3, 51400, 300),
    ("경상남도", "김해시", 5.3, 50800, 400), ("경상남도", "진주시", 3.4, 52600, 300),
    ("제주특별자치도", "제주시", 4.9, 63000, 400), ("제주특별자치도", "서귀포시", 1.8, 63500, 200),
)  # fmt: skip

_ROADS: Final = (  # noqa: SIM905 (a paragraph of names reads better than a list)
    "중앙로 시청로 문화로 대학로 평화로 번영로 역전로 공원로 한빛로 새마을로 금강로 해안로 동문로 "
    "서문로 남부로 북부로 산업로 신촌로 강변로 도산대로 테헤란로 올림픽로 월드컵로 통일로 의사당대로 "
    "경인로 구월로 인주대로 광복로 중앙대로 달구벌대로 동대구로 계룡로 대덕대로 무등로 상무대로 "
    "삼산로 번영로 한누리대로 충장로 백제대로 우암로 봉명로 연수로 송도과학로 해운대로 수영로 "
    "낙동대로 진주대로 원이대로 가야로 노형로 연북로 중정로 하늘마을로 효자로 양지로 매봉로 솔샘로 "
    "은행나무길 장미길 목련길 느티나무로 소나무길 벚꽃로 무궁화로 개나리길 진달래길 청송로 "
    "덕영대로 권선로 수지로 포은대로 일산로 호수로 경수대로 정조로 금곡로 다산로 장승배기로"
).split()
_DONGS: Final = (  # noqa: SIM905
    "중앙동 신흥동 동산동 남산동 산곡동 송정동 월곡동 대흥동 신월동 교동 명륜동 화정동 삼산동 "
    "행신동 정자동 서현동 영통동 매탄동 연산동 반여동 역삼동 대치동 신림동 상계동 중계동 목동 "
    "방배동 구월동 만수동 송도동 좌동 우동 범어동 만촌동 둔산동 관평동 봉선동 수완동 삼산동 "
    "달동 노형동 연동 효자동 평화동 용암동 복대동 두정동 쌍용동 상동 중동 원미동 호계동 "
    "인계동 권선동 풍덕천동 죽전동 장기동 운정동 다산동 별내동"
).split()
_APARTMENTS: Final = ("래미안", "자이", "푸르지오", "힐스테이트", "아이파크", "e편한세상", "롯데캐슬",
                      "주공", "현대", "삼성", "한신", "우성")  # fmt: skip


@dataclass(frozen=True)
class District:
    province: str
    name: str
    postal_first: int
    postal_span: int
    roads: tuple[str, ...]
    dongs: tuple[str, ...]

    @property
    def area_code(self) -> str:
        return PROVINCES[self.province][2]


def _district(row: tuple[str, str, float, int, int]) -> District:
    province, name, _, first, span = row
    local = random.Random(f"district:{province}:{name}")  # str seeds are hashed with sha512
    return District(
        province, name, first, span,
        tuple(local.sample(_ROADS, 12)), tuple(local.sample(_DONGS, 8)),
    )  # fmt: skip


DISTRICTS: Final = tuple(_district(row) for row in _DISTRICTS)
_DISTRICT_WEIGHTS: Final = tuple(row[2] for row in _DISTRICTS)


@dataclass(frozen=True)
class Address:
    """One dwelling: its road-name address (도로명) and the old lot-number form (지번)."""

    district: District
    road: str
    building: int
    dong: str
    lot: str
    apartment: str | None  # e.g. "래미안 101동 1203호"
    postal_code: str

    def road_form(self, province: str | None, with_unit: bool = True) -> str:
        parts = [province, self.district.name, self.road, str(self.building)]
        if with_unit and self.apartment:
            parts.append(self.apartment)
        return " ".join(p for p in parts if p)

    def lot_form(self, province: str | None, with_unit: bool = True) -> str:
        parts = [province, self.district.name, self.dong, self.lot]
        if with_unit and self.apartment:
            parts.append(self.apartment)
        return " ".join(p for p in parts if p)


def postal_code(district: District, road: str, building: int) -> str:
    """Postal codes are consistent per district: one code per road section of ~50 buildings."""
    local = random.Random(f"postal:{district.name}:{road}:{building // 50}")
    return f"{district.postal_first + local.randrange(district.postal_span):05d}"


def draw_address(rng: random.Random, near: District | None = None) -> Address:
    """A dwelling anywhere in Korea by population, or (``near``) in the same district."""
    district = near or rng.choices(DISTRICTS, weights=_DISTRICT_WEIGHTS)[0]
    road = rng.choice(district.roads)
    building = rng.randint(1, 400)
    apartment = None
    if rng.random() < 0.6:  # about six in ten Koreans live in apartments (2020 census: 51 % of
        # dwellings, more of persons)
        apartment = f"{rng.choice(_APARTMENTS)} {rng.randint(1, 15)}{rng.randint(1, 9):02d}동 "
        apartment += f"{rng.randint(1, 25)}{rng.randint(1, 8):02d}호"
    lot = (
        f"{rng.randint(1, 1500)}-{rng.randint(1, 30)}"
        if rng.random() < 0.6
        else str(rng.randint(1, 1500))
    )
    return Address(
        district, road, building, rng.choice(district.dongs), lot, apartment,
        postal_code(district, road, building),
    )  # fmt: skip


# ------------------------------------------------------------------------------ telephones


def draw_mobile(rng: random.Random) -> str:
    """A mobile number, digits only: 010 + 8 digits (the first of the 8 is never 0 or 1)."""
    return f"010{rng.randint(2, 9)}{rng.randrange(10**7):07d}"


def draw_landline(rng: random.Random, district: District) -> str:
    """A landline in the district's area: 02 + 7-8 digits in Seoul, 0XX + 7-8 digits elsewhere."""
    exchange = rng.randint(200, 999) if rng.random() < 0.4 else rng.randint(2000, 9999)
    return f"{district.area_code}{exchange}{rng.randrange(10**4):04d}"


MOBILE_FORMATS: Final = ("dash", "plain", "intl_space", "intl_dash", "paren", "dot", "space",
                         "intl_noplus")  # fmt: skip


def format_phone(digits: str, style: str) -> str:
    """Write a phone number (digits, national form starting with 0) in one of the styles clerks
    and systems use: 010-1234-5678, 01012345678, +82 10 1234 5678, +82-10-1234-5678,
    (010)1234-5678, 010.1234.5678, 010 1234 5678, 82-10-1234-5678; landlines 02-123-4567."""
    area_len = 2 if digits.startswith("02") else 3
    area, rest = digits[:area_len], digits[area_len:]
    head, tail = rest[:-4], rest[-4:]
    if style == "plain":
        return digits
    if style == "intl_space":
        return f"+82 {area[1:]} {head} {tail}"
    if style == "intl_dash":
        return f"+82-{area[1:]}-{head}-{tail}"
    if style == "intl_noplus":
        return f"82-{area[1:]}-{head}-{tail}"
    if style == "paren":
        return f"({area}){head}-{tail}"
    if style == "dot":
        return f"{area}.{head}.{tail}"
    if style == "space":
        return f"{area} {head} {tail}"
    return f"{area}-{head}-{tail}"
