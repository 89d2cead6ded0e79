"""Interleaved timing rounds: every loaded variant of one target times a block of runs in turn (ABC, BCA, CAB, ...),
so a slow minute of a shared machine hits every variant alike instead of whichever ran then.

Rounds go on past the minimum (the user's timed runs per variant, and at least :data:`MIN_ROUNDS` rounds) until
every variant's median is known to within ``precision`` (default +-5%) and the resolution (below) reaches 5%,
the statistics' practical threshold, or the time cap is reached.

The interval of a variant's median is distribution-free: the order-statistics (binomial) 95% interval of its
**round medians**. Runs within a round are not independent (a neighbour's burst slows a whole block); round
medians are much closer to independent, so their spread is what the interval reflects. Six rounds is the
fewest for which such an interval exists at 95% (with five, [min, max] covers only 93.8%).

The **resolution** of a target is the smallest relative latency difference the measurement can tell apart now:
two medians are told apart when their intervals do not overlap, i.e. when they differ by more than the sum of
their relative half-widths; the resolution is that sum for the two least precise variants (twice the
half-width with one variant). Pure Python (no scipy): it runs in the run's own process.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from optimizer.errors import TargetError

MIN_ROUNDS = 6
INTERVAL_METHOD = "order statistics of round medians (95%)"


class Session(Protocol):
    def request(self, cmd: dict[str, Any], timeout_s: float) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RoundsPolicy:
    min_runs: int = 50  # timed runs per variant before the precision is even checked (the user's timed_runs)
    block_runs: int = 10  # timed runs per variant per round
    precision: float = 0.05  # wanted: every median's interval within +-5% of it
    time_cap_s: float = 20.0  # past the minimum, no more rounds after this long (per target)
    # Also go on (within the cap) until differences this large (in %) can be resolved: the statistics'
    # practical threshold, so that on a machine quiet enough a verdict is "same" rather than "unresolved".
    resolve_pct: float | None = 5.0
    min_rounds: int = MIN_ROUNDS
    max_rounds: int = 1000
    request_timeout_s: float = 120.0

    @property
    def rounds_needed(self) -> int:
        return max(self.min_rounds, math.ceil(self.min_runs / self.block_runs))


def order_statistic_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median from order statistics (exact binomial, p = 1/2), the same
    indices as ``scipy.stats.binom.ppf`` / ``isf`` give: [x(low), x(high+1)] of the sorted values."""
    ordered = sorted(float(v) for v in values)
    n = len(ordered)
    if n == 0:
        raise ValueError("order_statistic_interval: expected at least one value")
    tail = Fraction(1 - level).limit_denominator(100_000) / 2
    total, cumulative = 2**n, 0
    low = high = None
    for k in range(n + 1):
        cumulative += math.comb(n, k)
        if low is None and cumulative >= tail * total:
            low = k
        if high is None and total - cumulative <= tail * total:
            high = k
            break
    assert low is not None and high is not None
    return ordered[max(0, low - 1)], ordered[min(n - 1, high)]


def resolution_pct(half_widths: Sequence[float]) -> float | None:
    """The smallest relative difference (in %) two medians must differ by to have non-overlapping intervals:
    the sum of the two largest relative half-widths (twice the one with a single variant)."""
    widths = sorted((w for w in half_widths if w is not None and math.isfinite(w)), reverse=True)
    if not widths:
        return None
    return 100 * (widths[0] + widths[1] if len(widths) > 1 else 2 * widths[0])


