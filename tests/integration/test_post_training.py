"""Real TensorFlow conversions and LiteRT measurements on the sample CNN (one shared run)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.measure.runtime import audit_ops
from optimizer.variants import VariantKind
from tests.conftest import DIGITS_DATA, rows_by_name


def test_every_post_training_kind_succeeds(digits_run):
    rows = rows_by_name(digits_run)
    expected = [k.value for k in (VariantKind.FLOAT32, VariantKind.FLOAT16, VariantKind.DYNAMIC_RANGE,
                                  VariantKind.INT8, VariantKind.INT8_IO, VariantKind.INT16X8)]
    assert list(rows) == expected
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row["error"])
        assert (digits_run.out_dir / row["path"]).is_file()


def test_sizes_against_float32(digits_run):
    rows = rows_by_name(digits_run)
    float_size = rows["float32"]["size_bytes"]
    for name in ("float32", "float16", "int8"):
        assert rows[name]["size_bytes"] == (digits_run.out_dir / rows[name]["path"]).stat().st_size
    assert rows["int8"]["size_bytes"] <= 0.35 * float_size
    assert rows["int8_io"]["size_bytes"] <= 0.35 * float_size
    assert 0.45 <= rows["float16"]["size_bytes"] / float_size <= 0.55
    assert rows["float16"]["size_ratio"] == rows["float16"]["size_bytes"] / float_size
    assert all(0 < r["gzip_bytes"] < r["size_bytes"] for r in rows.values())


def test_accuracy_of_quantized_variants(digits_run):
    rows = rows_by_name(digits_run)
    float_accuracy = rows["float32"]["accuracy"]
    assert float_accuracy > 0.9
    for name in ("int8", "int8_io"):
        assert abs(rows[name]["accuracy"] - float_accuracy) <= 0.02, name
    for name in ("float16", "dynamic_range", "int16x8"):
        assert rows[name]["metric"] == "accuracy"
        assert abs(rows[name]["accuracy"] - float_accuracy) <= 0.02, name


def test_accuracy_matches_an_independent_evaluation(digits_run):
    """The accuracy shown is what anyone gets by running the file on the evaluation split, by hand: LiteRT's
    own interpreter, one sample at a time, inputs quantized and outputs read with the file's parameters."""
    from ai_edge_litert.interpreter import Interpreter

    data = np.load(DIGITS_DATA)
    row = rows_by_name(digits_run)["int8_io"]
    interpreter = Interpreter(model_path=str(digits_run.out_dir / row["path"]))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = source["quantization"]
    predicted = []
    for sample in data["x_eval"]:
        codes = np.clip(np.rint(sample[None] / scale + zero_point), -128, 127).astype(np.int8)
        interpreter.set_tensor(source["index"], codes)
        interpreter.invoke()
        out_scale, out_zero = target["quantization"]
        predicted.append(int(np.argmax((interpreter.get_tensor(target["index"]).astype(np.float32) - out_zero)
                                       * out_scale)))
    assert np.mean(np.array(predicted) == data["y_eval"]) == row["accuracy"]


def test_op_audit_of_int8_io_is_integer_only(digits_run):
    rows = rows_by_name(digits_run)
    row = rows["int8_io"]
    assert row["integer_only"] is True and row["float_compute_ops"] == []
    assert row["input_dtypes"] == ["int8"] and row["output_dtypes"] == ["int8"]
    audit = audit_ops(digits_run.out_dir / row["path"])
    assert not {"float32"} & set(audit.activation_dtypes)
    assert "CONV_2D" in audit.op_counts and "DELEGATE" not in audit.op_counts
    assert rows["float32"]["integer_only"] is False
    assert rows["dynamic_range"]["integer_only"] is False  # float compute with int8 weights
    assert rows["int8"]["input_dtypes"] == ["float32"] and rows["int8"]["integer_only"] is True


