"""Static reference data for the synthetic feed generator.

Sources: /work/shared/notes/korea.md (surname shares of the top ten, province codes, postal ranges,
romanisation variants, KCD versions), KR Core (code-system URLs), LOINC (lab codes). Where a number is
an approximation made for plausibility rather than taken from a source, the comment says so: nothing
here is fit for anything but generating test data.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

Sex = Literal["M", "F"]


# --------------------------------------------------------------------------------------------------
# Surnames
# --------------------------------------------------------------------------------------------------


class Surname(NamedTuple):
    hangul: str
    share: float  # percent of the population
    latin: tuple[tuple[str, float], ...]  # romanisations people actually use, with weights


def _s(hangul: str, share: float, *latin: tuple[str, float]) -> Surname:
    return Surname(hangul, share, latin)


# Top ten: the 2015 census shares quoted in korea.md. The tail is approximate (rounded from the same
# census, small surnames lumped): good enough for a realistic long tail, not for statistics.
# 류/리/림/로/라/량/려 are the initial-sound-rule spellings people may register instead of
# 유/이/임/노/나/양/여; they are kept as their own (small) entries.
SURNAMES: Final[tuple[Surname, ...]] = (
    _s("김", 21.5, ("Kim", 0.98), ("Gim", 0.02)),
    _s("이", 14.7, ("Lee", 0.86), ("Yi", 0.07), ("Rhee", 0.04), ("Ri", 0.01), ("I", 0.02)),
    _s("박", 8.4, ("Park", 0.9), ("Pak", 0.05), ("Bak", 0.05)),
    _s("최", 4.7, ("Choi", 0.9), ("Choe", 0.08), ("Chey", 0.02)),
    _s("정", 4.3, ("Jung", 0.45), ("Jeong", 0.35), ("Chung", 0.2)),
    _s("강", 2.4, ("Kang", 0.95), ("Gang", 0.05)),
    _s("조", 2.1, ("Cho", 0.8), ("Jo", 0.2)),
    _s("윤", 2.1, ("Yoon", 0.6), ("Yun", 0.4)),
    _s("장", 2.0, ("Jang", 0.7), ("Chang", 0.3)),
    _s("임", 1.7, ("Lim", 0.75), ("Im", 0.2), ("Rim", 0.05)),
    _s("한", 1.5, ("Han", 1.0)),
    _s("오", 1.5, ("Oh", 0.9), ("O", 0.1)),
    _s("서", 1.5, ("Seo", 0.7), ("Suh", 0.3)),
    _s("신", 1.4, ("Shin", 0.85), ("Sin", 0.15)),
    _s("권", 1.4, ("Kwon", 0.9), ("Gwon", 0.1)),
    _s("황", 1.4, ("Hwang", 1.0)),
    _s("안", 1.4, ("Ahn", 0.7), ("An", 0.3)),
    _s("송", 1.3, ("Song", 1.0)),
    _s("전", 1.1, ("Jeon", 0.6), ("Jun", 0.2), ("Chun", 0.2)),
    _s("홍", 1.1, ("Hong", 1.0)),
    _s("유", 0.9, ("Yoo", 0.5), ("Yu", 0.45), ("You", 0.05)),
    _s("류", 0.4, ("Ryu", 0.8), ("Yoo", 0.1), ("Yu", 0.1)),
    _s("고", 0.9, ("Ko", 0.8), ("Go", 0.2)),
    _s("문", 0.9, ("Moon", 0.8), ("Mun", 0.2)),
    _s("양", 0.9, ("Yang", 1.0)),
    _s("손", 0.9, ("Son", 0.8), ("Sohn", 0.2)),
    _s("배", 0.8, ("Bae", 1.0)),
    _s("백", 0.8, ("Baek", 0.7), ("Paik", 0.2), ("Baik", 0.1)),
    _s("허", 0.7, ("Heo", 0.6), ("Huh", 0.4)),
    _s("남", 0.6, ("Nam", 1.0)),
    _s("심", 0.5, ("Shim", 0.7), ("Sim", 0.3)),
    _s("노", 0.4, ("Noh", 0.6), ("Roh", 0.3), ("No", 0.1)),
    _s("하", 0.5, ("Ha", 1.0)),
    _s("곽", 0.4, ("Kwak", 0.9), ("Gwak", 0.1)),
    _s("성", 0.4, ("Sung", 0.7), ("Seong", 0.3)),
    _s("차", 0.4, ("Cha", 1.0)),
    _s("주", 0.4, ("Joo", 0.6), ("Ju", 0.4)),
    _s("우", 0.4, ("Woo", 0.9), ("U", 0.1)),
    _s("구", 0.4, ("Koo", 0.6), ("Gu", 0.3), ("Ku", 0.1)),
    _s("민", 0.3, ("Min", 1.0)),
    _s("나", 0.3, ("Na", 0.9), ("Ra", 0.1)),
    _s("진", 0.3, ("Jin", 1.0)),
    _s("지", 0.3, ("Ji", 1.0)),
    _s("엄", 0.3, ("Eom", 0.5), ("Um", 0.5)),
    _s("채", 0.3, ("Chae", 1.0)),
    _s("원", 0.3, ("Won", 1.0)),
    _s("천", 0.2, ("Cheon", 0.5), ("Chun", 0.5)),
    _s("방", 0.2, ("Bang", 1.0)),
    _s("공", 0.2, ("Kong", 0.7), ("Gong", 0.3)),
    _s("현", 0.2, ("Hyun", 0.8), ("Hyeon", 0.2)),
    _s("함", 0.2, ("Ham", 1.0)),
    _s("변", 0.2, ("Byun", 0.7), ("Byeon", 0.3)),
    _s("염", 0.1, ("Yeom", 0.6), ("Yum", 0.4)),
    _s("여", 0.1, ("Yeo", 1.0)),
    _s("추", 0.1, ("Choo", 0.6), ("Chu", 0.4)),
    _s("도", 0.1, ("Do", 1.0)),
    _s("소", 0.1, ("So", 1.0)),
    _s("석", 0.1, ("Seok", 0.6), ("Suk", 0.4)),
    _s("선", 0.1, ("Sun", 0.6), ("Seon", 0.4)),
    _s("설", 0.1, ("Seol", 0.6), ("Sul", 0.4)),
    _s("마", 0.1, ("Ma", 1.0)),
    _s("길", 0.1, ("Gil", 0.6), ("Kil", 0.4)),
    _s("연", 0.1, ("Yeon", 0.6), ("Yun", 0.4)),
    _s("위", 0.1, ("Wi", 0.7), ("Wee", 0.3)),
    _s("표", 0.1, ("Pyo", 1.0)),
    _s("명", 0.1, ("Myung", 0.7), ("Myeong", 0.3)),
    _s("기", 0.1, ("Ki", 0.7), ("Gi", 0.3)),
    _s("반", 0.1, ("Ban", 1.0)),
    _s("라", 0.05, ("Ra", 0.8), ("La", 0.2)),
    _s("왕", 0.05, ("Wang", 1.0)),
    _s("금", 0.05, ("Keum", 0.6), ("Geum", 0.4)),
    _s("옥", 0.05, ("Ok", 1.0)),
    _s("육", 0.05, ("Yook", 0.6), ("Yuk", 0.4)),
    _s("인", 0.05, ("In", 1.0)),
    _s("맹", 0.04, ("Maeng", 1.0)),
    _s("제", 0.04, ("Je", 1.0)),
    _s("모", 0.04, ("Mo", 1.0)),
    _s("탁", 0.04, ("Tak", 1.0)),
    _s("국", 0.04, ("Kook", 0.6), ("Guk", 0.4)),
    _s("어", 0.04, ("Eo", 1.0)),
    _s("은", 0.03, ("Eun", 1.0)),
    _s("편", 0.03, ("Pyeon", 0.5), ("Pyun", 0.5)),
    _s("용", 0.03, ("Yong", 1.0)),
    _s("예", 0.02, ("Ye", 1.0)),
    _s("경", 0.02, ("Kyung", 0.6), ("Gyeong", 0.4)),
    _s("봉", 0.02, ("Bong", 1.0)),
    _s("사", 0.02, ("Sa", 1.0)),
    _s("부", 0.02, ("Boo", 0.6), ("Bu", 0.4)),
    _s("태", 0.02, ("Tae", 1.0)),
    _s("리", 0.03, ("Lee", 0.6), ("Ri", 0.4)),
    _s("림", 0.02, ("Lim", 0.6), ("Rim", 0.4)),
    _s("로", 0.01, ("Roh", 0.7), ("Ro", 0.3)),
    _s("량", 0.01, ("Ryang", 0.5), ("Yang", 0.5)),
    _s("려", 0.01, ("Ryeo", 0.5), ("Yeo", 0.5)),
    # Two-syllable surnames.
    _s("남궁", 0.04, ("Namgung", 0.6), ("Namkoong", 0.4)),
    _s("황보", 0.02, ("Hwangbo", 1.0)),
    _s("제갈", 0.01, ("Jegal", 0.7), ("Chegal", 0.3)),
    _s("선우", 0.01, ("Sunwoo", 0.6), ("Seonu", 0.4)),
    _s("독고", 0.005, ("Dokgo", 0.6), ("Tokko", 0.4)),
)

TWO_SYLLABLE_SURNAMES: Final[tuple[str, ...]] = ("남궁", "황보", "제갈", "선우", "독고")

# Initial-sound rule (두음법칙): since 2007 people may register the left spelling instead of the
# right one. Both directions are used for corruption: a hospital may write either.
INITIAL_SOUND_PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("류", "유"),
    ("리", "이"),
    ("라", "나"),
    ("림", "임"),
    ("로", "노"),
    ("량", "양"),
    ("려", "여"),
)


# --------------------------------------------------------------------------------------------------
# Given names by birth cohort
# --------------------------------------------------------------------------------------------------

# Cohort key = first year of the cohort. Popular names per cohort and sex, most popular first, as
# reported in Korean press summaries of birth registrations (approximate ranks). Syllable pools are
# derived from these lists plus the extra syllables below, so generated names cluster by cohort.
COHORT_STARTS: Final[tuple[int, ...]] = (1930, 1950, 1960, 1970, 1980, 1990, 2000, 2010)

POPULAR_GIVEN_NAMES: Final[dict[tuple[int, Sex], tuple[str, ...]]] = {
    (1930, "M"): ("영수", "영호", "영식", "정수", "종수", "광수", "상철", "성수", "영철", "병수"),
    (1930, "F"): ("영자", "정자", "순자", "춘자", "경자", "옥자", "명자", "숙자", "정순", "말순"),
    (1950, "M"): ("영수", "영철", "영호", "영식", "성수", "정수", "종수", "영길", "상철", "광수"),
    (1950, "F"): ("영숙", "정숙", "영희", "명숙", "경숙", "순자", "정희", "영자", "옥순", "미자"),
    (1960, "M"): ("영수", "성호", "영호", "영철", "정호", "성수", "상훈", "성진", "정훈", "재현"),
    (1960, "F"): ("미숙", "경희", "영숙", "정숙", "미경", "은주", "영미", "현숙", "경숙", "정희"),
    (1970, "M"): ("정훈", "성호", "성훈", "상훈", "성민", "지훈", "동현", "준호", "영호", "재훈"),
    (1970, "F"): ("미영", "은영", "은정", "현정", "미경", "지영", "은주", "선영", "미정", "혜진"),
    (1980, "M"): ("지훈", "성민", "현우", "정훈", "성현", "동현", "준호", "민수", "상현", "진우"),
    (1980, "F"): ("지영", "지은", "수진", "은정", "미영", "혜진", "은지", "지현", "정은", "민정"),
    (1990, "M"): ("지훈", "현우", "동현", "민수", "준영", "성민", "승현", "준혁", "민재", "지원"),
    (1990, "F"): ("지은", "지혜", "수진", "민지", "유진", "지현", "수빈", "은지", "혜진", "예지"),
    (2000, "M"): ("민준", "현우", "동현", "지훈", "준혁", "도현", "승민", "민재", "지호", "준서"),
    (2000, "F"): ("서연", "민서", "지민", "서현", "수빈", "유진", "민지", "예은", "지원", "하은"),
    (2010, "M"): ("민준", "서준", "예준", "도윤", "시우", "주원", "하준", "지호", "지후", "준우"),
    (2010, "F"): ("서연", "서윤", "지우", "서현", "민서", "하은", "하윤", "윤서", "지유", "채원"),
}

# Extra syllables that were common in a cohort but are not covered by the popular names above
# (first syllable pool, second syllable pool).
EXTRA_SYLLABLES: Final[dict[tuple[int, Sex], tuple[str, str]]] = {
    (1930, "M"): ("만병종봉용길", "길남식봉복석"),
    (1930, "F"): ("말복순분금옥", "님례녀분임덕"),
    (1950, "M"): ("만병종봉용기", "길식석남복환"),
    (1950, "F"): ("말순분금옥춘", "자녀례님순덕"),
    (1960, "M"): ("종재병기광용", "석환기식규철"),
    (1960, "F"): ("순금혜선옥춘", "자순애옥란선"),
    (1970, "M"): ("재종동경대기", "석환규원철욱"),
    (1970, "F"): ("선수혜경유윤", "선란희애연경"),
    (1980, "M"): ("재동승태준형", "석규원빈욱환"),
    (1980, "F"): ("소혜유윤다선", "연경아희나원"),
    (1990, "M"): ("태승재건우준", "빈원규호진석"),
    (1990, "F"): ("다소예윤가채", "영연원아빈나"),
    (2000, "M"): ("태건우시재성", "빈원진호윤혁"),
    (2000, "F"): ("채다소가예하", "영연원아빈린"),
    (2010, "M"): ("이건우은로선", "안율온찬혁진"),
    (2010, "F"): ("아소다이나시", "린아온율안희"),
}

ONE_SYLLABLE_GIVEN_NAMES: Final[dict[Sex, tuple[str, ...]]] = {
    "M": ("철", "훈", "준", "혁", "진", "웅", "결", "찬", "건", "율"),
    "F": ("솔", "별", "윤", "은", "란", "숙", "희", "린", "봄", "설"),
}

# Foreign residents (S digit 5-8): about 4 in 10 are ethnic Koreans with Korean names; the others
# carry Hangul transcriptions of foreign names, grouped by origin so that family and given names match.
# origin -> ((hangul family, latin family), ...), ((hangul given, latin given, sex), ...)
FOREIGN_NAMES: Final[
    dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, Sex], ...]]]
] = {
    "VN": (
        (("응우옌", "Nguyen"), ("쩐", "Tran"), ("레", "Le"), ("팜", "Pham")),
        (
            ("티 흐엉", "Thi Huong", "F"), ("티 란", "Thi Lan", "F"), ("티 투", "Thi Thu", "F"),
            ("반 남", "Van Nam", "M"), ("반 둑", "Van Duc", "M"), ("반 훙", "Van Hung", "M"),
        ),
    ),
    "CN": (
        (("왕", "Wang"), ("장", "Zhang"), ("류", "Liu"), ("천", "Chen")),
        (
            ("웨이", "Wei", "M"), ("하오", "Hao", "M"), ("레이", "Lei", "M"),
            ("팡", "Fang", "F"), ("징", "Jing", "F"), ("옌", "Yan", "F"),
        ),
    ),
    "PH": (
        (("산토스", "Santos"), ("레예스", "Reyes"), ("크루스", "Cruz")),
        (
            ("마리아", "Maria", "F"), ("안젤리카", "Angelica", "F"), ("호세", "Jose", "M"),
            ("마크", "Mark", "M"),
        ),
    ),
}  # fmt: skip
FOREIGN_ORIGIN_WEIGHTS: Final[dict[str, float]] = {"VN": 0.4, "CN": 0.45, "PH": 0.15}


# --------------------------------------------------------------------------------------------------
# Places
# --------------------------------------------------------------------------------------------------


class Sigungu(NamedTuple):
    city: str | None  # 시/군 of a 도, or None inside a 특별시/광역시
    district: str | None  # 구/군 inside a city, or None
    postal_prefix: str  # first two digits of the 5-digit postal code (approximate per district)


class Province(NamedTuple):
    code: str  # current 시도 code (legal-dong code prefix)
    name: str  # current official name
    short: str  # everyday short form used by some feeds
    legacy_code: str | None  # code before the 2023/2024 renaming (Gangwon 42, Jeonbuk 45)
    legacy_name: str | None  # name before the renaming
    postal_range: tuple[int, int]  # first two postal digits, inclusive (korea.md)
    weight: float  # approximate share of the population, percent
    rrn_regions: tuple[int, int]  # RRN region digits 8-9, inclusive (approximate, unverified)
    sigungu: tuple[Sigungu, ...]


def _gu(*entries: tuple[str, str]) -> tuple[Sigungu, ...]:
    """Districts of a 특별시/광역시: (구/군, postal prefix)."""
    return tuple(Sigungu(None, name, prefix) for name, prefix in entries)


def _si(*entries: tuple[str, str]) -> tuple[Sigungu, ...]:
    """Cities and counties of a 도: ("수원시 영통구" or "가평군", postal prefix)."""
    result = []
    for name, prefix in entries:
        city, _, district = name.partition(" ")
        result.append(Sigungu(city, district or None, prefix))
    return tuple(result)


PROVINCES: Final[tuple[Province, ...]] = (
    Province(
        "11", "서울특별시", "서울", None, None, (1, 9), 18.3, (0, 8),
        _gu(
            ("종로구", "03"), ("중구", "04"), ("용산구", "04"), ("성동구", "04"), ("광진구", "05"),
            ("동대문구", "02"), ("중랑구", "02"), ("성북구", "02"), ("강북구", "01"),
            ("도봉구", "01"), ("노원구", "01"), ("은평구", "03"), ("서대문구", "03"),
            ("마포구", "04"), ("양천구", "08"), ("강서구", "07"), ("구로구", "08"),
            ("금천구", "08"), ("영등포구", "07"), ("동작구", "06"), ("관악구", "08"),
            ("서초구", "06"), ("강남구", "06"), ("송파구", "05"), ("강동구", "05"),
        ),
    ),
    Province(
        "26", "부산광역시", "부산", None, None, (46, 49), 6.4, (9, 12),
        _gu(
            ("중구", "48"), ("서구", "49"), ("동구", "48"), ("영도구", "49"), ("부산진구", "47"),
            ("동래구", "47"), ("남구", "48"), ("북구", "46"), ("해운대구", "48"), ("사하구", "49"),
            ("금정구", "46"), ("강서구", "46"), ("연제구", "47"), ("수영구", "48"),
            ("사상구", "46"), ("기장군", "46"),
        ),
    ),
    Province(
        "27", "대구광역시", "대구", None, None, (41, 43), 4.6, (67, 69),
        _gu(
            ("중구", "41"), ("동구", "41"), ("서구", "41"), ("남구", "42"), ("북구", "41"),
            ("수성구", "42"), ("달서구", "42"), ("달성군", "42"), ("군위군", "43"),
        ),
    ),
    Province(
        "28", "인천광역시", "인천", None, None, (21, 23), 5.8, (13, 15),
        _gu(
            ("중구", "22"), ("동구", "22"), ("미추홀구", "22"), ("연수구", "21"), ("남동구", "21"),
            ("부평구", "21"), ("계양구", "21"), ("서구", "22"), ("강화군", "23"), ("옹진군", "23"),
        ),
    ),
    Province(
        "29", "광주광역시", "광주", None, None, (61, 62), 2.8, (55, 56),
        _gu(("동구", "61"), ("서구", "61"), ("남구", "61"), ("북구", "61"), ("광산구", "62")),
    ),
    Province(
        "30", "대전광역시", "대전", None, None, (34, 35), 2.8, (40, 40),
        _gu(("동구", "34"), ("중구", "34"), ("서구", "35"), ("유성구", "34"), ("대덕구", "34")),
    ),
    Province(
        "31", "울산광역시", "울산", None, None, (44, 45), 2.2, (85, 85),
        _gu(("중구", "44"), ("남구", "44"), ("동구", "44"), ("북구", "44"), ("울주군", "45")),
    ),
    Province(
        "36", "세종특별자치시", "세종", None, None, (30, 30), 0.8, (44, 44),
        (Sigungu(None, None, "30"),),
    ),
    Province(
        "41", "경기도", "경기", None, None, (10, 20), 26.5, (16, 25),
        _si(
            ("수원시 장안구", "16"), ("수원시 권선구", "16"), ("수원시 팔달구", "16"),
            ("수원시 영통구", "16"), ("성남시 수정구", "13"), ("성남시 중원구", "13"),
            ("성남시 분당구", "13"), ("의정부시", "11"), ("안양시 만안구", "14"),
            ("안양시 동안구", "14"), ("부천시", "14"), ("광명시", "14"), ("평택시", "17"),
            ("동두천시", "11"), ("안산시 상록구", "15"), ("안산시 단원구", "15"),
            ("고양시 덕양구", "10"), ("고양시 일산동구", "10"), ("고양시 일산서구", "10"),
            ("과천시", "13"), ("구리시", "11"), ("남양주시", "12"), ("오산시", "18"),
            ("시흥시", "15"), ("군포시", "15"), ("의왕시", "16"), ("하남시", "12"),
            ("용인시 처인구", "17"), ("용인시 기흥구", "17"), ("용인시 수지구", "16"),
            ("파주시", "10"), ("이천시", "17"), ("안성시", "17"), ("김포시", "10"),
            ("화성시", "18"), ("광주시", "12"), ("양주시", "11"), ("포천시", "11"),
            ("여주시", "12"), ("연천군", "11"), ("가평군", "12"), ("양평군", "12"),
        ),
    ),
    Province(
        "51", "강원특별자치도", "강원", "42", "강원도", (24, 26), 3.0, (26, 34),
        _si(
            ("춘천시", "24"), ("원주시", "26"), ("강릉시", "25"), ("동해시", "25"),
            ("태백시", "26"), ("속초시", "24"), ("삼척시", "25"), ("홍천군", "25"),
            ("횡성군", "25"), ("영월군", "26"), ("평창군", "25"), ("정선군", "26"),
            ("철원군", "24"), ("화천군", "24"), ("양구군", "24"), ("인제군", "24"),
            ("고성군", "24"), ("양양군", "25"),
        ),
    ),
    Province(
        "43", "충청북도", "충북", None, None, (27, 29), 3.1, (35, 39),
        _si(
            ("청주시 상당구", "28"), ("청주시 서원구", "28"), ("청주시 흥덕구", "28"),
            ("청주시 청원구", "28"), ("충주시", "27"), ("제천시", "27"), ("보은군", "28"),
            ("옥천군", "29"), ("영동군", "29"), ("증평군", "27"), ("진천군", "27"),
            ("괴산군", "28"), ("음성군", "27"), ("단양군", "27"),
        ),
    ),
    Province(
        "44", "충청남도", "충남", None, None, (31, 33), 4.1, (41, 47),
        _si(
            ("천안시 동남구", "31"), ("천안시 서북구", "31"), ("공주시", "32"), ("보령시", "33"),
            ("아산시", "31"), ("서산시", "31"), ("논산시", "32"), ("계룡시", "32"),
            ("당진시", "31"), ("금산군", "32"), ("부여군", "33"), ("서천군", "33"),
            ("청양군", "33"), ("홍성군", "32"), ("예산군", "32"), ("태안군", "32"),
        ),
    ),
    Province(
        "52", "전북특별자치도", "전북", "45", "전라북도", (54, 56), 3.4, (48, 54),
        _si(
            ("전주시 완산구", "55"), ("전주시 덕진구", "54"), ("군산시", "54"), ("익산시", "54"),
            ("정읍시", "56"), ("남원시", "55"), ("김제시", "54"), ("완주군", "55"),
            ("진안군", "55"), ("무주군", "55"), ("장수군", "55"), ("임실군", "55"),
            ("순창군", "56"), ("고창군", "56"), ("부안군", "56"),
        ),
    ),
    Province(
        "46", "전라남도", "전남", None, None, (57, 60), 3.5, (57, 64),
        _si(
            ("목포시", "58"), ("여수시", "59"), ("순천시", "57"), ("나주시", "58"),
            ("광양시", "57"), ("담양군", "57"), ("곡성군", "57"), ("구례군", "57"),
            ("고흥군", "59"), ("보성군", "59"), ("화순군", "58"), ("장흥군", "59"),
            ("강진군", "59"), ("해남군", "59"), ("영암군", "58"), ("무안군", "58"),
            ("함평군", "57"), ("영광군", "57"), ("장성군", "57"), ("완도군", "59"),
            ("진도군", "58"), ("신안군", "58"),
        ),
    ),
    Province(
        "47", "경상북도", "경북", None, None, (36, 40), 5.0, (70, 81),
        _si(
            ("포항시 남구", "37"), ("포항시 북구", "37"), ("경주시", "38"), ("김천시", "39"),
            ("안동시", "36"), ("구미시", "39"), ("영주시", "36"), ("영천시", "38"),
            ("상주시", "37"), ("문경시", "36"), ("경산시", "38"), ("의성군", "37"),
            ("청송군", "37"), ("영양군", "36"), ("영덕군", "36"), ("청도군", "38"),
            ("고령군", "40"), ("성주군", "40"), ("칠곡군", "39"), ("예천군", "36"),
            ("봉화군", "36"), ("울진군", "36"), ("울릉군", "40"),
        ),
    ),
    Province(
        "48", "경상남도", "경남", None, None, (50, 53), 6.3, (82, 92),
        _si(
            ("창원시 의창구", "51"), ("창원시 성산구", "51"), ("창원시 마산합포구", "51"),
            ("창원시 마산회원구", "51"), ("창원시 진해구", "51"), ("진주시", "52"),
            ("통영시", "53"), ("사천시", "52"), ("김해시", "50"), ("밀양시", "50"),
            ("거제시", "53"), ("양산시", "50"), ("의령군", "52"), ("함안군", "52"),
            ("창녕군", "50"), ("고성군", "52"), ("남해군", "52"), ("하동군", "52"),
            ("산청군", "52"), ("함양군", "50"), ("거창군", "50"), ("합천군", "50"),
        ),
    ),
    Province(
        "50", "제주특별자치도", "제주", None, None, (63, 63), 1.3, (93, 95),
        _si(("제주시", "63"), ("서귀포시", "63")),
    ),
)  # fmt: skip

# Generic road names (도로명). Real roads differ per district; these are plausible, not real, pairs.
ROAD_NAMES: Final[tuple[str, ...]] = (
    "중앙로", "시청로", "대학로", "문화로", "역전로", "공원로", "평화로", "번영로", "새마을로",
    "희망로", "금강로", "한강로", "봉황로", "청운로", "매화로", "소나무길", "은행나무길", "동문로",
    "서문로", "남문로", "북문로", "신흥로", "산업로", "학교길", "시장길", "장미로", "무궁화로",
    "충렬로", "효자로", "월드컵로", "가로수길", "강변로", "호수로", "해안로", "벚꽃로", "도청로",
    "법원로", "상공로", "경제로", "과학로", "미래로", "행복로", "제일로", "양지로", "솔밭로",
    "송림로", "버들로", "백합로", "테헤란로", "세종대로",
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Clinical codes
# --------------------------------------------------------------------------------------------------


class Diagnosis(NamedTuple):
    code: str  # KCD code with dot, as in KCD-8 / KCD-9 (same code in both for this list)
    display: str  # ICD-10 (WHO) English title; KCD titles are Korean and not reproduced here
    min_age: int
    max_age: int
    sex: Sex | None
    weight: float
    chronic: bool
    labs: tuple[str, ...]  # LOINC codes typically ordered with this diagnosis


DIAGNOSES: Final[tuple[Diagnosis, ...]] = (
    Diagnosis("E11.9", "Non-insulin-dependent diabetes mellitus without complications", 30, 120, None, 6.0, True, ("4548-4", "2345-7")),
    Diagnosis("I10", "Essential (primary) hypertension", 30, 120, None, 8.0, True, ("2823-3", "2160-0")),
    Diagnosis("E78.5", "Hyperlipidaemia, unspecified", 30, 120, None, 5.0, True, ("2093-3", "2089-1", "2571-8")),
    Diagnosis("N18.3", "Chronic kidney disease, stage 3", 45, 120, None, 1.0, True, ("2160-0", "33914-3")),
    Diagnosis("I25.1", "Atherosclerotic heart disease", 45, 120, None, 1.5, True, ("2093-3",)),
    Diagnosis("I48.9", "Atrial fibrillation and atrial flutter, unspecified", 50, 120, None, 1.0, True, ("33762-6",)),
    Diagnosis("I50.9", "Heart failure, unspecified", 55, 120, None, 1.0, True, ("33762-6", "2951-2")),
    Diagnosis("I63.9", "Cerebral infarction, unspecified", 50, 120, None, 1.0, True, ("2093-3",)),
    Diagnosis("J45.9", "Asthma, unspecified", 3, 120, None, 1.5, True, ()),
    Diagnosis("J44.9", "Chronic obstructive pulmonary disease, unspecified", 45, 120, None, 1.0, True, ()),
    Diagnosis("K21.9", "Gastro-oesophageal reflux disease without oesophagitis", 18, 120, None, 3.0, True, ()),
    Diagnosis("K29.7", "Gastritis, unspecified", 15, 120, None, 3.0, False, ()),
    Diagnosis("K76.0", "Fatty (change of) liver, not elsewhere classified", 25, 120, None, 2.0, True, ("1742-6", "1920-8")),
    Diagnosis("B18.1", "Chronic viral hepatitis B without delta-agent", 20, 120, None, 1.0, True, ("1742-6", "1920-8")),
    Diagnosis("E03.9", "Hypothyroidism, unspecified", 20, 120, "F", 1.5, True, ("3016-3",)),
    Diagnosis("M17.9", "Gonarthrosis, unspecified", 50, 120, None, 2.5, True, ()),
    Diagnosis("M54.5", "Low back pain", 20, 120, None, 3.0, False, ()),
    Diagnosis("M81.9", "Osteoporosis, unspecified", 50, 120, "F", 1.5, True, ()),
    Diagnosis("F32.9", "Depressive episode, unspecified", 15, 120, None, 1.5, True, ()),
    Diagnosis("G47.0", "Disorders of initiating and maintaining sleep [insomnias]", 20, 120, None, 1.0, False, ()),
    Diagnosis("G30.9", "Alzheimer disease, unspecified", 65, 120, None, 1.0, True, ()),
    Diagnosis("C16.9", "Malignant neoplasm: Stomach, unspecified", 40, 120, None, 0.8, True, ("718-7",)),
    Diagnosis("C18.9", "Malignant neoplasm: Colon, unspecified", 40, 120, None, 0.7, True, ("718-7",)),
    Diagnosis("C22.0", "Liver cell carcinoma", 40, 120, None, 0.5, True, ("1742-6", "1920-8")),
    Diagnosis("C34.9", "Malignant neoplasm: Bronchus or lung, unspecified", 45, 120, None, 0.6, True, ()),
    Diagnosis("C50.9", "Malignant neoplasm: Breast, unspecified", 30, 120, "F", 0.8, True, ()),
    Diagnosis("C61", "Malignant neoplasm of prostate", 50, 120, "M", 0.6, True, ()),
    Diagnosis("C73", "Malignant neoplasm of thyroid gland", 20, 120, None, 0.8, True, ("3016-3",)),
    Diagnosis("D50.9", "Iron deficiency anaemia, unspecified", 0, 120, None, 1.0, False, ("718-7",)),
    Diagnosis("E66.9", "Obesity, unspecified", 8, 120, None, 1.0, True, ("2345-7",)),
    Diagnosis("N39.0", "Urinary tract infection, site not specified", 0, 120, None, 1.5, False, ("6690-2",)),
    Diagnosis("J06.9", "Acute upper respiratory infection, unspecified", 0, 120, None, 6.0, False, ()),
    Diagnosis("J00", "Acute nasopharyngitis [common cold]", 0, 120, None, 4.0, False, ()),
    Diagnosis("J20.9", "Acute bronchitis, unspecified", 0, 120, None, 3.0, False, ()),
    Diagnosis("J18.9", "Pneumonia, unspecified", 0, 120, None, 1.5, False, ("1988-5", "6690-2")),
    Diagnosis("A09.0", "Other and unspecified gastroenteritis and colitis of infectious origin", 0, 120, None, 2.0, False, ()),
    Diagnosis("H10.9", "Conjunctivitis, unspecified", 0, 120, None, 1.0, False, ()),
    Diagnosis("H66.9", "Otitis media, unspecified", 0, 12, None, 2.0, False, ()),
    Diagnosis("L20.9", "Atopic dermatitis, unspecified", 0, 18, None, 1.5, True, ()),
    Diagnosis("U07.1", "COVID-19, virus identified", 0, 120, None, 1.5, False, ("1988-5",)),
    Diagnosis("R51", "Headache", 5, 120, None, 1.0, False, ()),
    Diagnosis("S93.4", "Sprain and strain of ankle", 5, 80, None, 1.0, False, ()),
    Diagnosis("O80.9", "Single spontaneous delivery, unspecified", 20, 45, "F", 0.5, False, ("718-7",)),
    Diagnosis("Z00.0", "General medical examination", 18, 120, None, 2.0, False, ("718-7", "2345-7", "1742-6")),
)  # fmt: skip


class LabTest(NamedTuple):
    loinc: str
    display: str
    unit: str  # UCUM code, also used as the human-readable unit
    normal_mean: float
    normal_sd: float
    abnormal_mean: float
    abnormal_sd: float
    decimals: int


LAB_TESTS: Final[dict[str, LabTest]] = {
    t.loinc: t
    for t in (
        LabTest("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 5.4, 0.4, 7.6, 1.2, 1),
        LabTest("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 95, 10, 155, 40, 0),
        LabTest("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 185, 28, 235, 35, 0),
        LabTest("2089-1", "Cholesterol in LDL [Mass/volume] in Serum or Plasma", "mg/dL", 105, 22, 155, 30, 0),
        LabTest("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 115, 45, 220, 80, 0),
        LabTest("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.9, 0.18, 1.9, 0.5, 2),
        LabTest("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)", "mL/min/{1.73_m2}", 92, 14, 45, 9, 0),
        LabTest("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.8, 1.3, 10.2, 1.2, 1),
        LabTest("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 6.5, 1.6, 12.5, 3.0, 1),
        LabTest("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 22, 8, 65, 25, 0),
        LabTest("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 24, 7, 58, 20, 0),
        LabTest("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 2.0, 0.8, 8.5, 3.0, 2),
        LabTest("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 2.0, 1.5, 55, 35, 1),
        LabTest("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.2, 0.3, 4.9, 0.5, 1),
        LabTest("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 140, 2.5, 133, 4, 0),
        LabTest("33762-6", "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma", "pg/mL", 80, 45, 2400, 1400, 0),
    )
}  # fmt: skip

# Labs ordered without a specific diagnostic reason (routine panel).
ROUTINE_LABS: Final[tuple[str, ...]] = ("718-7", "6690-2", "2345-7", "1742-6", "1920-8", "2160-0")


# --------------------------------------------------------------------------------------------------
# Hospitals
# --------------------------------------------------------------------------------------------------

HOSPITAL_NAMES: Final[tuple[str, ...]] = (
    "가나대학교병원", "다라대학교병원", "마바대학교병원", "사아대학교병원", "자차대학교병원",
    "카타대학교병원", "파하대학교병원", "가다대학교병원", "나라대학교병원", "마사대학교병원",
    "바아대학교병원", "자카대학교병원", "차타대학교병원", "파가대학교병원",
)  # fmt: skip
