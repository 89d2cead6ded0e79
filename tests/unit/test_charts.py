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
    assert recommend(frame, Budget(max_accuracy_drop=0.005)) == "float16"  # faster p95 than float32
    assert recommend(frame, Budget(max_size_bytes=50)) is None
    passes = Budget(max_size_bytes=150).passes(frame.iloc[:4])
    assert passes.tolist() == [False, False, True, True]


def test_tradeoff_figure_has_one_point_per_measured_variant():
    figure = tradeoff_figure(_frame(), "size_bytes", "latency_ms_p50", Budget(max_size_bytes=150))
    points = [t for t in figure.data if t.mode == "markers+text"]
    names = sorted(v for t in points for v in t.text)
    assert names == ["float16", "float32", "int8", "slow_small"]
    inside = next(t for t in points if t.name == "within budget")
    assert sorted(inside.text) == ["int8", "slow_small"]
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