def test_fidelity_and_latency_fields(digits_run):
    rows = rows_by_name(digits_run)
    for name, row in rows.items():
        assert row["latency_runs"] >= 50 and len(row["timings_ms"]) == row["latency_runs"]
        assert row["latency_ms_min"] <= row["latency_ms_p50"] <= row["latency_ms_p95"]
        assert row["runtime"] == "ai_edge_litert" and row["runtime_version"] and row["threads"] == 1
        assert row["memory_peak_bytes"] > 10 * 1024**2 and row["cpu"]
        assert row["latency_ms_init"] > 0 and row["latency_ms_first"] > 0
        assert row["tensorflow_loaded"] is False  # the benchmark process never imports TensorFlow
        if name != "float32":
            assert row["fidelity_inputs"] == "evaluation"
            assert 0.95 <= row["fidelity_top1_agreement"] <= 1.0
            assert row["fidelity_snr_db"] > 15
    assert rows["float16"]["fidelity_snr_db"] > rows["int8"]["fidelity_snr_db"]


def test_results_saved_as_csv_json_and_manifest(digits_run):
    table = pd.read_csv(digits_run.files["csv"])
    assert list(table["variant"]) == [r["variant"] for r in digits_run.rows]
    assert {"size_bytes", "gzip_bytes", "latency_ms_p50", "status", "error", "accuracy"} <= set(table.columns)
    saved = json.loads(digits_run.files["json"].read_text())
    manifest = saved["manifest"]
    assert manifest["versions"]["tensorflow"] == "2.21.0" and manifest["versions"]["ai-edge-litert"]
    assert manifest["data"]["dataset_sha256"] and manifest["data"]["split"] == "given in file"
    assert manifest["threads"] == 1 and manifest["cpu"] and manifest["seeds"]["split"] == 0
    assert manifest["model"]["parameter_count"] > 50_000


def test_significance_flips_and_latency_intervals(digits_run):
    rows = rows_by_name(digits_run)
    data = np.load(DIGITS_DATA)
    for name in ("float16", "int8", "int8_io", "int16x8", "dynamic_range"):
        row = rows[name]
        assert row["flips"] == round((1 - row["fidelity_top1_agreement"]) * len(data["y_eval"]))
        assert len(row["flip_indices"]) == row["flips"] and sum(row["flips_by_class"].values()) == row["flips"]
        assert 0 <= row["mcnemar_p"] <= 1 and row["accuracy_verdict"] in ("within noise", "significant")
        assert row["accuracy_delta_ci_low"] <= row["accuracy_delta"] <= row["accuracy_delta_ci_high"]
        assert row["latency_ms_p50_ci_low"] <= row["latency_ms_p50"] <= row["latency_ms_p50_ci_high"]
        # "unresolved" only when the rounds could not reach the resolution (a loaded machine hit the time cap)
        assert row["latency_verdict"] in ("faster", "slower", "same") or (
            row["latency_verdict"] == "unresolved" and row["latency_resolution_pct"] > 5), row
    assert rows["int16x8"]["latency_verdict"] == "slower"  # reference kernels: ~20x the float32 latency
    assert rows["float16"]["accuracy_verdict"] == "within noise"


def test_each_variant_is_the_file_the_plain_converter_settings_give(digits_run, tmp_path):
    """The tool converts every variant from one loaded export, loads the SavedModel once per worker and skips
    int16x8's redundant calibration; a fresh converter per variant, set up with the plain settings the recipes
    print (what one writes by hand), must produce byte-identical files."""
    import subprocess
    import sys

    script = f"""
import numpy as np, tensorflow as tf
from pathlib import Path
from optimizer.variants import KINDS, SourceFormat
calibration = np.load({str(digits_run.out_dir / "work" / "calib_x.npy")!r})[:200].astype(np.float32)
def representative_dataset():
    for i in range(len(calibration)):
        yield [calibration[i:i + 1]]
for kind, info in KINDS.items():
    if info.converter is None or SourceFormat.TENSORFLOW not in info.sources or not info.listed:
        continue
    converter = tf.lite.TFLiteConverter.from_saved_model({str(digits_run.out_dir / "work" / "export")!r})
    names = {{"tf": tf, "converter": converter, "representative_dataset": representative_dataset}}
    exec(info.converter.as_code(), names)
    assert converter.experimental_new_quantizer  # the default a user gets
    ours = Path({str(digits_run.out_dir / "variants")!r}) / f"{{kind}}.tflite"
    assert converter.convert() == ours.read_bytes(), kind
    print("identical", kind)
"""
    repo = str(Path(__file__).resolve().parents[2])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=repo)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("identical") == 6
