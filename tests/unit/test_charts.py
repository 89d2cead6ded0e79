import pandas as pd
import pytest

from optimizer.report.charts import METRICS, Budget, pareto_front, recommend, tradeoff_figure
from optimizer.report.html import html_report


def _frame():
    return pd.DataFrame({
        "variant": ["float32", "float16", "int8", "slow_small", "broken"],
        "status": ["ok", "ok", "ok", "ok", "failed"],
        "size_bytes": [400.0, 200.0, 100.0, 90.0, None],
        "latency_ms_p50": [1.0, 1.0, 0.5, 3.0, None],
        "latency_ms_p95": [1.2, 1.1, 0.6, 3.5, None],
        "accuracy": [0.97, 0.97, 0.96, 0.90, None],
        "accuracy_delta": [0.0, 0.0, -0.01, -0.07, None],
    })


def test_pareto_front_by_hand():
    front = pareto_front(_frame().iloc[:4], METRICS["size_bytes"], METRICS["latency_ms_p50"])
    assert list(front["variant"]) == ["slow_small", "int8"]  # float16/float32 are beaten by int8 on both
    front = pareto_front(_frame().iloc[:4], METRICS["latency_ms_p50"], METRICS["accuracy"])
    assert set(front["variant"]) == {"int8", "float32", "float16"}


def test_budget_and_recommendation():
    frame = _frame()
    assert recommend(frame, Budget()) == "int8"
    assert recommend(frame, Budget(max_accuracy_drop=0.005)) == "float16"  # smaller than float32, as accurate
    assert recommend(frame, Budget(max_size_bytes=50)) is None
    passes = Budget(max_size_bytes=150).passes(frame.iloc[:4])
    assert passes.tolist() == [False, False, True, True]


def test_tradeoff_figure_has_one_point_per_measured_variant():
    figure = tradeoff_figure(_frame(), "size_bytes", "latency_ms_p50", Budget(max_size_bytes=150))
    points = [t for t in figure.data if t.mode == "markers+text"]
    names = sorted(v for t in points for v in t.text)
    assert names == ["float16", "float32", "int8", "slow_small"]
    inside = [t.text[0] for t in points if t.opacity == 1 and not t.name.endswith("(outside budget)")]
    assert sorted(inside) == ["int8", "slow_small"]
    assert {t.name for t in points if t.opacity < 1} == {"float32 (outside budget)", "float16 (outside budget)"}
    assert any(t.name == "Pareto front" for t in figure.data)
    assert any(t.name == "recommended: int8" for t in figure.data)


def test_html_report_is_self_contained():
    rows = _frame().to_dict("records")
    for row in rows:
        row["timings_ms"] = [1.0, 1.1]
    page = html_report(rows, {"model": {"file_name": "m.keras"}, "created_at": "now"})
    assert page.startswith("<!doctype html>") and "m.keras" in page
    assert "plotly" in page.lower() and "<script" in page and "src=\"http" not in page


def test_pareto_front_and_charts_of_a_run_with_nothing_measured():
    import pandas as pd

    from optimizer.report.charts import METRICS, pareto_front, tradeoff_figure

    failed = pd.DataFrame([{"variant": "float32", "status": "failed", "error": "converter crashed"}])
    assert pareto_front(failed, METRICS["size_bytes"], METRICS["latency_ms_p50"]).empty
    unmeasured = failed.assign(size_bytes=[None], latency_ms_p50=[None])
    assert pareto_front(unmeasured, METRICS["size_bytes"], METRICS["latency_ms_p50"]).empty
    tradeoff_figure(unmeasured, "size_bytes", "latency_ms_p50")  # draws an empty chart, no KeyError


def _two_head_rows() -> list[dict]:
    """Rows of a model with a classification output ``digit`` (the headline) and a regression output ``ink``."""
    def row(name, size, latency, digit, ink, classes):
        return {"variant": name, "kind": name, "status": "ok", "size_bytes": size, "latency_ms_p50": latency,
                "latency_ms_p95": latency, "accuracy": digit, "per_class_accuracy": classes, "headline_output": "digit",
                "per_output": {"digit": {"metric": "accuracy", "accuracy": digit, "per_class_accuracy": classes},
                               "ink": {"metric": "mae", "mae": ink, "rmse": ink}}}

    return [row("float32", 400.0, 1.0, 0.9, 0.30, {"0": 0.9, "1": 0.9}),
            row("int8", 100.0, 0.5, 0.8, 0.10, {"0": 0.7, "1": 0.9}),  # worse digit accuracy, better ink MAE
            row("float16", 200.0, 0.9, 0.9, 0.35, {"0": 0.9, "1": 0.9})]


