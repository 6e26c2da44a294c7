"""Synthetic children for tests, the demo seed and the matching benchmark. No real person is in here.

Everything is drawn from a `random.Random` the caller seeds, so a seed always gives the same data.
Children come in families (siblings and a few twins share family name, parents, address), which
is what makes matching hard. Identity numbers are valid (correct check character) and unique.

`generate_matching_dataset` plants noisy reports of register children (homophones, swapped
names, typos, dropped characters, shifted birth dates, missing fields) beside reports of children
who are not in the register, and `measure_match_quality` scores them with the real blocking keys
and scorer, in memory, giving precision and recall.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from pypinyin import lazy_pinyin

from services.registry.domain.codes import Ethnicity, GuardianStatus, Relationship, Sex
from services.registry.domain.identity import make_identity_number
from services.registry.domain.matching import (
    DEFAULT_THRESHOLD,
    ChildFacts,
    index_keys,
    lookup_keys,
    parse_name,
    rank_candidates,
)
from services.registry.domain.rules import AGE_OF_MAJORITY, add_months, age_in_years

FANGSHAN_DISTRICT = "110111"
# GB/T 2260 extension codes of Fangshan's towns and streets (from the domain brief).
FANGSHAN_TOWNS: dict[str, str] = {
    "110111001": "城关街道",
    "110111002": "新镇街道",
    "110111004": "向阳街道",
    "110111005": "东风街道",
    "110111006": "迎风街道",
    "110111007": "星城街道",
    "110111008": "良乡镇",
    "110111009": "周口店地区",
    "110111010": "琉璃河地区",
    "110111011": "拱辰街道",
    "110111012": "西潞街道",
    "110111101": "阎村镇",
    "110111103": "窦店镇",
    "110111104": "石楼镇",
    "110111105": "长阳镇",
    "110111107": "河北镇",
    "110111108": "长沟镇",
    "110111109": "大石窝镇",
    "110111110": "张坊镇",
    "110111111": "十渡镇",
    "110111112": "青龙湖镇",
    "110111115": "韩村河镇",
    "110111208": "霞云岭乡",
    "110111209": "南窖乡",
    "110111210": "佛子庄乡",
    "110111211": "大安山乡",
    "110111212": "史家营乡",
    "110111213": "蒲洼乡",
}
# Household registrations elsewhere (migrant families): Baoding, Zhengzhou, Handan, Zhoukou.
_OTHER_REGISTRATIONS = ("130602", "410102", "130402", "411602")

# Common surnames with rough relative frequencies (per mille), plus a few compound ones.
_SURNAMES: dict[str, float] = {
    "王": 71, "李": 70, "张": 67, "刘": 54, "陈": 45, "杨": 31, "黄": 21, "赵": 20, "吴": 19, "周": 19,
    "徐": 15, "孙": 15, "马": 14, "朱": 13, "胡": 12, "郭": 12, "何": 12, "高": 11, "林": 11, "罗": 9,
    "郑": 9, "梁": 9, "谢": 7, "宋": 7, "唐": 7, "许": 7, "韩": 7, "冯": 6, "邓": 6, "曹": 6,
    "彭": 6, "曾": 6, "肖": 6, "田": 5, "董": 5, "袁": 5, "潘": 5, "于": 5, "蒋": 5, "蔡": 5,
    "余": 5, "杜": 5, "叶": 4, "程": 4, "苏": 4, "魏": 4, "吕": 4, "丁": 4, "任": 4, "沈": 4,
    "姚": 4, "卢": 4, "姜": 4, "崔": 4, "钟": 3, "谭": 3, "陆": 3, "汪": 3, "范": 3, "金": 3,
    "石": 3, "廖": 3, "贾": 3, "夏": 3, "韦": 3, "付": 3, "方": 3, "白": 3, "邹": 3, "孟": 3,
    "熊": 3, "秦": 3, "邱": 3, "江": 3, "尹": 3, "薛": 2, "闫": 2, "段": 2, "雷": 2, "侯": 2,
    "龙": 2, "史": 2, "陶": 2, "黎": 2, "贺": 2, "顾": 2, "毛": 2, "郝": 2, "龚": 2, "邵": 2,
    "欧阳": 0.6, "司马": 0.3, "诸葛": 0.2, "上官": 0.2, "皇甫": 0.1,
}  # fmt: skip
_BOY_CHARACTERS = (
    "伟强磊军洋勇杰涛明超浩宇轩子豪俊博文晨睿泽航辰凯鹏飞志嘉宸铭昊皓然逸"
    "一天宏亮鑫鸿思源晓小佳宁毅斌诚坤远哲瑞祥锦阳健林森楠国建平海波东华刚"
    "辉峰彬成栋良兴旭翔瀚霖昕奕炫煜晟骏驰钧琛朗乐康安信坚恒礼义廷耀弘铮峻"
    "承韬致"
)
_GIRL_CHARACTERS = (
    "芳娜敏静丽艳娟霞婷雪琳欣怡萱涵梓雨诗琪晗悦妍可馨彤瑶佳嘉晓小思雅婉蕾"
    "颖璐莉薇玲慧洁倩梦菲月艺依宁文心语红秀英兰凤玉珍燕萍春晶露洋淑惠桂翠"
    "云蓉岚素婕莹琦璇钰沁溪澜瑾曦诺漫芸蔓茜筠希冉蓓桐柔舒楚淼丹妮"
)
# Extra characters that sound like the ones above, so homophone noise has something to choose.
_SOUNDALIKES = (
    "筱名鸣灏号语羽禹予萱宣璇晗寒含韩馨心新昕宜仪一亦易奕梓紫姿家加峻骏君洁婕捷晶菁京敬莉俐立力利"
    "桦骅威维玮庭亭廷霖麟斯丝世士时锐辰臣择杭楷恺朋菲非霏智致凝学纳那方舫民珉燕岩颜言娟鹃琦淇祺奇"
    "齐月越岳玥童桐遥尧亚娅雷垒英莹盈路露鹿惠辉会茜谦萌雯闻波柏韬桃章汪黎柳阳凰伍武许舟竹湖和郜俞鱼"
    "成丰符卫颜"
)


@dataclass(frozen=True)
class SyntheticParent:
    name: str
    relationship: Relationship
    status: GuardianStatus
    status_since: date | None


@dataclass(frozen=True)
class SyntheticChild:
    record_id: str
    name: str
    sex: Sex
    birth_date: date
    ethnicity: Ethnicity
    identity_number: str | None  # about one child in ten has none recorded
    household_registration_code: str  # 9-digit town code, or 6-digit elsewhere
    residence_code: str  # 12-digit village/community code in Fangshan
    school: str | None
    parents: tuple[SyntheticParent, ...]

    @property
    def guardian_names(self) -> tuple[str, ...]:
        return tuple(parent.name for parent in self.parents)

    def facts(self) -> ChildFacts:
        """The register record as the matcher sees it."""
        return ChildFacts(
            name=self.name,
            identity_key=blind_key(self.identity_number) if self.identity_number else None,
            birth_date=self.birth_date,
            sex=self.sex,
            guardian_names=self.guardian_names,
            division_code=self.residence_code,
            school=self.school,
        )


def blind_key(identity_number: str) -> str:
    """Stand-in for the service's keyed blind index (an HMAC there)."""
    return hashlib.sha256(identity_number.encode()).hexdigest()[:32]


