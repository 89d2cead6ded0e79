"""Interleaved rounds with hand-made timings: the interval of round medians, the stopping rule, the resolution,
the rotation of the order, a failing session, and what the statistics and the recommendation make of an
unresolved difference."""

from __future__ import annotations

import itertools

import pytest

from optimizer.errors import InvalidOption, TargetError
from optimizer.measure.stats import compare_latency
from optimizer.report.recommend import Evidence
from optimizer.report.results import VariantResult
from optimizer.targets.base import parse_target
from optimizer.targets.rounds import (
    RoundsPolicy,
    VariantTiming,
    order_statistic_interval,
    resolution_pct,
    run_rounds,
    stop_now,
)


class FakeSession:
    """Answers ``time`` with the next block of a hand-made series; records the order it was asked in."""

    def __init__(self, name, blocks, log, fail_at=None):
        self.name, self.blocks, self.log, self.fail_at = name, iter(blocks), log, fail_at
        self.calls = 0

    def request(self, cmd, timeout_s):
        assert cmd["cmd"] == "time"
        self.calls += 1
        self.log.append(self.name)
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise TargetError(f"timed out after {timeout_s:.0f} s waiting for time on local")
        return {"ok": True, "timings_ms": next(self.blocks)[: cmd["runs"]], "loadavg": [0.5, 0.4, 0.3]}


def _steady(value, runs=10):
    return itertools.repeat([value] * runs)


def _timing(round_medians):
    timing = VariantTiming("v")
    for median in round_medians:
        timing.add_round([median] * 3)
    return timing


class Clock:
    def __init__(self, step):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


def test_the_interval_of_six_round_medians_is_their_range_and_five_give_none():
    timing = _timing([10, 11, 9, 10.5, 9.5])
    assert timing.interval is None and timing.half_width is None  # five rounds: [min, max] covers only 93.8%
    timing.add_round([12, 12, 12])
    assert timing.interval == (9, 12)
    assert timing.half_width == pytest.approx(max(10.25 - 9, 12 - 10.25) / 10.25)  # median of all 18 timings


def test_order_statistic_interval_by_hand():
    """n = 10: P(X <= 1) = 11/1024 < 2.5% <= P(X <= 2) = 56/1024: the 2nd and 9th order statistics."""
    assert order_statistic_interval(list(range(1, 11))) == (2, 9)


def test_resolution_is_the_sum_of_the_two_widest_half_widths():
    assert resolution_pct([0.01, 0.04, 0.02]) == pytest.approx(6.0)
    assert resolution_pct([0.03]) == pytest.approx(6.0)
    assert resolution_pct([]) is None


def test_steady_timings_stop_at_the_minimum_with_the_precision_met():
    log = []
    sessions = {"a": FakeSession("a", _steady(2.0), log), "b": FakeSession("b", _steady(4.0), log)}
    result = run_rounds(sessions, RoundsPolicy(min_runs=50, block_runs=10))
    assert result.rounds == 6  # 50 runs need 5 blocks of 10, and an interval needs 6 rounds
    assert result.precision_met and result.resolution_pct == 0
    assert all(len(v.timings_ms) == 60 for v in result.variants.values())
    assert log[:6] == ["a", "b", "b", "a", "a", "b"]  # the order rotates every round


def test_noisy_timings_go_on_until_the_time_cap_and_say_what_cannot_be_resolved():
    """Round medians alternating 8 and 12 ms: the interval stays about +-20%, never +-5%."""
    noisy = itertools.cycle([[8.0] * 10, [12.0] * 10])
    sessions = {"a": FakeSession("a", noisy, []), "b": FakeSession("b", _steady(10.0), [])}
    result = run_rounds(sessions, RoundsPolicy(min_runs=50, block_runs=10, time_cap_s=10), clock=Clock(0.5))
    assert not result.precision_met
    assert result.rounds == 20  # stopped by the 10 s cap: the fake clock advances 0.5 s per round
    summary = result.summary()
    assert summary["resolution_pct"] == pytest.approx(20.0) and "below 20%" in summary["latency_note"]


def test_a_variant_that_becomes_precise_later_is_waited_for():
    """b's first rounds swing, later ones are steady: the rounds go on past the minimum until b's interval
    (of its round medians) is within +-5%, then stop before the cap."""
    swinging = itertools.chain([[5.0] * 10, [15.0] * 10, [5.0] * 10], itertools.repeat([10.0] * 10))
    sessions = {"a": FakeSession("a", _steady(3.0), []), "b": FakeSession("b", swinging, [])}
    result = run_rounds(sessions, RoundsPolicy(min_runs=50, block_runs=10, time_cap_s=1e9))
    assert result.precision_met and result.rounds > 6
    assert result.variants["b"].half_width <= 0.05


