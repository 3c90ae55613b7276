"""The 시군구 code of an address (D24a): spellings, abbreviations, old names, ambiguity."""

from __future__ import annotations

import re

import pytest
from linkage.domain.district import district_of
from linkage.domain.sigungu import CURRENT, MERGED_PROVINCE_NAMES, PROVINCE_NAMES, RENAMED


@pytest.mark.parametrize(
    ("address", "province", "code"),
    [
        # 서울: official, short and 시 forms, spacing variants, glued, country and postal prefixes.
        ("서울특별시 종로구 세종대로 209", None, "11110"),
        ("서울 종로구 세종대로 209", "11", "11110"),
        ("서울시 종로구 사직로8길 4", None, "11110"),
        ("서울특별시종로구세종대로209", None, "11110"),
        ("서울 특별시  종로구   세종대로 209", None, "11110"),
        ("대한민국 서울특별시 강남구 테헤란로 152, 101동 1203호", None, "11680"),
        ("[06236] 서울 강남구 테헤란로 152", None, "11680"),
        ("(06236) 서울시 강남구 테헤란로 152", None, "11680"),
        ("서울특별시 동대문구 천호대로 145", None, "11230"),  # not 동구
        ("서울특별시 중구 세종대로 110", None, "11140"),
        ("종로구 세종대로 209", None, "11110"),  # no 시도 at all
        # 경기: city + 구 gives the 구; a city alone gives the city's own code.
        ("경기도 수원시 영통구 광교로 152", "41", "41117"),
        ("경기 수원시 영통구 광교로 152", None, "41117"),
        ("경기 수원 영통구 광교로 152", None, "41117"),
        ("수원시영통구 광교로 152", None, "41117"),
        ("경기도 수원시 광교로 152", None, "41110"),
        ("경기도 성남시 분당구 불정로 6", None, "41135"),
        ("경기도 고양시 일산동구 중앙로 1036", None, "41285"),
        ("경기도 가평군 가평읍 석봉로 181", None, "41820"),
        ("경기 가평 가평읍 석봉로 181", None, "41820"),
        ("경기도 광주시 행정타운로 50", None, "41610"),  # 광주시 of 경기도, not 광주광역시
        ("경기도 부천시 소사구 경인로 1", None, "41194"),  # 구 restored 2024-01-01
        # 강원 and 전북 under their old and new names, with their old codes as the record's hint.
        ("강원도 춘천시 중앙로 1", "42", "51110"),
        ("강원특별자치도 춘천시 중앙로 1", "51", "51110"),
        ("강원 강릉시 강릉대로 33", None, "51150"),
        ("전북 전주시 완산구 효자로 225", "45", "52111"),
        ("전라북도 전주시 덕진구 백제대로 1", None, "52113"),
        ("전북특별자치도 군산시 시청로 17", "52", "52130"),
        # Other 시도 in short and long forms.
        ("부산광역시 해운대구 센텀중앙로 79", None, "26350"),
        ("부산 부산진구 중앙대로 1", None, "26230"),
        ("대구 수성구 달구벌대로 2450", None, "27260"),
        ("인천광역시 연수구 센트럴로 1", None, "28185"),
        ("광주광역시 북구 용봉로 77", None, "29170"),
        ("광주 북구 용봉로 77", None, "29170"),
        ("대전 유성구 대학로 99", None, "30200"),
        ("울산광역시 울주군 언양읍", None, "31710"),
        ("세종특별자치시 한누리대로 2130", "36", "36110"),
        ("세종시 도움6로 11", None, "36110"),
        ("충북 청주시 흥덕구 2순환로 1", None, "43113"),
        ("충청남도 천안시 동남구 병천면", None, "44131"),
        ("전남 여수시 시청로 1", None, "46130"),
        ("경상북도 포항시 남구 시청로 1", None, "47111"),
        ("경남 창원시 마산합포구 3·15대로", None, "48125"),
        ("제주특별자치도 제주시 문연로 6", "50", "50110"),
        ("제주 서귀포시 중정로 1", None, "50130"),
        # Same 구 name in several cities: the 시도 named, or the record's province, decides.
        ("부산 중구 중앙대로 120", None, "26110"),
        ("중구 세종대로 110", "11", "11140"),
        ("남구 중앙로 1", "31", "31140"),
        ("고성군 거진읍", "51", "51820"),
        ("경남 고성군 고성읍", None, "48820"),
        # Old names in old feeds map to today's codes.
        ("인천 남구 주안로 1", None, "28177"),  # 미추홀구 since 2018
        ("경북 군위군 군위읍", None, "27720"),  # 대구광역시 since 2023-07-01
        ("경상북도 군위군 군위읍", "47", "27720"),
        ("경기도 여주군 여주읍", None, "41670"),
        ("충남 당진군 당진읍", None, "44270"),
        # 인천 중구 (split 2026-07-01): the 동 decides.
        ("인천 중구 운서동 2850", None, "28155"),
        ("인천광역시 중구 신포동 1", None, "28125"),
        ("전남광주통합특별시 북구 용봉동", None, "29170"),
        ("전남광주통합특별시 여수시 수정동", None, "46130"),
    ],
)
def test_a_district_code_from_the_address(address: str, province: str | None, code: str) -> None:
    assert district_of(address, province).code == code


@pytest.mark.parametrize(
    ("address", "province", "outcome"),
    [
        (None, None, "missing"),
        ("   ", "11", "missing"),
        ("세종대로 209", None, "unknown"),  # a road named after 세종, not the city
        ("Seoul Jongno-gu Sejong-daero 209", "11", "unknown"),
        ("부산대학로63번길 2", None, "unknown"),
        ("중구 세종대로 110", None, "ambiguous"),
        ("강서구 공항대로 1", None, "ambiguous"),
        ("고성군 거진읍", None, "ambiguous"),
        ("인천 중구 신포로 27", None, "split"),  # no 동 named: 제물포구 or 영종구
        ("서울 종로구 세종대로 209", "26", "province_conflict"),
        ("서울특별시 종로구", "42", "province_conflict"),
    ],
)
def test_no_code_when_the_address_does_not_decide(
    address: str | None, province: str | None, outcome: str
) -> None:
    district = district_of(address, province)
    assert (district.code, district.outcome) == (None, outcome)


def test_a_city_without_its_gu_is_reported_as_a_city() -> None:
    assert district_of("경기도 수원시 광교로 152").outcome == "city"
    assert district_of("경기도 수원시 영통구 광교로 152").outcome == "district"
    assert district_of("경기도 가평군 가평읍").outcome == "district"


def test_the_table_is_well_formed() -> None:
    seen: set[str] = set()
    for province, table in CURRENT.items():
        for item in table.split("|"):
            code, name = item.split(" ", 1)
            assert re.fullmatch(r"\d{5}", code) and code[:2] == province, item
            assert code not in seen, item
            seen.add(code)
            if " " in name:  # a 구 of a city: the city is listed, and shares the first 4 digits
                city = name.split(" ")[0]
                city_code = next(
                    c for c, n in (i.split(" ", 1) for i in table.split("|")) if n == city
                )
                assert city_code[:4] == code[:4], item
    assert {"42", "45"}.isdisjoint(CURRENT)  # renumbered 51 / 52
    names = {**PROVINCE_NAMES, **MERGED_PROVINCE_NAMES}
    assert all(set(codes) <= set(CURRENT) for codes in names.values())
    assert all(code in seen for code in RENAMED.values())
