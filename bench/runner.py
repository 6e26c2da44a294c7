"""Timing helpers and the report format shared by every benchmark."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    baseline_name: str
    baseline: float
    unit: str
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


@dataclass(frozen=True)
class Latencies:
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    @property
    def per_second(self) -> float:
        return 1000.0 * len(self.samples_ms) / sum(self.samples_ms)


def measure(call: Callable[[int], object], count: int, warmup: int = 20) -> Latencies:
    for i in range(warmup):
        call(-1 - i)
    samples = []
    for i in range(count):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000.0)
    return Latencies(samples)


def print_figures(title: str, figures: list[Figure]) -> None:
    print(f"\n== {title}")
    print(f"{'figure':46} {'value':>12} {'baseline':>12} {'ratio':>8}  baseline is")
    for f in figures:
        print(f"{f.name:46} {f.value:12.3f} {f.baseline:12.3f} {f.ratio:8.2f}  {f.baseline_name} ({f.unit})")