# --- children -----------------------------------------------------------------------------------


def generate_children(count: int, *, rng: random.Random, as_of: date) -> list[SyntheticChild]:
    """`count` minors on `as_of`, in families of one to three children."""
    used_identity_numbers: set[str] = set()
    children: list[SyntheticChild] = []
    while len(children) < count:
        children.extend(_family(rng, as_of, used_identity_numbers, first_index=len(children)))
    return children[:count]


def _family(rng: random.Random, as_of: date, used: set[str], first_index: int) -> list[SyntheticChild]:
    family_name = _surname(rng)
    father = SyntheticParent(family_name + _given_name(rng, Sex.MALE), Relationship.FATHER, *_status(rng, as_of))
    mother = SyntheticParent(_surname(rng) + _given_name(rng, Sex.FEMALE), Relationship.MOTHER, *_status(rng, as_of))
    town = rng.choice(list(FANGSHAN_TOWNS))
    residence = town + rng.choice([f"{n:03d}" for n in (*range(1, 30), *range(201, 240))])
    registration = town if rng.random() < 0.85 else rng.choice(_OTHER_REGISTRATIONS)
    size = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
    twins = size >= 2 and rng.random() < 0.05
    birth_dates = [_minor_birth_date(rng, as_of) for _ in range(size)]
    if twins:
        birth_dates[1] = birth_dates[0]
    children: list[SyntheticChild] = []
    given_names: set[str] = set()
    for offset, birth_date in enumerate(birth_dates):
        sex = rng.choice((Sex.MALE, Sex.FEMALE))
        given = _given_name(rng, sex)
        while given in given_names:  # siblings never share a name
            given = _given_name(rng, sex)
        given_names.add(given)
        children.append(
            SyntheticChild(
                record_id=f"child-{first_index + offset:07d}",
                name=family_name + given,
                sex=sex,
                birth_date=birth_date,
                ethnicity=Ethnicity.HAN if rng.random() < 0.95 else rng.choice(list(Ethnicity)[1:56]),
                identity_number=_identity_number(rng, birth_date, sex, used) if rng.random() < 0.9 else None,
                household_registration_code=registration,
                residence_code=residence,
                school=_school(rng, FANGSHAN_TOWNS[town], age_in_years(birth_date, as_of)),
                parents=(father, mother),
            )
        )
    return children


