"""The Compare page's trade-off chart as an ECharts option: what the Plotly chart of the same run shows (points,
colours, label positions, front, recommended ring, budget fading), in the units people read (KB/MB, %), as
plain JSON."""

import json
import math

import pandas as pd
import pytest

from optimizer.report.charts import Budget, plotly_tradeoff, tradeoff_of
from optimizer.report.echarts import tradeoff_option
from optimizer.report.style import percent_range, variant_colour


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "variant": ["float32", "float16", "int8", "int16x8", "broken"],
        "kind": ["float32", "float16", "int8", "int16x8", "int8"],
        "status": ["ok", "ok", "ok", "ok", "failed"],
        "size_bytes": [6_000_000.0, 3_000_000.0, 1_600_000.0, 1_700_000.0, None],
        "latency_ms_p50": [2.0, 2.1, 0.8, 30.0, None],
        "latency_ms_p95": [2.4, 2.5, 1.0, 36.0, None],
        "accuracy": [0.97, 0.97, 0.96, 0.90, None],
        "accuracy_delta": [0.0, 0.0, -0.01, -0.07, None],
    })


def _variants(option: dict) -> dict[str, dict]:
    """Each variant's own series (the ones with a label)."""
    return {s["label"]["formatter"]: s for s in option["series"] if s["type"] == "scatter" and s.get("label")}


def test_one_series_per_measured_variant_in_its_colour_in_mb_and_ms():
    option = tradeoff_option(tradeoff_of(_frame(), "size_bytes", "latency_ms_p50"))
    json.dumps(option)  # plain JSON: st.echarts_chart takes no JavaScript
    variants = _variants(option)
    assert sorted(variants) == ["float16", "float32", "int16x8", "int8"]  # the failed one has no point
    mb = 1024 ** 2
    assert variants["int8"]["data"] == [[pytest.approx(1_600_000 / mb), pytest.approx(0.8)]]
    assert variants["int8"]["itemStyle"]["color"] == variant_colour("int8", "int8")
    assert option["xAxis"]["name"] == "File size (MB) (lower is better)"
    assert option["title"]["text"] == "Latency p50 (ms) vs File size (MB)"
    assert "File size (bytes): 1,600,000" in variants["int8"]["tooltip"]["formatter"]


def test_the_axes_are_those_of_the_plotly_chart():
    chart = tradeoff_of(_frame(), "latency_ms_p50", "accuracy")
    option, figure = tradeoff_option(chart), plotly_tradeoff(chart)
    x, y = option["xAxis"], option["yAxis"]
    assert figure.layout.xaxis.type == "log" and x["type"] == "log"  # 0.8 to 30 ms: more than 10x
    assert x["axisLabel"]["customValues"] == pytest.approx(list(figure.layout.xaxis.tickvals))
    assert x["min"] < 0.8 < 30 < x["max"]
    low, high = percent_range([0.97, 0.97, 0.96, 0.90])
    assert (y["type"], y["min"], y["max"]) == ("value", pytest.approx(100 * low), pytest.approx(100 * high))
    assert y["axisLabel"]["formatter"] == "{value}%" and y["max"] == 100
    assert _variants(option)["int16x8"]["data"] == [[pytest.approx(30.0), pytest.approx(90.0)]]


def test_labels_go_where_the_plotly_chart_puts_them():
    chart = tradeoff_of(_frame(), "size_bytes", "accuracy")
    figure = plotly_tradeoff(chart)
    plotly_positions = {t.text[0]: t.textposition for t in figure.data if t.mode == "markers+text"}
    for point in chart.points:
        assert plotly_positions[point.variant] == point.label_position
    labels = {name: s["label"] for name, s in _variants(tradeoff_option(chart)).items()}
    for point in chart.points:
        vertical, horizontal = point.label_position.split()
        label = labels[point.variant]
        if horizontal == "center":
            assert label["position"] == vertical
        elif vertical == "middle":
            assert label["position"] == horizontal
        else:  # past a corner: anchored at it, growing away from the marker
            assert label["align"] == ("left" if horizontal == "right" else "right")
            assert label["verticalAlign"] == ("bottom" if vertical == "top" else "top")


def test_a_corner_label_is_anchored_past_the_marker():
    from optimizer.report.charts import TradeoffPoint
    from optimizer.report.echarts import _point_label

    label = _point_label(TradeoffPoint("int8", 1.0, 1.0, "#000", 12.0, True, "top right"))
    assert (label["position"], label["align"], label["verticalAlign"]) == ([14.0, -2], "left", "bottom")
    label = _point_label(TradeoffPoint("int8", 1.0, 1.0, "#000", 12.0, False, "bottom left"))
    assert (label["position"], label["align"], label["verticalAlign"]) == ([-2, 14.0], "right", "top")
    assert label["opacity"] < 1  # outside the budget: faded with its point


def test_budget_front_and_recommendation():
    chart = tradeoff_of(_frame(), "size_bytes", "latency_ms_p50", Budget(max_size_bytes=2_000_000))
    option = tradeoff_option(chart)
    names = [s["name"] for s in option["series"]]
    assert "float32 (outside budget)" in names and "float16 (outside budget)" in names and "int8" in names
    assert _variants(option)["float32"]["itemStyle"]["opacity"] < 1 == _variants(option)["int8"]["itemStyle"]["opacity"]
    [front] = [s for s in option["series"] if s["name"] == "Pareto front"]
    assert front["type"] == "line" and len(front["data"]) == len(chart.front) == 1  # int8 beats every other
    [ring] = [s for s in option["series"] if s["name"].startswith("recommended: ")]
    assert ring["name"] == f"recommended: {chart.recommended.variant}" and ring["z"] < front["z"]
    assert option["legend"]["data"] == names


def test_one_point_still_has_an_axis_around_it():
    one = _frame().iloc[[2]]
    option = tradeoff_option(tradeoff_of(one, "size_bytes", "latency_ms_p50"))
    for axis in (option["xAxis"], option["yAxis"]):
        assert math.isfinite(axis["min"]) and axis["min"] < axis["max"]


def test_names_with_braces_are_shown_literally():
    named = _frame().assign(variant=["float32", "float16", "int8{calib}", "int16x8", "broken"])
    option = tradeoff_option(tradeoff_of(named, "size_bytes", "latency_ms_p50"))
    [series] = [s for s in option["series"] if s.get("label", {}).get("formatter", "").startswith("int8")]
    assert series["label"]["formatter"] == "int8(calib)"  # "{calib}" would be an ECharts placeholder
    assert "{" not in series["tooltip"]["formatter"] and "int8(calib)" in series["tooltip"]["formatter"]
