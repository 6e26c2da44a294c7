"""An independent generator of a town's register and of noisy reports about its children.

Written apart from the registry's own generator (services/registry/domain/synthetic.py), on purpose: its
own surname and given-name lists, its own families (siblings and twins share surname, parents and
village), and its own noise, the kinds seen in hand-written and telephoned reports:

- one wrong character in the name (a slip of the pen or of the input method), birth date exact;
- a homophone (the same pinyin, another character), typed from a spoken name;
- a nickname: 小 or 阿 and one character of the given name, without the family name;
- a birth date off by a day, day and month swapped, or only an approximate age;
- an identity number with one wrong digit (area and birth-date parts still right, so it no longer checks);
- a parent named, or a grandparent (not in the register), or nobody; a neighbouring village.

Matching is tuned on the registry's generator; this one is the held-out noise it has not seen.
`Labelled.child_id` is None for a report of a child who is not in the register (a sibling, often).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cache

from pypinyin import lazy_pinyin

TOWN = "110111008"
VILLAGES = [f"{TOWN}{n:03d}" for n in range(201, 219)]
# Surnames weighted roughly as a northern town's: a few very common, a long tail.
COMMON_SURNAMES = "王李张刘赵杨"
OTHER_SURNAMES = (
    "许何吕施孔曹严华金魏陶姜谢邹喻柏窦章苏潘葛范彭鲁韦马苗方俞任袁柳鲍史唐费岑薛雷贺倪汤殷罗毕郝安常于傅"
    "齐康伍余顾孟黄穆萧尹姚邵汪祁毛狄米贝臧戴宋庞熊纪舒项祝董梁杜阮蓝闵席季贾路江童颜郭梅盛林钟徐邱骆高夏蔡田"
)
BOYS = "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘"
GIRLS = "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝丽阳妮宝贝初程梵罡恒鸿桦骅剑娇纪宽苛灵玛媚琪晴容睿烁堂唯威韦雯苇萱阅彦宇雨洋忠宗曼紫逸"
CARERS = "爷奶姥外"  # a grandparent's name is not in the register; only its first character is used below


@dataclass(frozen=True)
class Child:
    child_id: str
    name: str
    sex: str  # "m" or "f"
    birth_date: date
    identity_number: str | None
    village: str
    parents: tuple[str, ...]
    school: str | None


@dataclass(frozen=True)
class Report:
    name: str
    sex: str | None
    birth_date: date | None
    approximate_age: int | None
    identity_number: str | None
    division_code: str | None
    guardian_names: tuple[str, ...]
    school: str | None


@dataclass(frozen=True)
class Labelled:
    report: Report
    child_id: str | None  # None: not in the register
    noise: str  # the name/date/number noise applied, for the figures by kind


@dataclass(frozen=True)
class Dataset:
    register: list[Child]
    reports: list[Labelled]
    as_of: date


# --- identity numbers (GB 11643, computed here, not with the registry's code) ------------------------------

_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def _check_character(body: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def _identity_number(birth: date, sequence: int, sex: str) -> str:
    seq = sequence * 2 + (1 if sex == "m" else 0)  # odd for boys
    body = f"110111{birth:%Y%m%d}{seq % 1000:03d}"
    return body + _check_character(body)


def one_digit_wrong(number: str, rng: random.Random) -> str:
    """A slip in the sequence digits or the check character: area and birth date still agree."""
    position = rng.randrange(14, 18)
    digits = "0123456789" if position < 17 else "0123456789X"
    wrong = rng.choice([d for d in digits if d != number[position]])
    return number[:position] + wrong + number[position + 1 :]


# --- the register --------------------------------------------------------------------------------------


def _surname(rng: random.Random) -> str:
    return rng.choice(COMMON_SURNAMES) if rng.random() < 0.35 else rng.choice(OTHER_SURNAMES)


def _given(rng: random.Random, sex: str) -> str:
    pool = BOYS if sex == "m" else GIRLS
    return "".join(rng.sample(pool, 1 if rng.random() < 0.3 else 2))


def generate_register(count: int, rng: random.Random, as_of: date) -> list[Child]:
    children: list[Child] = []
    sequence = 0
    while len(children) < count:
        surname = _surname(rng)
        parents = (surname + _given(rng, "m"), _surname(rng) + _given(rng, "f"))
        village = rng.choice(VILLAGES)
        first_birth = as_of - timedelta(days=rng.randint(365, 17 * 365))
        size = rng.choices((1, 2, 3), weights=(55, 35, 10))[0]
        births = [first_birth]
        if size > 1 and rng.random() < 0.12:
            births.append(first_birth)  # twins
        while len(births) < size:
            births.append(births[-1] + timedelta(days=rng.randint(400, 1800)))
        names: set[str] = set()
        for birth in births:
            if birth >= as_of:
                continue
            sex = rng.choice("mf")
            name = surname + _given(rng, sex)
            while name in names:
                name = surname + _given(rng, sex)
            names.add(name)
            sequence += 1
            age = (as_of - birth).days // 365
            children.append(
                Child(
                    child_id=f"c{len(children):06d}",
                    name=name,
                    sex=sex,
                    birth_date=birth,
                    identity_number=_identity_number(birth, sequence, sex) if rng.random() < 0.9 else None,
                    village=village,
                    parents=parents,
                    school=f"良乡第{rng.randint(1, 6)}小学" if 6 <= age <= 12 else None,
                )
            )
    return children[:count]


# --- noise ---------------------------------------------------------------------------------------------


@cache
def _homophones() -> dict[str, tuple[str, ...]]:
    by_sound: dict[str, list[str]] = defaultdict(list)
    for ch in dict.fromkeys(BOYS + GIRLS + OTHER_SURNAMES + COMMON_SURNAMES + "雨宇语玉育予羽与"):
        by_sound[lazy_pinyin(ch)[0]].append(ch)
    return {ch: tuple(c for c in group if c != ch) for group in by_sound.values() for ch in group if len(group) > 1}


def homophone(name: str, rng: random.Random) -> str | None:
    places = [i for i, ch in enumerate(name) if i > 0 and ch in _homophones()]
    if not places:
        return None
    i = rng.choice(places)
    return name[:i] + rng.choice(_homophones()[name[i]]) + name[i + 1 :]


def wrong_character(name: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(name))  # the family name is the one written most carefully
    pool = BOYS + GIRLS
    return name[:i] + rng.choice([c for c in pool if lazy_pinyin(c) != lazy_pinyin(name[i])]) + name[i + 1 :]


def nickname(name: str, rng: random.Random) -> str:
    return rng.choice("小阿") + rng.choice(name[1:])


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def noisy_report(child: Child, rng: random.Random, as_of: date, kind: str) -> Report:
    name, number = child.name, child.identity_number
    birth: date | None = child.birth_date
    age: int | None = None
    if kind == "wrong character":
        name = wrong_character(name, rng)
    elif kind == "homophone":
        name = homophone(name, rng) or wrong_character(name, rng)
    elif kind == "nickname":
        name = nickname(name, rng)
    elif kind == "birth date off by a day":
        birth = child.birth_date + timedelta(days=rng.choice((-1, 1)))
    elif kind == "day and month swapped":
        day, month = child.birth_date.day, child.birth_date.month
        if day <= 12 and day != month:
            birth = child.birth_date.replace(month=day, day=month)
        else:
            birth = child.birth_date + timedelta(days=1)
    elif kind == "approximate age":
        birth, age = None, max(0, _age(child.birth_date, as_of) + rng.choice((0, 0, 1, -1)))
    elif kind == "identity number one digit wrong" and number:
        number = one_digit_wrong(number, rng)
    roll = rng.random()
    guardians: tuple[str, ...] = ()
    if roll < 0.35:
        guardians = (rng.choice(child.parents),)
    elif roll < 0.55:
        guardians = (_surname(rng) + _given(rng, rng.choice("mf")),)  # a grandparent or neighbour
    division = child.village if rng.random() < 0.6 else (rng.choice(VILLAGES) if rng.random() < 0.5 else TOWN)
    keep_number = kind == "identity number one digit wrong" or rng.random() < 0.25
    return Report(
        name=name,
        sex=child.sex if rng.random() < 0.9 else None,
        birth_date=birth,
        approximate_age=age,
        identity_number=number if keep_number else None,
        division_code=division,
        guardian_names=guardians,
        school=child.school if rng.random() < 0.2 else None,
    )


NOISES = (
    "none",
    "wrong character",
    "homophone",
    "nickname",
    "birth date off by a day",
    "day and month swapped",
    "approximate age",
    "identity number one digit wrong",
)


def generate(
    *, children: int = 3000, reports: int = 800, absent: int = 300, seed: int = 7, as_of: date = date(2026, 12, 1)
) -> Dataset:
    """A register of `children` (one town), `reports` noisy reports of register children (each noise kind
    equally often) and `absent` reports of children who are not in it (siblings left out of the register)."""
    rng = random.Random(seed)
    everyone = generate_register(children + absent, rng, as_of)
    left_out = set(rng.sample(range(len(everyone)), absent))
    register = [c for i, c in enumerate(everyone) if i not in left_out]
    labelled = [
        Labelled(noisy_report(child, rng, as_of, NOISES[i % len(NOISES)]), child.child_id, NOISES[i % len(NOISES)])
        for i, child in enumerate(rng.sample(register, reports))
    ]
    for i in sorted(left_out):
        kind = rng.choice(NOISES)
        labelled.append(Labelled(noisy_report(everyone[i], rng, as_of, kind), None, kind))
    return Dataset(register, labelled, as_of)


def without_identity_numbers(dataset: Dataset) -> Dataset:
    """The same reports with no identity number: what matching must do on names, dates and places alone."""
    return replace(
        dataset,
        reports=[replace(item, report=replace(item.report, identity_number=None)) for item in dataset.reports],
    )
