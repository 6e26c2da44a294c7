"""`python -m bench`: run every benchmark and print each figure beside its same-run baseline."""

from __future__ import annotations

import sys

from bench import (
    benefits_run,
    crisis_to_inbox,
    matching_quality,
    notify_delivery,
    portal_pages,
    referral_routing,
    referral_streams,
    registry_call,
    registry_match,
    relay_wakeup,
    reporting_throughput,
    survey_import,
)

BENCHMARKS = {
    "registry_call": registry_call.main,
    "reporting_throughput": reporting_throughput.main,
    "relay_wakeup": relay_wakeup.main,
    "registry_match": registry_match.main,
    "matching_quality": matching_quality.main,
    "crisis_to_inbox": crisis_to_inbox.main,
    "survey_import": survey_import.main,
    "benefits_run": benefits_run.main,
    "notify_delivery": notify_delivery.main,
    "portal_pages": portal_pages.main,
    "referral_routing": referral_routing.main,
    "referral_streams": referral_streams.main,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in chosen:
        BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
