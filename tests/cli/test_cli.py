"""The CLI as a script would call it: real subprocesses, exit codes, stdout formats, stderr reasons."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import CANCER_DATA, CANCER_MODEL, DIGITS_MODEL
from tests.integration.test_model_intake import build_two_signature_saved_model

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "optimizer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_run_writes_tflite_files_and_csv(tmp_path):
    result = _cli("run", str(CANCER_MODEL), "--data", str(CANCER_DATA), "--variants", "int8_io,float16",
                  "--out", str(tmp_path), "--format", "csv", "--warmup", "2")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert list(table["variant"]) == ["float32", "int8_io", "float16"]
    assert (table["status"] == "ok").all()
    assert table["accuracy"].min() > 0.9
    assert sorted(p.name for p in (tmp_path / "variants").glob("*.tflite")) == ["float16.tflite", "float32.tflite",
                                                                               "int8_io.tflite"]
    assert sorted(p.name for p in (tmp_path / "variants").glob("*.py")) == ["float16.py", "float32.py", "int8_io.py"]
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "manifest.json").is_file()


def test_separate_calibration_and_evaluation_files_and_json(tmp_path):
    data = np.load(CANCER_DATA)
    np.save(tmp_path / "calib.npy", data["x_calib"])
    np.savez(tmp_path / "eval.npz", x=data["x_eval"], y=data["y_eval"])
    result = _cli("run", str(CANCER_MODEL), "--calib", str(tmp_path / "calib.npy"), "--eval",
                  str(tmp_path / "eval.npz"), "--variants", "int8", "--out", str(tmp_path / "o"), "--format",
                  "json", "--warmup", "2")
    assert result.returncode == 0, result.stderr
    saved = json.loads(result.stdout)
    assert saved["manifest"]["data"]["split"] == "separate files"
    assert saved["manifest"]["data"]["eval_samples"] == len(data["x_eval"])
    assert [r["status"] for r in saved["rows"]] == ["ok", "ok"]


def test_skipped_variants_still_exit_zero(tmp_path):
    result = _cli("run", str(CANCER_MODEL), "--no-data", "--variants", "int8,float16", "--out", str(tmp_path),
                  "--warmup", "1", "--report")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stdout and "needs calibration data" in result.stdout
    page = (tmp_path / "report.html").read_text()
    assert "float16" in page and "<script" in page


def test_refused_model_is_exit_2_with_one_line(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"garbage that is not a flatbuffer")
    result = _cli("run", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Model refused: broken.tflite: expected a TensorFlow Lite flatbuffer")
    assert "Traceback" not in result.stderr


def test_run_prints_the_recommendation_after_the_table(tmp_path):
    # No --data: the small CNN, a sample, opens with its own digits.npz (so the run has accuracy to judge).
    result = _cli("run", str(DIGITS_MODEL), "--variants", "float16,int8", "--out", str(tmp_path), "--warmup", "2")
    assert result.returncode == 0, result.stderr
    table, _, after = result.stdout.partition("\nWrote 3 rows")
    assert "accuracy" in table.splitlines()[0]
    recommended = [line for line in after.splitlines() if line.startswith("Recommended")]
    # int8 is the smallest file and, on these digits, exactly as accurate as float32: size decides.
    assert recommended and recommended[0].startswith("Recommended (size first): int8: "), after
    assert "smaller than float32" in recommended[0] and "accuracy within noise" in recommended[0]


def test_run_json_has_the_recommendation_within_the_budget(tmp_path):
    result = _cli("run", str(DIGITS_MODEL), "--variants", "float16,int8", "--out", str(tmp_path), "--warmup", "2",
                  "--format", "json", "--priority", "accuracy", "--max-size-kb", "50", "--max-accuracy-drop", "1")
    assert result.returncode == 0, result.stderr
    saved = json.loads(result.stdout)
    assert [r["variant"] for r in saved["rows"]] == ["float32", "float16", "int8"]
    recommendation = saved["recommendation"]
    assert recommendation["variant"] is None and recommendation["cards"] == []
    assert recommendation["priority"] == "accuracy"
    assert recommendation["budget"] == {"max_size_bytes": 50 * 1024, "max_latency_ms_p95": None,
                                        "max_accuracy_drop": 0.01}
    assert recommendation["reason"].startswith("No variant meets the budget: float32 (")
    assert [e["variant"] for e in recommendation["excluded"]] == ["float32", "float16", "int8"]
    assert all(e["why"].endswith("over the 50 KB size limit") for e in recommendation["excluded"])


def test_bad_options_and_missing_files_are_exit_2(tmp_path):
    result = _cli("run", str(DIGITS_MODEL), "--variants", "float8", "--out", str(tmp_path))
    assert result.returncode == 2 and "Invalid option: variant kind: expected one of" in result.stderr
    result = _cli("run", str(DIGITS_MODEL), "--runs", "5", "--out", str(tmp_path))
    assert result.returncode == 2 and "timed_runs: expected at least 50" in result.stderr
    result = _cli("run", str(tmp_path / "missing.keras"), "--out", str(tmp_path))
    assert result.returncode == 2 and "found nothing at" in result.stderr
    result = _cli("run", str(DIGITS_MODEL), "--priority", "fast", "--out", str(tmp_path))
    assert result.returncode == 2 and "Invalid value for '--priority'" in result.stderr  # Typer's own check
    assert "Traceback" not in result.stderr


def test_inspect_prints_the_summary(tmp_path):
    result = _cli("inspect", str(DIGITS_MODEL), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["inputs"][0]["shape"] == [None, 8, 8, 1]
    assert summary["outputs"][0]["shape"] == [None, 10]
    assert summary["parameter_count"] == 85066
    assert [layer["type"] for layer in summary["layers"]][:2] == ["Conv2D", "Conv2D"]


def test_inspect_lists_the_signatures_and_summarises_the_one_named(tmp_path):
    model = build_two_signature_saved_model(tmp_path)
    result = _cli("inspect", str(model), "--out", str(tmp_path / "default"))
    assert result.returncode == 0, result.stderr
    default = json.loads(result.stdout)
    assert default["signatures"] == ["embed", "serving_default"] and default["signature"] == "serving_default"
    assert [t["name"] for t in default["inputs"]] == ["x"] and default["parameter_count"] == 25
    result = _cli("inspect", str(model), "--signature", "embed", "--out", str(tmp_path / "embed"))
    assert result.returncode == 0, result.stderr
    embed = json.loads(result.stdout)
    assert embed["signature"] == "embed" and [t["name"] for t in embed["inputs"]] == ["tokens"]
    assert sorted(t["name"] for t in embed["outputs"]) == ["norm", "vector"]
    result = _cli("inspect", str(model), "--signature", "encode", "--out", str(tmp_path / "encode"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == ("Model refused: SavedModel .zip: expected a signature named "
                                                      "'encode'; found ['embed', 'serving_default']")


def test_run_converts_the_signature_named(tmp_path):
    model = build_two_signature_saved_model(tmp_path)
    result = _cli("run", str(model), "--signature", "embed", "--no-data", "--variants", "float16", "--out",
                  str(tmp_path / "run"), "--format", "json", "--warmup", "1")
    assert result.returncode == 0, result.stderr
    saved = json.loads(result.stdout)
    assert [(r["variant"], r["status"]) for r in saved["rows"]] == [("float32", "ok"), ("float16", "ok")]
    assert saved["manifest"]["model"]["signature"] == "embed"
    assert [t["name"] for t in saved["manifest"]["model"]["inputs"]] == ["tokens"]
    result = _cli("run", str(model), "--signature", "encode", "--no-data", "--out", str(tmp_path / "refused"))
    assert result.returncode == 2 and "expected a signature named 'encode'" in result.stderr


def test_training_variants_from_the_cli(tmp_path):
    result = _cli("run", str(CANCER_MODEL), "--data", str(CANCER_DATA), "--variants", "qat,prune75,cluster8",
                  "--epochs", "2", "--out", str(tmp_path), "--format", "json", "--warmup", "1")
    assert result.returncode == 0, result.stderr
    rows = {r["variant"]: r for r in json.loads(result.stdout)["rows"]}
    assert [rows[n]["status"] for n in ("float32", "qat", "prune75", "cluster8")] == ["ok"] * 4
    assert rows["prune75"]["training"]["epochs"] == 2
    assert rows["prune75"]["weights_zero_fraction"] >= 0.7
    assert rows["cluster8"]["weights_max_unique"] <= 8
    assert "training qat: epoch 2/2" in result.stderr


def test_training_option_out_of_range_is_exit_2(tmp_path):
    result = _cli("run", str(CANCER_MODEL), "--variants", "prune", "--sparsity", "1.5", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Invalid option: variant prune: sparsity must be in (0, 1); found 1.5" in result.stderr
