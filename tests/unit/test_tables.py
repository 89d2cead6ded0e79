"""The results table for people: titles with units, the quality figure next to the variant, failures with their
reason, empty cells empty, a column picker for the rest (each output's column group included), and the HTML
report that opens with the recommendation."""

import math

import pytest

from optimizer.report.html import html_report
from optimizer.report.recommend import Budget, Priority
from optimizer.report.results import StoredRun
from optimizer.report.tables import extra_columns, human_table, status_text


def _rows() -> list[dict]:
    return [
        {"variant": "float32", "kind": "float32", "status": "ok", "error": None, "size_bytes": 344_432,
         "gzip_bytes": 316_100, "size_ratio": 1.0, "latency_ms_p50": 0.029, "latency_ms_p95": 0.035,
         "accuracy": 0.96944, "accuracy_delta": 0.0, "fidelity_snr_db": math.inf, "integer_only": False,
         "warnings": [], "timings_ms": [0.029, 0.03]},
        {"variant": "int8", "kind": "int8", "status": "ok", "error": "", "size_bytes": 94_640, "gzip_bytes": 86_182,
         "size_ratio": 94_640 / 344_432, "latency_ms_p50": 0.011, "latency_ms_p95": 0.013, "latency_verdict": "faster",
         "accuracy": 0.96944, "accuracy_delta": 0.0, "accuracy_verdict": "within noise", "mcnemar_p": 1.0, "flips": 2,
         "fidelity_snr_db": 30.123, "integer_only": True, "timings_ms": [0.011, 0.012]},
        {"variant": "int16x8", "kind": "int16x8", "status": "failed", "error": "calibration diverged"},
        {"variant": "dynamic_range", "kind": "dynamic_range", "status": "ok", "size_bytes": 100_000,
         "size_ratio": 0.29, "latency_ms_p50": 0.02, "latency_ms_p95": 0.03, "accuracy": 0.97,
         "error": "sold as integer-only but computes in float: FULLY_CONNECTED"},
    ]


def test_the_default_columns_have_units_and_the_accuracy_comes_next_to_the_variant():
    table = human_table(_rows())
    assert list(table.columns) == ["Variant", "Accuracy (%)", "Status", "Size (KB)", "× smaller than float32",
                                   "Latency p50 (µs)", "Latency vs float32", "Accuracy change (pts)",
                                   "Accuracy vs float32"]
    assert list(table["Variant"]) == ["float32", "int8", "int16x8", "dynamic_range"]
    first = table.iloc[0].to_dict()
    assert first["Accuracy (%)"] == 96.94 and first["Size (KB)"] == 336.0 and first["Latency p50 (µs)"] == 29.0
    assert first["Latency vs float32"] == "reference" and first["Accuracy vs float32"] == "reference"
    second = table.iloc[1].to_dict()
    assert second["× smaller than float32"] == 3.64 and second["Latency vs float32"] == "2.6× faster"
    assert second["Accuracy vs float32"] == "within noise (p=1.00)" and second["Size (KB)"] == 92.4


def test_failed_variants_say_why_and_their_cells_stay_empty(tmp_path):
    table = human_table(_rows())
    assert list(table["Status"]) == ["ok", "ok", "✗ failed: calibration diverged",
                                     "⚠ ok: sold as integer-only but computes in float: FULLY_CONNECTED"]
    failed = table.iloc[2]
    assert failed.drop(["Variant", "Status"]).isna().all()  # missing: shown as empty cells
    assert not table.map(lambda v: isinstance(v, str) and v.lower() in ("none", "nan")).any().any()
    skipped = StoredRun.from_record({"id": "r", "rows": [{"variant": "x", "status": "skipped"}]}, tmp_path)
    assert status_text(skipped.variants[0]) == "✗ skipped: no reason recorded"


def test_the_picker_offers_the_other_columns_that_hold_a_value():
    extras = extra_columns(_rows())
    assert extras == {"gzip_bytes": "gzip size (KB)", "latency_ms_p95": "Latency p95 (µs)", "mcnemar_p": "McNemar p",
                      "flips": "Prediction flips", "fidelity_snr_db": "SNR against float32 (dB)",
                      "integer_only": "Integer only"}
    table = human_table(_rows(), extra=["flips", "integer_only", "fidelity_snr_db", "no_such_column"])
    assert list(table.columns[-3:]) == ["Prediction flips", "SNR against float32 (dB)", "Integer only"]
    assert table["Prediction flips"].iloc[1] == 2 and table["SNR against float32 (dB)"].iloc[0] == math.inf
    assert table["SNR against float32 (dB)"].iloc[1] == 30.1 and list(table["Integer only"][:2]) == [False, True]