def test_metric_of_a_column_names_the_output_and_keeps_its_direction():
    from optimizer.errors import InvalidOption
    from optimizer.report.charts import metric_of

    assert metric_of("accuracy") is METRICS["accuracy"]
    ink = metric_of("ink: mae")
    assert (ink.column, ink.label, ink.lower_is_better) == ("ink: mae", "ink: Mean absolute error", True)
    assert metric_of("head: one: accuracy").label == "head: one: Accuracy"  # an output name may hold ": "
    with pytest.raises(InvalidOption, match="ink: wobble"):
        metric_of("ink: wobble")


def test_quality_metric_is_the_headline_unless_an_output_is_named():
    from optimizer.report.charts import quality_metric, scored_outputs
    from optimizer.report.results import to_frame

    assert quality_metric(_frame()).column == "accuracy"  # one output: as before
    assert quality_metric(_frame().assign(accuracy=None, mae=0.2)).column == "mae"
    assert scored_outputs(_frame()) == []
    frame = to_frame(_two_head_rows())
    assert scored_outputs(frame) == ["digit", "ink"]
    assert quality_metric(frame).column == "accuracy"
    assert quality_metric(frame, "digit").column == "digit: accuracy"
    assert quality_metric(frame, "ink").column == "ink: mae"
    assert quality_metric(frame, "no_such_output") is None


def test_tradeoff_figure_plots_the_chosen_output_metric_in_its_own_direction():
    from optimizer.report.results import to_frame

    frame = to_frame(_two_head_rows())
    figure = tradeoff_figure(frame, "latency_ms_p50", "ink: mae")
    assert figure.layout.yaxis.title.text == "ink: Mean absolute error (lower is better)"
    assert figure.layout.title.text == "ink: Mean absolute error vs Latency p50 (ms)"
    points = {v: y for t in figure.data if t.mode == "markers+text" for v, y in zip(t.text, t.y, strict=True)}
    assert points == {"float32": 0.30, "int8": 0.10, "float16": 0.35}
    from optimizer.report.charts import metric_of

    latency = METRICS["latency_ms_p50"]
    assert list(pareto_front(frame, latency, metric_of("ink: mae"))["variant"]) == ["int8"]  # lowest MAE, fastest
    assert list(pareto_front(frame, latency, metric_of("digit: accuracy"))["variant"]) == ["int8", "float16"]
    assert tradeoff_figure(frame, "latency_ms_p50", "digit: accuracy").layout.yaxis.title.text == \
        "digit: Accuracy (higher is better)"


def test_per_class_chart_and_html_report_follow_the_chosen_output():
    from optimizer.report.charts import per_class_delta_figure

    rows = _two_head_rows()
    headline = per_class_delta_figure(rows)
    digit = per_class_delta_figure(rows, output="digit")
    assert [list(t.y) for t in headline.data] == [list(t.y) for t in digit.data]
    assert [list(t.y) for t in digit.data] == [pytest.approx([-20.0, 0.0]), [0.0, 0.0]]
    assert digit.layout.title.text == "Accuracy change per class against float32 (output digit)"
    assert per_class_delta_figure(rows, output="ink").data == ()  # a regression output has no classes

    page = html_report(rows, {"model": {"file_name": "two_heads.keras"}}, output="ink")
    assert "ink: Mean absolute error (lower is better)" in page and "<th>ink: mae</th>" in page
    assert "Accuracy (higher is better)" not in page and "Accuracy change per class" not in page
    assert "Accuracy (higher is better)" in html_report(rows, {})  # by default: the headline output, digit


# --- Charts that read at a glance (issue 11) -------------------------------------------------------------------

def _points(figure) -> dict:
    """The labelled points of a trade-off chart: variant -> its trace."""
    return {t.text[0]: t for t in figure.data if t.mode == "markers+text"}


