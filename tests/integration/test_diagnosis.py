"""Per-layer diagnosis and selective quantization with the real quantization debugger."""

import json
import subprocess
import sys

import pytest

from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import CANCER_DATA, CANCER_MODEL, rows_by_name


def test_per_layer_table_one_row_per_quantized_layer_ranked(digits_diagnosis):
    row = rows_by_name(digits_diagnosis)["mixed_int8"]
    assert row["status"] == "ok", row["error"]
    layers = row["analysis"]["layers"]
    quantized_ops = {"CONV_2D": 2, "MAX_POOL_2D": 1, "RESHAPE": 1, "FULLY_CONNECTED": 2, "SOFTMAX": 1}
    assert sorted(layer["op_name"] for layer in layers) == sorted(
        op for op, count in quantized_ops.items() for _ in range(count))
    ranked = sorted(layers, key=lambda layer: layer["sensitivity_rank"])
    assert [layer["sensitivity_rank"] for layer in ranked] == list(range(1, len(layers) + 1))
    errors = [layer["rmse_per_scale"] for layer in ranked]
    assert errors == sorted(errors, reverse=True)
    assert [layer["graph_order"] for layer in layers] == list(range(len(layers)))
    for layer in layers:
        assert layer["rmse"] >= 0 and layer["scale"] > 0 and layer["range"] == pytest.approx(255 * layer["scale"])


def test_search_finds_a_variant_within_budget_and_measures_it(digits_diagnosis):
    rows = rows_by_name(digits_diagnosis)
    row = rows["mixed_int8"]
    search = row["analysis"]["search"]
    assert search["chosen"] is not None and search["chosen"]["accuracy_drop"] <= 0.01
    assert row["accuracy"] == pytest.approx(search["chosen"]["accuracy"])  # re-measured like every variant
    assert rows["float32"]["accuracy"] - row["accuracy"] <= 0.01
    assert row["latency_ms_p50"] > 0 and all("latency_ms_p50" in point for point in search["curve"])
    study = row["analysis"]["calibration_study"]
    assert sorted({p["calibration_samples"] for p in study}) == [8, 32, 128, 1078]
    assert sum(1 for p in study if p["calibration_samples"] == 8) == 3


def test_search_that_cannot_meet_the_budget_says_why(tmp_path):
    spec = VariantSpec("mixed_int8", {"accuracy_budget": 0.0, "max_float_layers": 1, "calibration_study": False})
    result = run_comparison(CANCER_MODEL, tmp_path / "run", [spec], data=CANCER_DATA,
                            options=RunOptions(warmup_runs=1))
    row = rows_by_name(result)["mixed_int8"]
    assert row["status"] == "ok"
    search = row["analysis"]["search"]
    assert search["chosen"] is None and len(search["curve"]) == 2
    assert "no choice of up to 1 float layers brings the drop within 0.00 points" in search["reason"]
    assert row["search_met_budget"] is False


def test_analyze_from_the_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "optimizer", "analyze", str(CANCER_MODEL), "--data",
                             str(CANCER_DATA), "--no-calibration-study", "--out", str(tmp_path), "--format", "json"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {r["variant"] for r in report["rows"]} == {"float32", "int8", "mixed_int8"}
    assert len(report["analysis"]["layers"]) == 4 and report["analysis"]["calibration_study"] == []
    int8 = next(r for r in report["rows"] if r["variant"] == "int8")
    assert int8["accuracy_verdict"] in ("within noise", "significant") and 0 <= int8["mcnemar_p"] <= 1
