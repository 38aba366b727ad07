"""Percentiles and plain-text tables for the benchmark output (no measuring here)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

MIB = 1024 * 1024
MB = 1_000_000


@dataclass(frozen=True)
class Stats:
    """Summary of a series of samples (same unit as the samples)."""

    n: int
    p50: float
    p95: float
    mean: float
    minimum: float
    maximum: float


def summarize(samples: Sequence[float]) -> Stats:
    """p50/p95 with :func:`statistics.quantiles` (``method="inclusive"``: the sample is the population
    of interest, so p95 never extrapolates beyond the largest sample), plus mean, min and max."""
    if len(samples) < 2:
        raise ValueError("need at least two samples for percentiles")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return Stats(len(samples), cuts[49], cuts[94], statistics.fmean(samples), min(samples), max(samples))


def heading(title: str) -> None:
    """Print a section heading."""
    print(f"\n== {title} " + "=" * max(0, 76 - len(title)), flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` under ``headers``; the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))

    print(line(cells[0]))
    print("  ".join("-" * width for width in widths))
    for row in cells[1:]:
        print(line(row))
    print(flush=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)