def test_precision_met_but_too_coarse_to_resolve_five_percent_goes_on_until_the_cap():
    """Each median within +-4% (precision met), but two such intervals only tell apart differences above 8%:
    the rounds go on; at the cap the precision counts as met and the note names 8%."""
    swinging = [_timing([9.6, 10.4] * 5) for _ in range(2)]
    policy = RoundsPolicy(min_runs=50, block_runs=10, time_cap_s=30)
    assert stop_now(swinging, 10, elapsed_s=5, policy=policy) == (False, True)
    assert stop_now(swinging, 10, elapsed_s=31, policy=policy) == (True, True)
    assert stop_now(swinging, 10, elapsed_s=5, policy=RoundsPolicy(resolve_pct=None)) == (True, True)


def test_stop_rule_never_stops_before_the_minimum_even_past_the_cap():
    precise = [_timing([10.0] * 6)]
    policy = RoundsPolicy(min_runs=100, block_runs=10, time_cap_s=0)
    assert stop_now(precise, 6, elapsed_s=99, policy=policy) == (False, True)  # 100 runs need 10 rounds
    assert stop_now(precise, 10, elapsed_s=0, policy=policy) == (True, True)


def test_a_failing_session_fails_only_its_variant():
    sessions = {"a": FakeSession("a", _steady(2.0), [], fail_at=3), "b": FakeSession("b", _steady(4.0), [])}
    result = run_rounds(sessions, RoundsPolicy(min_runs=50, block_runs=10))
    assert "timed out" in result.variants["a"].error and sessions["a"].calls == 3
    assert result.variants["b"].error is None and len(result.variants["b"].timings_ms) == 60
    assert [v.name for v in result.measured()] == ["b"]


def test_a_difference_below_the_resolution_is_unresolved_not_same():
    reference, variant = [10.0] * 60, [10.4] * 60
    wide = ((9.0, 11.0), (9.4, 11.4))
    assert compare_latency(reference, variant, reference_interval=wide[0], variant_interval=wide[1],
                           resolution_pct=20.0) == "unresolved"
    assert compare_latency(reference, variant, reference_interval=wide[0], variant_interval=wide[1],
                           resolution_pct=4.0) == "same"  # the target resolves 5%: a 4% change is same
    assert compare_latency(reference, [5.0] * 60, reference_interval=wide[0], variant_interval=(4.8, 5.2),
                           resolution_pct=20.0) == "faster"  # intervals apart: resolved despite the noise


def _row(name, kind, p50, low, high, verdict):
    return VariantResult.from_row({"variant": name, "kind": kind, "status": "ok", "size_bytes": 1000,
                                   "latency_ms_p50": p50, "latency_ms_p50_ci_low": low,
                                   "latency_ms_p50_ci_high": high, "latency_verdict": verdict,
                                   "timings_ms": [p50]})


def test_an_unresolved_latency_never_decides_the_recommendation():
    float32 = _row("float32", "float32", 10.0, 8.0, 12.0, None)
    a = _row("a", "int8", 6.0, 5.9, 6.1, "faster")
    b = _row("b", "float16", 9.0, 7.0, 11.0, "unresolved")
    evidence = Evidence([float32, a, b])
    assert not evidence.faster(b, float32) and not evidence.faster(float32, b)
    assert not evidence.faster(a, b) and not evidence.faster(b, a)  # b's latency is not known well enough
    assert evidence.faster(a, float32)


def test_parse_target_normalises_and_refuses_clearly():
    assert parse_target("local").label == "local"
    spec = parse_target("ssh://pi@10.0.0.5", ssh_key="/home/me/.ssh/id_ed25519")
    assert spec.uri == "ssh://pi@10.0.0.5:22" and spec.label == "pi@10.0.0.5:22"
    assert spec.to_dict() == {"uri": "ssh://pi@10.0.0.5:22", "ssh_key": "/home/me/.ssh/id_ed25519",
                              "python": "python3"}
    for bad in ("pi@10.0.0.5", "ssh://10.0.0.5", "ssh://pi@host:99999", "ssh://pi@host;rm -rf"):
        with pytest.raises(InvalidOption, match="target"):
            parse_target(bad)


def test_a_cancelled_run_stops_between_rounds():
    sessions = {"a": FakeSession("a", _steady(2.0), [])}
    asked = iter([False, False, True])
    with pytest.raises(TargetError, match="cancelled"):
        run_rounds(sessions, RoundsPolicy(min_runs=50, block_runs=10), cancelled=lambda: next(asked))
    assert sessions["a"].calls == 3
