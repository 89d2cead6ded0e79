"""Statistics checked against small examples worked by hand."""

import numpy as np
import pytest

from optimizer.measure.stats import (
    accuracy_significance,
    bootstrap_delta_interval,
    compare_latency,
    mcnemar_exact,
    median_interval,
    prediction_flips,
)


def test_mcnemar_by_hand():
    # 10 samples: both right on 4, right only under the reference on 5 (b), only under the variant on 1 (c).
    reference = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    variant = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1], dtype=bool)
    result = mcnemar_exact(reference, variant)
    assert (result["mcnemar_b"], result["mcnemar_c"]) == (5, 1)
    # Exact two-sided binomial: 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * (1 + 6) / 64 = 14/64.
    assert result["mcnemar_p"] == pytest.approx(14 / 64)
    assert mcnemar_exact(reference, reference)["mcnemar_p"] == 1.0


def test_mcnemar_detects_a_real_drop():
    reference = np.ones(200, dtype=bool)
    variant = reference.copy()
    variant[:20] = False  # 20 discordant pairs, all one way: 2 * 0.5**20
    result = accuracy_significance(reference, variant)
    assert result["mcnemar_p"] == pytest.approx(2 * 0.5**20)
    assert result["accuracy_verdict"] == "significant"
    assert result["accuracy_delta_ci_high"] < 0


def test_bootstrap_interval_contains_the_delta_and_is_degenerate_without_change():
    rng = np.random.default_rng(0)
    reference = rng.random(500) < 0.9
    variant = reference.copy()
    variant[:10] = ~variant[:10]
    low, high = bootstrap_delta_interval(reference, variant)
    delta = variant.mean() - reference.mean()
    assert low <= delta <= high and high - low < 0.05
    assert bootstrap_delta_interval(reference, reference) == (0.0, 0.0)


def test_median_interval_by_hand():
    # n = 50: binomial(50, 1/2) 2.5% quantile is 18 and upper is 32, so the interval is x(18)..x(33) (1-based).
    values = list(range(1, 51))
    assert median_interval(values) == (18.0, 33.0)


def test_latency_comparison_respects_overlap():
    rng = np.random.default_rng(0)
    base = rng.normal(10, 0.5, 100).tolist()
    assert compare_latency(base, rng.normal(10.05, 0.5, 100).tolist()) == "same"
    assert compare_latency(base, rng.normal(5, 0.5, 100).tolist()) == "faster"
    assert compare_latency(base, rng.normal(20, 0.5, 100).tolist()) == "slower"


def test_prediction_flips_counted_exactly():
    reference = np.array([0, 1, 2, 2, 1, 0, 3])
    variant = np.array([0, 2, 2, 1, 1, 3, 3])
    labels = np.array([0, 1, 2, 1, 1, 0, 3])
    flips = prediction_flips(reference, variant, labels)
    assert flips.indices == [1, 3, 5] and flips.count == 3
    assert flips.by_true_class == {"0": 1, "1": 2}


def test_tiny_latency_differences_are_not_called_faster():
    base = [1.00 + 0.001 * (i % 3) for i in range(60)]
    slightly = [0.98 + 0.001 * (i % 3) for i in range(60)]  # intervals apart, but only 2% faster
    assert compare_latency(base, slightly) == "same"


def test_bootstrap_by_hand_when_every_pair_moves_the_same_way():
    # Reference right and variant wrong on all 5 samples: every resample's mean difference is exactly -1.
    assert bootstrap_delta_interval(np.ones(5, dtype=bool), np.zeros(5, dtype=bool)) == (-1.0, -1.0)
    # Two samples, one lost: resample means can only be -1, -0.5 or 0; the 95% interval spans them all.
    low, high = bootstrap_delta_interval(np.array([True, True]), np.array([True, False]))
    assert (low, high) == (-1.0, 0.0)


def test_the_exact_mcnemar_p_value_is_scipys_binomial_test_without_scipy():
    from scipy import stats as scipy_stats

    from optimizer.measure.stats import binomial_two_sided_half

    for n in (1, 2, 7, 40, 333, 2500):
        for k in {0, 1, n // 5, n // 2, n}:
            expected = scipy_stats.binomtest(min(k, n - k), n, 0.5).pvalue
            assert abs(binomial_two_sided_half(min(k, n - k), n) - expected) <= 1e-12 * max(expected, 1e-300)
