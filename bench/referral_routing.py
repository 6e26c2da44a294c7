"""Routing decisions per second for the plan's full rule set (21 rules: escort groups, merging of one unit's
tasks, the fallback), beside a bare lookup of the same reports in a dict from situation to unit (what the first
routing of Python constants amounted to), in the same run on the same reports.

Also the preview (every rule's verdict and why) and the routing of a district whose rules are stored as a version
(read through the routing config's cache), to show what explaining and data cost over the bare decision.
"""

from __future__ import annotations

import os
import random
from datetime import date

from bench.runner import Figure, measure, print_figures
from services.referral.domain.agencies import DIRECTORY
from services.referral.domain.routing import (
    PLAN_RULES,
    ReportFacts,
    Urgency,
    explain,
    route,
    rule_from_dict,
    rule_to_dict,
)

REPORTS = int(os.environ.get("BENCH_ROUTING_REPORTS", "20000"))
DAY = date(2026, 12, 4)
SITUATIONS = sorted(
    {situation for rule in PLAN_RULES for situation in rule.any_of_situations} | {"no_effective_guardian"}
)
FACTS = ["child_alone", "injured", "minor_offences", "begging_with_adults"]


def reports(count: int, seed: int = 11) -> list[ReportFacts]:
    """A mix like the pilot's: one to three situations, a fact or two, an age most of the time, some urgent."""
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        situations = frozenset(rng.sample(SITUATIONS, rng.randint(1, 3)))
        facts = frozenset(rng.sample(FACTS, rng.randint(0, 2)))
        urgency = rng.choice([Urgency.NORMAL, Urgency.NORMAL, Urgency.URGENT, Urgency.CRISIS])
        age = rng.choice([None, *range(3, 18)])
        made.append(ReportFacts(situations, facts, urgency, urgency is Urgency.CRISIS, age))
    return made


def run() -> list[Figure]:
    sample = reports(REPORTS)
    # The baseline: one unit per situation, first rule wins, nothing else looked at.
    lookup: dict[str, str] = {}
    for rule in PLAN_RULES:
        for situation in rule.any_of_situations:
            lookup.setdefault(situation, rule.agency_code)

    def bare(i: int) -> object:
        return {lookup.get(situation, "town_government") for situation in sample[i % REPORTS].situations}

    def decide(i: int) -> object:
        return route(sample[i % REPORTS], DAY, PLAN_RULES, DIRECTORY)

    def preview(i: int) -> object:
        return explain(sample[i % REPORTS], DAY, PLAN_RULES, DIRECTORY)

    stored = tuple(rule_from_dict(rule_to_dict(rule), DAY, DIRECTORY) for rule in PLAN_RULES)

    def from_version(i: int) -> object:
        return route(sample[i % REPORTS], DAY, stored, DIRECTORY)

    baseline = measure(bare, REPORTS).per_second
    return [
        Figure(
            "routing decisions/s (plan rules)",
            measure(decide, REPORTS).per_second,
            "bare dict lookup",
            baseline,
            "/s",
            True,
        ),
        Figure(
            "previews/s (every rule's verdict)",
            measure(preview, REPORTS).per_second,
            "bare dict lookup",
            baseline,
            "/s",
            True,
        ),
        Figure(
            "routing decisions/s (stored version)",
            measure(from_version, REPORTS).per_second,
            "bare dict lookup",
            baseline,
            "/s",
            True,
        ),
    ]


def main() -> None:
    print_figures(f"referral routing: {REPORTS} synthetic reports, {len(PLAN_RULES)} rules", run())


if __name__ == "__main__":
    main()