def _surname(rng: random.Random) -> str:
    return rng.choices(list(_SURNAMES), weights=list(_SURNAMES.values()))[0]


def _given_name(rng: random.Random, sex: Sex) -> str:
    characters = _BOY_CHARACTERS if sex is Sex.MALE else _GIRL_CHARACTERS
    length = 1 if rng.random() < 0.2 else 2
    return "".join(rng.choice(characters) for _ in range(length))


def _minor_birth_date(rng: random.Random, as_of: date) -> date:
    earliest = add_months(as_of, -12 * AGE_OF_MAJORITY) + timedelta(days=1)
    return earliest + timedelta(days=rng.randrange((as_of - earliest).days + 1))


def _identity_number(rng: random.Random, birth_date: date, sex: Sex, used: set[str]) -> str:
    parity = 1 if sex is Sex.MALE else 0
    while True:
        number = make_identity_number(FANGSHAN_DISTRICT, birth_date, rng.randrange(500) * 2 + parity)
        if number not in used:
            used.add(number)
            return number


def _status(rng: random.Random, as_of: date) -> tuple[GuardianStatus, date | None]:
    if rng.random() < 0.9:
        return GuardianStatus.NORMAL, None
    status = rng.choice([s for s in GuardianStatus if s is not GuardianStatus.NORMAL])
    return status, as_of - timedelta(days=rng.randrange(30, 2000))


def _school(rng: random.Random, town_name: str, age: int) -> str | None:
    place = town_name.removesuffix("街道").removesuffix("地区").removesuffix("镇").removesuffix("乡")
    if age < 3:
        return None
    if age < 6:
        return f"{place}中心幼儿园"
    if age < 12:
        return f"{place}{rng.choice(('中心', '第一', '第二'))}小学"
    return f"{place}{rng.choice(('', '第一', '第二'))}中学"


# --- noise --------------------------------------------------------------------------------------


def _sound(character: str) -> str:
    """Toneless pinyin of one character in its ordinary reading."""
    return str(lazy_pinyin(character)[0])


def _homophone_groups() -> dict[str, tuple[str, ...]]:
    pool = set(_BOY_CHARACTERS + _GIRL_CHARACTERS + _SOUNDALIKES) | {s for s in _SURNAMES if len(s) == 1}
    by_sound: dict[str, list[str]] = defaultdict(list)
    for character in sorted(pool):
        by_sound[_sound(character)].append(character)
    return {c: tuple(group) for group in by_sound.values() if len(group) > 1 for c in group}


