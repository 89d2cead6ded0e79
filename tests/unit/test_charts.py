import pandas as pd

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
