import random
from datetime import date

import pytest

from services.registry.domain.identity import parse_identity_number
from services.registry.domain.matching import DEFAULT_THRESHOLD, compare_names, parse_name
from services.registry.domain.rules import age_in_years
from services.registry.domain.synthetic import (
    FANGSHAN_TOWNS,
    SyntheticChild,
    drop_given_character,
    generate_children,
    generate_matching_dataset,
    homophone_substitute,
    measure_match_quality,
    shift_birth_date,
    swap_family_given,
    typo,
)

AS_OF = date(2024, 6, 1)


@pytest.fixture(scope="module")
def children() -> list[SyntheticChild]:
    return generate_children(1500, rng=random.Random(7), as_of=AS_OF)


def test_children_are_minors_with_valid_unique_identity_numbers(children: list[SyntheticChild]) -> None:
    assert len(children) == 1500
    assert len({c.record_id for c in children}) == 1500
    numbers = [c.identity_number for c in children if c.identity_number]
    assert len(numbers) == len(set(numbers))
    assert 0.8 < len(numbers) / len(children) < 1.0  # some children have no number recorded
    for child in children:
        assert 0 <= age_in_years(child.birth_date, AS_OF) < 18
        assert child.residence_code[:9] in FANGSHAN_TOWNS
        assert len(child.residence_code) == 12
        if child.identity_number:
            identity = parse_identity_number(child.identity_number, as_of=AS_OF)
            assert identity.birth_date == child.birth_date
            assert identity.sex is child.sex


def test_children_come_in_families(children: list[SyntheticChild]) -> None:
    families: dict[tuple[str, ...], list[str]] = {}
    for child in children:
        families.setdefault(child.guardian_names, []).append(child.name)
    assert any(len(names) > 1 for names in families.values())
    for (father_name, _mother_name), names in families.items():
        assert all(parse_name(n).family == parse_name(father_name).family for n in names)
        assert len(set(names)) == len(names)


def test_compound_surnames_occur(children: list[SyntheticChild]) -> None:
    assert any(len(parse_name(c.name).family) == 2 for c in children)


def test_generation_is_deterministic_for_a_seed() -> None:
    first = generate_children(50, rng=random.Random(1), as_of=AS_OF)
    again = generate_children(50, rng=random.Random(1), as_of=AS_OF)
    assert first == again


def test_homophone_substitution_keeps_the_sound() -> None:
    rng = random.Random(3)
    noisy = homophone_substitute("王小明", rng)
    assert noisy is not None and noisy != "王小明"
    assert parse_name(noisy).pinyin == parse_name("王小明").pinyin
    assert homophone_substitute("𠀀", rng) is None


def test_swap_typo_and_drop() -> None:
    rng = random.Random(5)
    assert swap_family_given("欧阳娜娜") == "娜娜欧阳"
    misspelt = typo("王小明", rng)
    assert len(misspelt) == 3 and misspelt[0] == "王"
    assert parse_name(misspelt).pinyin != parse_name("王小明").pinyin
    assert drop_given_character("王小明", rng) in {"王明", "王小"}
    assert drop_given_character("王明", rng) is None


def test_birth_date_shift_stays_within_the_tolerance() -> None:
    rng = random.Random(9)
    for _ in range(200):
        shifted = shift_birth_date(date(2015, 1, 1), rng)
        assert 1 <= abs((shifted - date(2015, 1, 1)).days) <= 30


def test_noisy_reports_differ_from_their_originals() -> None:
    dataset = generate_matching_dataset(records=200, duplicates=100, outsiders=20, seed=11)
    register = {c.record_id: c for c in dataset.register}
    planted = [p for p in dataset.probes if p.true_record_id is not None]
    assert len(planted) == 100 and len(dataset.probes) == 120
    assert len(dataset.register) == 200
    assert any("birth date shifted" in p.noises for p in planted)
    for probe in planted:
        assert probe.true_record_id is not None
        original = register[probe.true_record_id]
        if {"homophone", "swap", "typo", "drop"} & set(probe.noises):
            assert probe.facts.name != original.name
        assert probe.facts.name and compare_names(probe.facts.name, original.name).weight > 0


def test_precision_and_recall_on_planted_noisy_duplicates() -> None:
    """Per seed: 2,000 register records; 300 noisy reports of them and 300 reports of children who
    are not in the register (often their siblings); blocking keys + scoring at the default
    threshold. Four seeds are pooled, so the figure does not hang on one lucky draw."""
    totals = [0, 0, 0]
    for seed in (2014, 1, 2, 3):
        dataset = generate_matching_dataset(records=2000, duplicates=300, outsiders=300, seed=seed)
        quality = measure_match_quality(dataset, DEFAULT_THRESHOLD)
        print(
            f"seed {seed}: precision {quality.precision:.4f} recall {quality.recall:.4f} "
            f"(tp {quality.true_positives}, fp {quality.false_positives}, fn {quality.false_negatives}, "
            f"{quality.candidates_scored} candidates scored for {len(dataset.probes)} probes)"
        )
        totals = [
            a + b
            for a, b in zip(
                totals, (quality.true_positives, quality.false_positives, quality.false_negatives), strict=True
            )
        ]
    true_positives, false_positives, false_negatives = totals
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    figures = f"pooled: precision {precision:.4f} recall {recall:.4f} ({totals})"
    print(figures)
    assert precision >= 0.99, figures
    assert recall >= 0.95, figures