def test_a_budget_adds_within_budget_and_units_follow_the_magnitude():
    table = human_table(_rows(), Budget(max_size_bytes=99_000))
    assert list(table.columns[:4]) == ["Variant", "Accuracy (%)", "Status", "Within budget"]
    assert list(table["Within budget"]) == [False, True, False, False]
    assert "Within budget" not in human_table(_rows(), Budget()).columns  # no limit set
    big = [{**row, "size_bytes": row["size_bytes"] * 20, "latency_ms_p50": row["latency_ms_p50"] * 100}
           for row in _rows()[:2]]
    table = human_table(big)
    assert list(table["Size (MB)"]) == [6.57, 1.81] and list(table["Latency p50 (ms)"]) == [2.9, 1.1]


def test_without_labels_fidelity_sits_next_to_the_variant():
    rows = [{"variant": "float32", "kind": "float32", "status": "ok", "size_bytes": 1000, "latency_ms_p50": 1.0,
             "fidelity_top1_agreement": 1.0},
            {"variant": "int8", "kind": "int8", "status": "ok", "size_bytes": 300, "latency_ms_p50": 0.5,
             "fidelity_top1_agreement": 0.9912}]
    table = human_table(rows)
    assert list(table.columns[:3]) == ["Variant", "Top-1 agreement with float32 (%)", "Status"]
    assert list(table["Top-1 agreement with float32 (%)"]) == [100.0, 99.12]
    assert "Accuracy change (pts)" not in table.columns


def _two_heads() -> list[dict]:
    def row(name, digit, ink):
        return {"variant": name, "kind": name, "status": "ok", "size_bytes": 1000, "latency_ms_p50": 0.1,
                "accuracy": digit, "headline_output": "digit",
                "per_output": {"digit": {"accuracy": digit, "accuracy_delta": digit - 0.9, "flips": 1},
                               "ink": {"mae": ink, "rmse": ink * 1.2}}}

    return [row("float32", 0.9, 0.1), row("int8", 0.85, 0.15)]


def test_each_output_keeps_its_column_group_its_quality_by_default_the_rest_in_the_picker():
    table = human_table(_two_heads())
    assert {"digit: accuracy (%)", "digit: accuracy_delta (pts)", "ink: mae"} <= set(table.columns)
    assert list(table["digit: accuracy (%)"]) == [90.0, 85.0] and list(table["ink: mae"]) == [0.1, 0.15]
    extras = extra_columns(_two_heads())
    assert extras["ink: rmse"] == "ink: rmse" and extras["digit: flips"] == "digit: flips"
    assert list(human_table(_two_heads(), extra=["ink: rmse"])["ink: rmse"]) == pytest.approx([0.12, 0.18])


def test_the_stored_run_builds_the_same_table(tmp_path):
    run = StoredRun.from_record({"id": "r1", "status": "done", "rows": _rows()}, tmp_path)
    assert run.human_table(Budget(max_size_bytes=99_000), ["flips"]).equals(
        human_table(_rows(), Budget(max_size_bytes=99_000), ["flips"]))
    assert run.extra_columns() == extra_columns(_rows())


def test_the_html_report_opens_with_the_recommendation_and_the_table_for_people():
    page = html_report(_rows(), {"model": {"file_name": "m.keras"}}, Budget(), priority=Priority.SIZE)
    headline, table = page.index("<h2>Recommended: <code>int8</code></h2>"), page.index("<table")
    assert headline < table
    assert "int8: 3.6× smaller than float32, accuracy within noise (p=1.00), 2.6× faster." in page
    assert '<div class="value">92 KB</div>' in page and "2.6× faster than float32" in page
    assert "<th>Size (KB)</th>" in page and "✗ failed: calibration diverged" in page and ">nan<" not in page
    nothing = html_report(_rows(), {}, Budget(max_size_bytes=10))
    assert "<h2>No recommendation</h2>" in nothing and "No variant meets the budget" in nothing


def test_each_other_target_gets_its_latency_beside_this_hosts_and_a_failed_target_its_reason():
    rows = _rows()
    rows[0]["targets"] = {"local": {"latency_ms_p50": 0.029}, "pi@10.0.0.5:22": {"latency_ms_p50": 0.4,
                          "latency_verdict": None, "memory_peak_bytes": 50_000_000},
                          "pi@10.0.0.9:22": {"error": "cannot reach pi@10.0.0.9:22: connection refused"}}
    rows[1]["targets"] = {"pi@10.0.0.5:22": {"latency_ms_p50": 0.1, "latency_verdict": "faster"},
                          "pi@10.0.0.9:22": {"error": "cannot reach pi@10.0.0.9:22: connection refused"}}
    table = human_table(rows)
    assert table["pi@10.0.0.5:22: Latency p50 (µs)"].tolist()[:2] == [400.0, 100.0]
    assert table["pi@10.0.0.5:22: latency vs float32"].tolist()[1] == "faster"
    assert table["pi@10.0.0.9:22: not measured because"].tolist()[0].endswith("connection refused")
    assert "pi@10.0.0.5:22: Peak memory (MB)" not in table.columns  # an extra, one click away
    assert "pi@10.0.0.5:22: Peak memory (MB)" in extra_columns(rows).values()
    assert list(table.columns).index("pi@10.0.0.5:22: Latency p50 (µs)") > list(table.columns).index(
        "Latency p50 (µs)")