def test_a_latency_axis_spanning_more_than_ten_times_is_logarithmic():
    from optimizer.report.style import wants_log

    spread = _frame().assign(latency_ms_p50=[0.02, 0.03, 0.01, 0.5, None])  # 50x
    figure = tradeoff_figure(spread, "latency_ms_p50", "accuracy")
    assert figure.layout.xaxis.type == "log"
    assert 0.01 in figure.layout.xaxis.tickvals and "0.02" in figure.layout.xaxis.ticktext  # plain numbers
    assert tradeoff_figure(_frame(), "latency_ms_p50", "accuracy").layout.xaxis.type is None  # 6x: linear
    assert tradeoff_figure(spread, "size_bytes", "latency_ms_p50").layout.yaxis.type == "log"
    assert not wants_log([0.0, 5.0]) and wants_log([0.1, 1.01]) and not wants_log([0.1, 1.0])


def test_accuracy_axes_are_in_percent_from_a_bit_below_the_lowest_value_to_100():
    figure = tradeoff_figure(_frame(), "latency_ms_p50", "accuracy")
    axis = figure.layout.yaxis
    assert axis.tickformat.endswith("%")
    low, high = axis.range
    assert high == 1.0 and 0.8 <= low < 0.90  # the lowest accuracy is 0.90
    assert "%{y:.2%}" in _points(figure)["int8"].hovertemplate
    perfect = _frame().assign(accuracy=[1.0, 1.0, 0.995, 0.999, None])
    low, high = tradeoff_figure(perfect, "size_bytes", "accuracy").layout.yaxis.range
    assert high == 1.0 and 0.97 <= low < 0.995  # never above 100%, however close the points are to it


def test_labels_of_three_points_at_nearly_the_same_place_do_not_overlap():
    from optimizer.report.style import label_positions

    names = ["dynamic_range", "int8", "int8_io"]
    positions = label_positions([1.0, 1.0, 1.001], [0.5, 0.5, 0.5001], names, x_range=[0, 2], y_range=[0, 1])
    assert len(set(positions)) == 3 and "top center" not in positions[1:]
    _assert_room_between([(1.0, 0.5), (1.0, 0.5), (1.0005, 0.5001)], names, positions)
    assert label_positions([1.0, 1.5], [0.5, 0.5], names[:2], x_range=[0, 2], y_range=[0, 1]) == \
        ["top center", "top center"]  # far apart: both keep the preferred position
    assert label_positions([1.0], [1.0], ["int8"], x_range=[0, 2], y_range=[0, 1]) == ["bottom center"]  # at 100%
    close = pd.DataFrame({
        "variant": ["float32", "float16", "dynamic_range", "int8", "int8_io"], "status": ["ok"] * 5,
        "size_bytes": [344432.0, 175660.0, 93000.0, 93100.0, 93050.0],
        "latency_ms_p50": [0.029, 0.029, 0.009, 0.0091, 0.009], "latency_ms_p95": [0.03] * 5})
    points = _points(tradeoff_figure(close, "size_bytes", "latency_ms_p50"))
    cluster = [points[name].textposition for name in ("dynamic_range", "int8", "int8_io")]
    assert len(set(cluster)) == 3
    assert points["float32"].textposition == "top center"  # a point alone keeps the preferred position


def test_a_variant_has_the_same_colour_in_every_chart():
    from optimizer.report.charts import latency_distribution_figure, per_class_delta_figure
    from optimizer.report.style import variant_colour

    rows = [{"variant": name, "kind": name, "status": "ok", "size_bytes": size, "latency_ms_p50": 1.0,
             "latency_ms_p95": 1.0, "accuracy": 0.9, "timings_ms": [1.0, 1.1], "per_class_accuracy": classes}
            for name, size, classes in (("float32", 400.0, {"0": 0.9}), ("int8", 100.0, {"0": 0.8}),
                                        ("my_int8", 90.0, {"0": 0.85}))]
    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in ("timings_ms", "per_class_accuracy")}
                          for r in rows])
    scatter = {name: t.marker.color for name, t in _points(tradeoff_figure(frame, "size_bytes", "accuracy")).items()}
    boxes = {t.name: t.marker.color for t in latency_distribution_figure(rows).data}
    bars = {t.name: t.marker.color for t in per_class_delta_figure(rows).data}
    assert scatter["int8"] == boxes["int8"] == bars["int8"] == variant_colour("int8")
    assert scatter["my_int8"] == boxes["my_int8"] == bars["my_int8"]
    assert len({scatter["float32"], scatter["int8"]}) == 2
    assert variant_colour("A:int8", "int8") == variant_colour("int8")  # History's prefixed names: by kind


