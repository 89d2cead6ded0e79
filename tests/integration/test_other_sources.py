"""The other intake paths: an uploaded float .tflite (ai-edge-quantizer), a SavedModel zip, no data at all."""

import shutil
from pathlib import Path

from optimizer.paths import SAMPLE_DIR
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.variants import VariantKind, VariantSpec
from tests.conftest import CANCER_MODEL, DIGITS_DATA, rows_by_name


def test_float_tflite_upload_uses_ai_edge_quantizer(tflite_run, digits_float_tflite):
    rows = rows_by_name(tflite_run)
    assert list(rows) == ["float32", "aeq_dynamic_int8", "aeq_weight_only_int8", "aeq_static_int8"]
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row["error"])
    float_row = rows["float32"]
    assert float_row["size_bytes"] == digits_float_tflite.stat().st_size
    for name in ("aeq_dynamic_int8", "aeq_weight_only_int8", "aeq_static_int8"):
        assert rows[name]["size_bytes"] <= 0.35 * float_row["size_bytes"]
        assert abs(rows[name]["accuracy"] - float_row["accuracy"]) <= 0.02
    assert rows["aeq_static_int8"]["integer_only"] is True, rows["aeq_static_int8"]["float_compute_ops"]


def test_saved_model_zip_converts_from_the_upload(digits_run, tmp_path):
    export_dir = digits_run.out_dir / "work" / "export"
    archive = shutil.make_archive(str(tmp_path / "digits_savedmodel"), "zip", root_dir=export_dir.parent,
                                  base_dir=export_dir.name)
    result = run_comparison(Path(archive), tmp_path / "run", [VariantSpec("float16")],
                            data=DIGITS_DATA, options=RunOptions(warmup_runs=2))
    rows = rows_by_name(result)
    assert rows["float16"]["status"] == "ok" and rows["float16"]["accuracy"] > 0.9
    assert result.manifest["model"]["format"] == "saved_model_zip"


def test_no_data_still_runs_and_skips_calibrated_variants(tmp_path):
    result = run_comparison(CANCER_MODEL, tmp_path / "run", options=RunOptions(warmup_runs=2))
    rows = rows_by_name(result)
    for name in ("float32", "float16", "dynamic_range"):
        assert rows[name]["status"] == "ok"
        assert rows[name].get("accuracy") is None
        assert rows[name]["latency_ms_p50"] > 0 and rows[name]["size_bytes"] > 0
    for name in ("float16", "dynamic_range"):
        assert rows[name]["fidelity_inputs"] == "synthetic" and rows[name]["fidelity_snr_db"] > 15
    for kind in (VariantKind.INT8, VariantKind.INT8_IO, VariantKind.INT16X8):
        assert rows[kind.value]["status"] == "skipped"
        assert "needs calibration data" in rows[kind.value]["error"]
    assert result.manifest["data"]["source"] == "synthetic" and result.manifest["task"] is None
    assert (SAMPLE_DIR / "cancer.npz").is_file()


def test_tflite_upload_gets_ai_edge_quantizer_per_tensor_comparison(tflite_run):
    rows = rows_by_name(tflite_run)
    per_tensor = rows["aeq_static_int8"]["analysis"]["per_tensor"]
    assert len(per_tensor) >= 5
    assert {"tensor", "kind", "mse", "snr", "sensitivity_rank"} <= set(per_tensor[0])
    snrs = [row["snr"] for row in per_tensor]
    assert snrs == sorted(snrs) and [row["sensitivity_rank"] for row in per_tensor] == list(
        range(1, len(per_tensor) + 1))
    assert any(row["kind"] == "output" for row in per_tensor)
