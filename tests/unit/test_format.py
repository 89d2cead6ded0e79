"""Numbers as people read them: the unit follows the magnitude, a missing value is an empty string."""

import math

import pytest

from optimizer.report.format import (
    byte_unit,
    format_bytes,
    format_latency,
    format_number,
    format_p,
    format_percent,
    format_points,
    format_ratio,
    latency_unit,
    round_significant,
)


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.0 KB"), (94_640, "92 KB"), (831_488, "812 KB"),
    (1_782_579, "1.7 MB"), (6_000_000, "5.7 MB"), (25 * 1024**2, "25 MB"), (3 * 1024**3, "3.0 GB"),
    (math.inf, "∞")])
def test_bytes_take_the_largest_unit_they_reach(size, text):
    assert format_bytes(size) == text


@pytest.mark.parametrize(("ms", "text"), [
    (0.048, "48 µs"), (0.0048, "4.8 µs"), (0.29, "290 µs"), (1.0, "1.0 ms"), (3.2, "3.2 ms"), (48.4, "48 ms"),
    (1500.0, "1.5 s")])
def test_latencies_are_in_microseconds_below_a_millisecond(ms, text):
    assert format_latency(ms) == text


def test_percentages_points_ratios_and_p_values():
    assert format_percent(0.96944) == "96.9%" and format_percent(1.0) == "100.0%"
    assert format_percent(0.96944, digits=2) == "96.94%"
    assert format_points(0.003) == "+0.3 pts" and format_points(-0.0044) == "-0.4 pts"
    assert format_points(0.0) == "0.0 pts" and format_points(-0.0001) == "0.0 pts"  # never "-0.0"
    assert format_ratio(3.64) == "3.6×" and format_ratio(12.4) == "12×" and format_ratio(math.inf) == "∞×"
    assert format_p(1.0) == "p=1.00" and format_p(0.031) == "p=0.031" and format_p(0.0004) == "p<0.001"
    assert format_number(0.123456) == "0.123" and format_number(12345.6) == "12,346"


@pytest.mark.parametrize("missing", [None, float("nan"), "text", True])
def test_missing_values_are_empty_strings(missing):
    for formatter in (format_bytes, format_latency, format_percent, format_points, format_ratio, format_p,
                      format_number):
        assert formatter(missing) == "", formatter
    assert round_significant(missing) is None


def test_units_for_a_column_and_significant_rounding():
    assert byte_unit(344_432) == ("KB", 1024) and byte_unit(6_000_000) == ("MB", 1024**2)
    assert byte_unit(None) == ("B", 1) and byte_unit(100) == ("B", 1)
    assert latency_unit(0.029) == ("µs", 1e-3) and latency_unit(3.2) == ("ms", 1.0)
    assert latency_unit(None) == ("ms", 1.0) and latency_unit(0.0) == ("ms", 1.0)
    assert round_significant(336.3593) == 336.0 and round_significant(0.09026) == 0.0903
    assert round_significant(0) == 0 and round_significant(math.inf) == math.inf