_HOMOPHONES = _homophone_groups()
_ALL_GIVEN_CHARACTERS = sorted(set(_BOY_CHARACTERS + _GIRL_CHARACTERS))


def homophone_substitute(name: str, rng: random.Random) -> str | None:
    """Replace one character by another with the same toneless pinyin (晓 for 小); None if none has one."""
    positions = [i for i, c in enumerate(name) if c in _HOMOPHONES]
    if not positions:
        return None
    i = rng.choice(positions)
    replacement = rng.choice([c for c in _HOMOPHONES[name[i]] if c != name[i]])
    return name[:i] + replacement + name[i + 1 :]


def swap_family_given(name: str) -> str:
    """Given name first, as when the two form fields are filled the wrong way round."""
    parsed = parse_name(name)
    return parsed.given + parsed.family


def typo(name: str, rng: random.Random) -> str:
    """Replace one given-name character by an unrelated one (different sound)."""
    parsed = parse_name(name)
    i = len(parsed.family) + rng.randrange(len(parsed.given))
    sound = _sound(name[i])
    replacement = rng.choice([c for c in _ALL_GIVEN_CHARACTERS if _sound(c) != sound])
    return name[:i] + replacement + name[i + 1 :]


def drop_given_character(name: str, rng: random.Random) -> str | None:
    """Leave out one character of a two-character given name; None for shorter ones."""
    parsed = parse_name(name)
    if len(parsed.given) < 2:
        return None
    i = len(parsed.family) + rng.randrange(len(parsed.given))
    return name[:i] + name[i + 1 :]


def shift_birth_date(birth_date: date, rng: random.Random, max_days: int = 30) -> date:
    shift = rng.randint(1, max_days) * rng.choice((-1, 1))
    return birth_date + timedelta(days=shift)


_NameNoise = Callable[[str, random.Random], str | None]
_NAME_NOISES: dict[str, _NameNoise] = {
    "homophone": homophone_substitute,
    "swap": lambda name, _rng: swap_family_given(name),
    "typo": lambda name, rng: typo(name, rng) if len(parse_name(name).given) >= 2 else None,
    "drop": drop_given_character,
}


def make_noisy_report(child: SyntheticChild, rng: random.Random, *, as_of: date) -> tuple[ChildFacts, tuple[str, ...]]:
    """What a report might say about `child`, and the list of noises applied."""
    noises: list[str] = []
    name = child.name
    kind = rng.choices(("none", "homophone", "swap", "typo", "drop"), weights=(30, 25, 10, 20, 15))[0]
    if kind != "none":
        noisy = _NAME_NOISES[kind](name, rng)
        if noisy is None:  # not applicable to this name (e.g. a one-character given name)
            kind, noisy = "homophone", homophone_substitute(name, rng)
        if noisy is not None and noisy != name:
            name = noisy
            noises.append(kind)

    birth_date: date | None = child.birth_date
    approximate_age: int | None = None
    roll = rng.random()
    if roll < 0.25:
        birth_date = shift_birth_date(child.birth_date, rng)
        noises.append("birth date shifted")
    elif roll < 0.35:
        birth_date = None
        approximate_age = max(0, age_in_years(child.birth_date, as_of) + rng.choice((0, 0, 0, -1, 1)))
        noises.append("age instead of birth date")
    elif roll < 0.40:
        birth_date = None
        noises.append("no birth date")

    guardians = list(child.guardian_names)
    roll = rng.random()
    if roll < 0.4:
        guardians = [rng.choice(guardians)]
        noises.append("one guardian")
    elif roll < 0.6:
        guardians = []
        noises.append("no guardian")
    elif roll < 0.7:
        guardians = [_surname(rng) + _given_name(rng, rng.choice((Sex.MALE, Sex.FEMALE)))]
        noises.append("another carer named")  # a grandparent or neighbour, not in the register

    roll = rng.random()
    division: str | None = child.residence_code
    if roll < 0.2:
        division = child.residence_code[:9] + "299"
        noises.append("other village")
    elif roll < 0.4:
        division = rng.choice(list(FANGSHAN_TOWNS))
        noises.append("found elsewhere in the district")
    elif roll < 0.5:
        division = None
        noises.append("no location")

    keep_identity = child.identity_number is not None and rng.random() < 0.3
    facts = ChildFacts(
        name=name,
        identity_key=blind_key(child.identity_number) if keep_identity and child.identity_number else None,
        birth_date=birth_date,
        approximate_age=approximate_age,
        age_observed_on=as_of if approximate_age is not None else None,
        sex=child.sex if rng.random() < 0.95 else None,
        guardian_names=tuple(guardians),
        division_code=division,
        school=child.school if rng.random() < 0.4 else None,
    )
    return facts, tuple(noises)