def test_the_pareto_front_is_a_thick_line_with_markers_over_the_points_in_the_legend():
    figure = tradeoff_figure(_frame(), "size_bytes", "latency_ms_p50")
    names = [t.name for t in figure.data]
    front = figure.data[names.index("Pareto front")]
    assert front.mode == "lines+markers" and front.line.width >= 3 and front.showlegend
    assert list(front.x) == [90.0, 100.0]  # slow_small, int8
    last_point = max(i for i, t in enumerate(figure.data) if t.mode == "markers+text")
    assert names.index("Pareto front") > last_point  # drawn over the points
    single = tradeoff_figure(_frame().iloc[[2]], "size_bytes", "latency_ms_p50")  # a front of one point is drawn
    assert [t.name for t in single.data if t.name == "Pareto front"] == ["Pareto front"]


def test_no_per_class_change_is_said_in_words():
    from optimizer.report.charts import per_class_delta_figure

    rows = [{"variant": name, "kind": name, "status": "ok", "per_class_accuracy": {"0": 0.9, "1": 0.8}}
            for name in ("float32", "float16", "int8")]
    figure = per_class_delta_figure(rows)
    assert figure.data == ()
    [note] = figure.layout.annotations
    assert "No per-class change" in note.text and "float16, int8" in note.text
    assert figure.layout.xaxis.visible is False
    rows[2]["per_class_accuracy"] = {"0": 0.7, "1": 0.8}
    some = per_class_delta_figure(rows)
    assert [t.name for t in some.data] == ["float16", "int8"]
    assert any("No change in any class: float16" in a.text for a in some.layout.annotations)
    no_reference = per_class_delta_figure(rows[1:])
    assert no_reference.data == () and "float32" in no_reference.layout.annotations[0].text


def test_one_slow_timed_run_does_not_set_the_latency_axis():
    from optimizer.report.charts import latency_distribution_figure

    rows = [{"variant": "float32", "kind": "float32", "status": "ok", "timings_ms": [1.0, 1.1, 0.9, 1.05, 80.0]},
            {"variant": "int8", "kind": "int8", "status": "ok", "timings_ms": [0.5, 0.55, 0.45, 0.52]}]
    figure = latency_distribution_figure(rows)
    low, high = figure.layout.yaxis.range
    assert high < 2 and low >= 0 and figure.layout.yaxis.type is None
    assert [t.boxpoints for t in figure.data] == ["outliers", "outliers"]
    assert "1 timed run(s) beyond the axis" in figure.layout.annotations[0].text
    rows.append({"variant": "slow", "kind": "float16", "status": "ok", "timings_ms": [30.0, 31.0, 29.0]})
    assert latency_distribution_figure(rows).layout.yaxis.type == "log"  # whiskers span 0.45..31 ms


def test_labels_keep_some_room_between_them_where_there_is_room():
    """Boxes that merely touch in the placement model could overlap in a chart drawn a few pixels differently
    (ECharts on Compare): where a free position exists, every two labels are CLEARANCE_PX apart or more."""
    from optimizer.report.charts import tradeoff_of
    from optimizer.report.style import _normalised

    demo = pd.DataFrame({  # the default demo's figures in one CI run: int8 and int8_io almost on one spot
        "variant": ["float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8"], "status": ["ok"] * 6,
        "size_bytes": [477184.0, 243712.0, 127898.0, 132096.0, 131072.0, 135168.0],
        "latency_ms_p50": [0.264, 0.262, 0.0854, 0.111, 0.114, 6.97], "latency_ms_p95": [0.3] * 6})
    chart = tradeoff_of(demo, "size_bytes", "latency_ms_p50")
    assert chart.y_axis.get("type") == "log"
    xs = _normalised([p.x for p in chart.points], False, None)
    ys = _normalised([p.y for p in chart.points], True, None)
    _assert_room_between(list(zip(xs, ys, strict=True)), [p.variant for p in chart.points],
                         [p.label_position for p in chart.points])


def _assert_room_between(points: list[tuple[float, float]], names: list[str], positions: list[str]) -> None:
    """Every two labels (12 px markers; points as fractions of the plotting area) are CLEARANCE_PX apart."""
    from optimizer.report.style import CLEARANCE_PX, PLOT_PX, _label_box

    boxes = [_label_box(x, y, name, position, 6.0) for (x, y), name, position in zip(points, names, positions,
                                                                                  strict=True)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            gap_x = max(b.left - a.right, a.left - b.right) * PLOT_PX[0]
            gap_y = max(b.bottom - a.top, a.bottom - b.top) * PLOT_PX[1]
            assert max(gap_x, gap_y) >= CLEARANCE_PX, (a, b)