@dataclass
class VariantTiming:
    """One variant's timings on one target, round by round."""

    name: str
    timings_ms: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)
    error: str | None = None
    loadavg: list[float] | None = None

    def add_round(self, timings: list[float]) -> None:
        self.timings_ms.extend(timings)
        self.round_medians.append(statistics.median(timings))

    @property
    def median(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% interval from the round medians, widened to hold the median of all timings should that
        fall outside it (rare; the reported median and its interval then stay consistent, conservatively)."""
        if len(self.round_medians) < MIN_ROUNDS:
            return None
        low, high = order_statistic_interval(self.round_medians)
        return min(low, self.median), max(high, self.median)

    @property
    def half_width(self) -> float | None:
        """The interval's larger distance from the median, relative to the median (None: not enough rounds)."""
        interval = self.interval
        if interval is None or not self.timings_ms or self.median <= 0:
            return None
        return max(self.median - interval[0], interval[1] - self.median) / self.median

    @property
    def round_cv(self) -> float | None:
        """Coefficient of variation of the round medians: how much the machine drifted between rounds."""
        if len(self.round_medians) < 2:
            return None
        mean = statistics.fmean(self.round_medians)
        return statistics.pstdev(self.round_medians) / mean if mean > 0 else None

    def figures(self) -> dict[str, Any]:
        """The row's round figures (the interval as the median's interval of the row)."""
        interval, width = self.interval, self.half_width
        return {
            "latency_rounds": len(self.round_medians), "latency_runs": len(self.timings_ms),
            "latency_ms_p50_ci_low": interval[0] if interval else None,
            "latency_ms_p50_ci_high": interval[1] if interval else None,
            "latency_interval_method": INTERVAL_METHOD,
            "latency_half_width_pct": 100 * width if width is not None else None,
            "latency_round_cv": self.round_cv, "round_medians_ms": list(self.round_medians),
        }


@dataclass
class RoundsResult:
    variants: dict[str, VariantTiming]
    rounds: int
    precision_met: bool
    elapsed_s: float
    precision: float
    loadavg_before: list[float] | None = None
    loadavg_after: list[float] | None = None

    @property
    def resolution_pct(self) -> float | None:
        return resolution_pct([w for v in self.measured() if (w := v.half_width) is not None])

    def measured(self) -> list[VariantTiming]:
        return [v for v in self.variants.values() if v.error is None and v.timings_ms]

    def summary(self) -> dict[str, Any]:
        """The target's figures for the manifest."""
        resolution = self.resolution_pct
        note = None
        if resolution is not None and resolution > 100 * self.precision:
            note = f"latency differences below {resolution:.0f}% cannot be resolved on this machine now"
        return {"rounds": self.rounds, "precision_met": self.precision_met, "precision_pct": 100 * self.precision,
                "resolution_pct": resolution, "rounds_s": round(self.elapsed_s, 3),
                "interval_method": INTERVAL_METHOD, "loadavg_before": self.loadavg_before,
                "loadavg_after": self.loadavg_after, "latency_note": note}


def stop_now(variants: Sequence[VariantTiming], rounds_done: int, elapsed_s: float,
             policy: RoundsPolicy) -> tuple[bool, bool]:
    """(stop, precision met) after ``rounds_done`` rounds: never before the minimum; then once every measured
    variant's interval is within +-precision and the resolution reaches ``resolve_pct``, or when the time cap
    or the round limit is reached."""
    active = [v for v in variants if v.error is None]
    if not active:
        return True, False
    widths = [v.half_width for v in active]
    met = all(w is not None and w <= policy.precision for w in widths)
    if rounds_done < policy.rounds_needed and rounds_done < policy.max_rounds:
        return False, met
    resolution = resolution_pct([w for w in widths if w is not None])
    resolved = policy.resolve_pct is None or (resolution is not None and resolution <= policy.resolve_pct)
    return (met and resolved) or elapsed_s >= policy.time_cap_s or rounds_done >= policy.max_rounds, met


def run_rounds(sessions: Mapping[str, Session], policy: RoundsPolicy = RoundsPolicy(),
               clock: Callable[[], float] = time.monotonic, loadavg_before: list[float] | None = None,
               cancelled: Callable[[], bool] = lambda: False) -> RoundsResult:
    """Time every loaded session in interleaved rounds (the order rotates each round); a session that fails
    (timeout, crash) keeps its error and drops out, the others go on. ``cancelled`` is asked between rounds:
    a cancelled run stops with a TargetError."""
    names = list(sessions)
    variants = {name: VariantTiming(name) for name in names}
    started = clock()
    rounds, met, loadavg_after = 0, False, loadavg_before
    while True:
        shift = rounds % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            timing = variants[name]
            if timing.error is not None:
                continue
            try:
                reply = sessions[name].request({"cmd": "time", "runs": policy.block_runs}, policy.request_timeout_s)
                timing.add_round([float(t) for t in reply["timings_ms"]])
                timing.loadavg = loadavg_after = reply.get("loadavg") or loadavg_after
            except (TargetError, KeyError, TypeError, ValueError) as exc:
                timing.error = str(exc) if isinstance(exc, TargetError) else f"bad time reply: {exc}"
        rounds += 1
        if cancelled():
            raise TargetError("cancelled while timing")
        stop, met = stop_now(list(variants.values()), rounds, clock() - started, policy)
        if stop:
            break
    return RoundsResult(variants, rounds, met, clock() - started, policy.precision, loadavg_before, loadavg_after)