# --- the matching benchmark ---------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledProbe:
    facts: ChildFacts
    true_record_id: str | None  # None: the child is not in the register
    noises: tuple[str, ...]


@dataclass(frozen=True)
class MatchingDataset:
    register: list[SyntheticChild]
    probes: list[LabelledProbe]


def generate_matching_dataset(
    *,
    records: int = 2000,
    duplicates: int = 300,
    outsiders: int = 300,
    seed: int = 2014,
    as_of: date = date(2024, 6, 1),
) -> MatchingDataset:
    """A register of `records` children; noisy reports of `duplicates` of them; and reports of
    `outsiders` children who are not in the register (often siblings of children who are)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    children = generate_children(records + outsiders, rng=rng, as_of=as_of)
    held_out = set(rng.sample(range(len(children)), outsiders))
    register = [c for i, c in enumerate(children) if i not in held_out]
    reported: list[tuple[SyntheticChild, str | None]] = [(c, c.record_id) for c in rng.sample(register, duplicates)]
    reported += [(children[i], None) for i in sorted(held_out)]
    probes = []
    for child, true_record_id in reported:
        facts, noises = make_noisy_report(child, rng, as_of=as_of)
        probes.append(LabelledProbe(facts, true_record_id, noises))
    return MatchingDataset(register=register, probes=probes)


@dataclass(frozen=True)
class MatchQuality:
    true_positives: int
    false_positives: int
    false_negatives: int
    candidates_scored: int
    missed: tuple[LabelledProbe, ...]  # planted duplicates not found, to look at

    @property
    def precision(self) -> float:
        called = self.true_positives + self.false_positives
        return self.true_positives / called if called else 1.0

    @property
    def recall(self) -> float:
        planted = self.true_positives + self.false_negatives
        return self.true_positives / planted if planted else 1.0


def measure_match_quality(dataset: MatchingDataset, threshold: float = DEFAULT_THRESHOLD) -> MatchQuality:
    """Each probe is matched to its best candidate scoring >= threshold (as MatchChild would)."""
    register = {child.record_id: child.facts() for child in dataset.register}
    index: dict[str, list[str]] = defaultdict(list)
    for record_id, facts in register.items():
        for key in index_keys(facts):
            index[key].append(record_id)

    true_positives = false_positives = false_negatives = scored = 0
    missed: list[LabelledProbe] = []
    for probe in dataset.probes:
        candidate_ids = {record_id for key in lookup_keys(probe.facts) for record_id in index.get(key, ())}
        scored += len(candidate_ids)
        best = rank_candidates(
            probe.facts,
            ((i, register[i]) for i in sorted(candidate_ids)),
            min_score=threshold,
            limit=1,
            name_count=lambda key: len(index.get(key, ())),
        )
        called = best[0].record_id if best else None
        if called is not None and called == probe.true_record_id:
            true_positives += 1
            continue
        if called is not None:
            false_positives += 1
        if probe.true_record_id is not None:
            false_negatives += 1
            missed.append(probe)
    return MatchQuality(true_positives, false_positives, false_negatives, scored, tuple(missed))
