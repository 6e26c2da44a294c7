"""Matching quality on noise it was not tuned on, beside the previous scoring, in the same run.

Two generators: the registry's own (services/registry/domain/synthetic.py, the set the weights are fitted
on) and an independent one (bench/noisy_reports.py: other names, other families, other noise: one wrong
character, homophones, nicknames 小/阿 + a given-name character, a birth date off by a day, day and month
swapped, only an age, an identity number with one wrong digit). MatchChild is run in memory as the service
runs it: the blocking keys, candidate choice as choose_candidates ranks it (selective keys first, then the
most keys shared, MAX_CANDIDATES_SCORED kept), name counts, CANDIDATE_MIN_SCORE, AUTO_MATCH_LIMIT; the
automatic link as reporting makes it (exactly one candidate scoring at least 0.9).

Figures, for the current scoring (services/registry/domain/matching.py) beside the previous one
(bench/previous_matching.py, a frozen copy): on the held-out generator without identity numbers, top-1
accuracy (the first candidate is the child), recall of the child among the first five, precision of the
automatic link (over every report, children absent from the register included) and how many reports were
linked at once; top-1 by kind of noise; the same on the fitting generator.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from bench import noisy_reports, previous_matching
from bench.runner import Figure, print_figures
from services.registry.domain import matching, synthetic
from services.registry.domain.codes import Sex
from services.registry.domain.identity import is_valid_identity_number
from services.registry.service_layer.matching import AUTO_MATCH_LIMIT, CANDIDATE_MIN_SCORE, MAX_CANDIDATES_SCORED

AUTO_LINK_THRESHOLD = 0.9  # reporting's (ReportingService auto_link_threshold)
CHILDREN = int(os.environ.get("BENCH_MATCH_CHILDREN", "3000"))
REPORTS = int(os.environ.get("BENCH_MATCH_REPORTS", "800"))
SEEDS = (11, 12)  # never looked at while the scoring was changed (seed 7 was, to see what failed)


def blind(number: str) -> str:
    return hashlib.sha256(number.encode()).hexdigest()[:32]  # stands in for the service's keyed index


@dataclass
class Outcome:
    registered: int = 0
    top1: int = 0
    top5: int = 0
    linked: int = 0
    linked_right: int = 0
    by_kind: Counter[str] | None = None
    of_kind: Counter[str] | None = None

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.registered if self.registered else 0.0

    @property
    def top5_rate(self) -> float:
        return self.top5 / self.registered if self.registered else 0.0

    @property
    def precision(self) -> float:
        return self.linked_right / self.linked if self.linked else 1.0


Probe = tuple[Any, str | None, str]  # (facts, the child's id or None, kind of noise)


def evaluate(module: ModuleType, register: dict[str, Any], probes: Iterable[Probe]) -> Outcome:
    index: dict[str, list[str]] = defaultdict(list)
    for child_id, facts in register.items():
        for key in module.index_keys(facts):
            index[key].append(child_id)
    outcome = Outcome(by_kind=Counter(), of_kind=Counter())
    for facts, truth, kind in probes:
        ranked = _match(module, index, register, facts)
        strong = [r for r in ranked if r.result.score >= AUTO_LINK_THRESHOLD]
        if len(strong) == 1:
            outcome.linked += 1
            outcome.linked_right += strong[0].record_id == truth
        if truth is None:
            continue
        outcome.registered += 1
        assert outcome.of_kind is not None and outcome.by_kind is not None
        outcome.of_kind[kind] += 1
        if ranked and ranked[0].record_id == truth:
            outcome.top1 += 1
            outcome.by_kind[kind] += 1
        outcome.top5 += any(r.record_id == truth for r in ranked[:5])
    return outcome


def _match(module: ModuleType, index: dict[str, list[str]], register: dict[str, Any], facts: Any) -> list[Any]:
    """choose_candidates and rank_candidates, in memory."""
    shared: Counter[str] = Counter()
    selective: set[str] = set()
    for key in module.lookup_keys(facts):
        for child_id in index.get(key, ()):
            shared[child_id] += 1
            if key.startswith(("id:", "gd:")):
                selective.add(child_id)
    chosen = sorted(shared, key=lambda c: (c not in selective, -shared[c], c))[:MAX_CANDIDATES_SCORED]
    counts: Callable[[str], int] = lambda key: len(index.get(key, ()))  # noqa: E731
    return list(
        module.rank_candidates(
            facts,
            ((c, register[c]) for c in chosen),
            min_score=CANDIDATE_MIN_SCORE,
            limit=AUTO_MATCH_LIMIT,
            name_count=counts,
        )
    )


# -- the held-out generator, as the service would see its reports ------------------------------------------


def _held_out(module: ModuleType, dataset: noisy_reports.Dataset) -> tuple[dict[str, Any], list[Probe]]:
    sex = {"m": Sex.MALE, "f": Sex.FEMALE}
    register = {
        c.child_id: module.ChildFacts(
            name=c.name,
            identity_key=blind(c.identity_number) if c.identity_number else None,
            birth_date=c.birth_date,
            sex=sex[c.sex],
            guardian_names=c.parents,
            division_code=c.village,
            school=c.school,
        )
        for c in dataset.register
    }
    probes: list[Probe] = []
    for item in dataset.reports:
        r = item.report
        probes.append(
            (
                module.ChildFacts(
                    name=r.name,
                    identity_key=blind(r.identity_number) if r.identity_number else None,
                    birth_date=r.birth_date,
                    approximate_age=r.approximate_age,
                    age_observed_on=dataset.as_of if r.approximate_age is not None else None,
                    sex=sex[r.sex] if r.sex else None,
                    guardian_names=r.guardian_names,
                    division_code=r.division_code,
                    school=r.school,
                    **_near_keys(module, r.identity_number),
                ),
                item.child_id,
                item.noise,
            )
        )
    return register, probes


def _near_keys(module: ModuleType, number: str | None) -> dict[str, Any]:
    """The blind keys of the numbers one digit away, where the scoring reads them (as the service gives them)."""
    if not number or not hasattr(module, "one_digit_away") or is_valid_identity_number(number):
        return {}  # as MatchUseCases._near_keys: only a number that fails its check
    return {"identity_near_keys": frozenset(blind(n) for n in module.one_digit_away(number))}


def _fitting(dataset: synthetic.MatchingDataset) -> tuple[dict[str, Any], list[Probe]]:
    register = {c.record_id: c.facts() for c in dataset.register}
    return register, [(p.facts, p.true_record_id, "fitting") for p in dataset.probes]


def _pooled(outcomes: list[Outcome]) -> Outcome:
    pooled = Outcome(by_kind=Counter(), of_kind=Counter())
    for o in outcomes:
        pooled.registered += o.registered
        pooled.top1 += o.top1
        pooled.top5 += o.top5
        pooled.linked += o.linked
        pooled.linked_right += o.linked_right
        assert pooled.by_kind is not None and pooled.of_kind is not None
        pooled.by_kind.update(o.by_kind or {})
        pooled.of_kind.update(o.of_kind or {})
    return pooled


def run() -> list[Figure]:
    held_out = [
        noisy_reports.without_identity_numbers(noisy_reports.generate(children=CHILDREN, reports=REPORTS, seed=s))
        for s in SEEDS
    ]
    with_numbers = [noisy_reports.generate(children=CHILDREN, reports=REPORTS, seed=s) for s in SEEDS]
    fitting = [synthetic.generate_matching_dataset(records=CHILDREN, duplicates=REPORTS // 2, seed=s) for s in SEEDS]
    results: dict[str, dict[str, Outcome]] = {}
    for label, module in (("current", matching), ("previous", previous_matching)):
        results[label] = {
            "held out, no identity number": _pooled([evaluate(module, *_held_out(module, d)) for d in held_out]),
            "held out, as reported": _pooled([evaluate(module, *_held_out(module, d)) for d in with_numbers]),
            "fitting generator": _pooled([evaluate(module, *_fitting(d)) for d in fitting]),
        }
    now, before = results["current"], results["previous"]
    figures: list[Figure] = []
    for dataset in now:
        n, b = now[dataset], before[dataset]
        figures += [
            Figure(f"{dataset}: top-1", n.top1_rate, "previous scoring", b.top1_rate, "share", True),
            Figure(f"{dataset}: child in top 5", n.top5_rate, "previous scoring", b.top5_rate, "share", True),
            Figure(f"{dataset}: auto-link precision", n.precision, "previous scoring", b.precision, "share", True),
            Figure(f"{dataset}: auto-linked", n.linked, "previous scoring", b.linked, "reports", True),
        ]
    n, b = now["held out, no identity number"], before["held out, no identity number"]
    assert n.of_kind is not None and n.by_kind is not None and b.by_kind is not None
    for kind in noisy_reports.NOISES:
        if kind != "identity number one digit wrong" and n.of_kind[kind]:
            figures.append(
                Figure(
                    f"  top-1, {kind}",
                    n.by_kind[kind] / n.of_kind[kind],
                    "previous scoring",
                    b.by_kind[kind] / n.of_kind[kind],
                    "share",
                    True,
                )
            )
    n, b = now["held out, as reported"], before["held out, as reported"]
    assert n.of_kind is not None and n.by_kind is not None and b.by_kind is not None
    kind = "identity number one digit wrong"
    figures.append(
        Figure(
            f"  top-1, {kind}",
            n.by_kind[kind] / n.of_kind[kind],
            "previous scoring",
            b.by_kind[kind] / n.of_kind[kind],
            "share",
            True,
        )
    )
    return figures


def main() -> None:
    print_figures(
        f"matching quality: {len(SEEDS)} seeds x {CHILDREN} children in one town, {REPORTS} reports of register"
        " children and 300 of absent ones each",
        run(),
    )


if __name__ == "__main__":
    main()
