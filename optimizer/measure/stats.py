"""Is a difference real? Paired tests on per-sample correctness, bootstrap intervals, latency intervals,
and prediction flips, all from the saved outputs of a run (pure numpy)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05
# Below this relative change of the median a latency difference is not worth a word on a shared machine.
PRACTICAL_LATENCY_CHANGE = 0.05


def mcnemar_exact(reference_correct: np.ndarray, variant_correct: np.ndarray) -> dict[str, float | int]:
    """Exact (binomial) McNemar test: of the samples where exactly one model is right, is the split 50/50?

    ``b`` = right only under the reference, ``c`` = right only under the variant; two-sided p-value.
    """
    reference_correct = np.asarray(reference_correct, dtype=bool)
    variant_correct = np.asarray(variant_correct, dtype=bool)
    b = int(np.sum(reference_correct & ~variant_correct))
    c = int(np.sum(~reference_correct & variant_correct))
    return {"mcnemar_b": b, "mcnemar_c": c, "mcnemar_p": binomial_two_sided_half(min(b, c), b + c)}


def binomial_two_sided_half(k: int, n: int) -> float:
    """Exact two-sided binomial p-value of ``k`` or fewer successes in ``n`` at p = 1/2 (symmetric: twice the
    lower tail, at most 1), as scipy.stats.binomtest gives it, in exact integers (no scipy import: ~0.6 s)."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    return float(min(1.0, 2 * tail / 2**n))


def bootstrap_delta_interval(reference_correct: np.ndarray, variant_correct: np.ndarray, resamples: int = 2000,
                             seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Paired percentile bootstrap interval of accuracy(variant) - accuracy(reference)."""
    difference = np.asarray(variant_correct, dtype=np.float64) - np.asarray(reference_correct, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(difference), size=(resamples, len(difference)))
    means = difference[picks].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def median_interval(timings: list[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median from order statistics (binomial), as used for benchmarks."""
    from optimizer.targets.rounds import order_statistic_interval

    return order_statistic_interval(np.asarray(timings, dtype=np.float64).tolist(), level)


# The verdict when the measurement cannot tell the two latencies apart: the difference is below the target's
# resolution (see optimizer.targets.rounds), which is itself coarser than PRACTICAL_LATENCY_CHANGE.
UNRESOLVED = "unresolved"


def compare_latency(reference: list[float], variant: list[float], *,
                    reference_interval: tuple[float, float] | None = None,
                    variant_interval: tuple[float, float] | None = None,
                    resolution_pct: float | None = None) -> str:
    """'faster', 'slower' or 'same' against the reference: overlapping median intervals, or medians within
    5% of each other, are 'same'. The intervals are the rounds' (round medians) when given, else the order
    statistics of the timings. When the target cannot resolve 5% now (``resolution_pct`` above it), a change
    smaller than the resolution whose intervals overlap is 'unresolved', never 'same' or a ranking."""
    ref_low, ref_high = reference_interval or median_interval(reference)
    low, high = variant_interval or median_interval(variant)
    change = float(np.median(variant)) / float(np.median(reference)) - 1
    too_coarse = resolution_pct is not None and resolution_pct > 100 * PRACTICAL_LATENCY_CHANGE
    overlap = high >= ref_low and low <= ref_high
    if too_coarse and overlap and abs(change) * 100 < float(resolution_pct or 0):
        return UNRESOLVED
    if high < ref_low and change <= -PRACTICAL_LATENCY_CHANGE:
        return "faster"
    if low > ref_high and change >= PRACTICAL_LATENCY_CHANGE:
        return "slower"
    return "same"


@dataclass(frozen=True)
class Flips:
    """Evaluation samples whose predicted class changed against the reference."""

    indices: list[int]
    by_true_class: dict[str, int]

    @property
    def count(self) -> int:
        return len(self.indices)


def prediction_flips(reference_predicted: np.ndarray, variant_predicted: np.ndarray,
                     labels: np.ndarray | None = None) -> Flips:
    changed = np.flatnonzero(np.asarray(reference_predicted) != np.asarray(variant_predicted))
    by_class: dict[str, int] = {}
    if labels is not None:
        for index in changed:
            key = str(int(labels[index]))
            by_class[key] = by_class.get(key, 0) + 1
    return Flips([int(i) for i in changed], dict(sorted(by_class.items(), key=lambda kv: int(kv[0]))))


def accuracy_significance(reference_correct: np.ndarray, variant_correct: np.ndarray,
                          seed: int = 0) -> dict[str, Any]:
    """McNemar p-value, bootstrap interval of the delta, and the verdict the table shows."""
    result: dict[str, Any] = mcnemar_exact(reference_correct, variant_correct)
    low, high = bootstrap_delta_interval(reference_correct, variant_correct, seed=seed)
    result.update(accuracy_delta_ci_low=low, accuracy_delta_ci_high=high)
    result["accuracy_verdict"] = "significant" if result["mcnemar_p"] < ALPHA else "within noise"
    return result
