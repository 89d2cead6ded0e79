"""LiteRT's own per-op profile of real variants: every op of the file is accounted for, the op times add up
to the invoke time, quantized variants show the ops they add, and the report aligns and explains them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from optimizer.report.op_profile import aligned_op_table, explain_slowdowns, op_type_figure
from optimizer.targets.op_profile import profile_ops

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
pytestmark = pytest.mark.slow


def _convert(model: keras.Model, folder: Path, name: str, calibration: np.ndarray | None) -> Path:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:  # full int8 kernels, float input and output (QUANTIZE/DEQUANTIZE at the edges)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None].astype(np.float32)] for x in calibration)
    path = folder / f"{name}.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("op_profile")
    digits = keras.models.load_model(SAMPLES / "digits_cnn.keras")
    calibration = np.load(SAMPLES / "digits.npz")["x_calib"][:32]
    mobilenet = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)
    mobile_calibration = np.random.default_rng(0).uniform(0, 1, (8, 96, 96, 3)).astype(np.float32)
    return {"cnn_float32": _convert(digits, folder, "cnn_float32", None),
            "cnn_int8": _convert(digits, folder, "cnn_int8", calibration),
            "mobilenet_float32": _convert(mobilenet, folder, "mobilenet_float32", None),
            "mobilenet_int8": _convert(mobilenet, folder, "mobilenet_int8", mobile_calibration)}


def _model_ops(path: Path) -> list[dict]:
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return interpreter._get_ops_details()


def _profile_alone(path: Path, runs: int) -> dict:
    """profile_ops in a fresh process, as the agent runs it on a target: the test process holds TensorFlow, its
    thread pools and every earlier test's state, which the timings must not depend on."""
    script = ("import json, sys; from optimizer.targets.op_profile import profile_ops; "
              "print(json.dumps(profile_ops(sys.argv[1], None, threads=1, runs=int(sys.argv[2]))))")
    result = subprocess.run([sys.executable, "-c", script, str(path), str(runs)], capture_output=True, text=True,
                            timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _within(profile: dict, tolerance: float = 0.2) -> bool:
    return abs(profile["ops_total_ms"] - profile["invoke_ms"]) <= tolerance * profile["invoke_ms"]


@pytest.mark.parametrize("name", ["cnn_float32", "cnn_int8", "mobilenet_float32", "mobilenet_int8"])
def test_every_op_has_a_time_and_they_add_up_to_the_invoke(variants: dict[str, Path], name: str) -> None:
    ops = _model_ops(variants[name])
    runs = 300 if name.startswith("cnn") else 30  # the CNN's invoke is ~10 µs: more runs to average µs ticks
    profile = _profile_alone(variants[name], runs)
    assert profile["n_model_ops"] == len(ops)
    interpreted = [r for r in profile["ops"] if not r["delegated"]]
    # Every op of the file: run by the interpreter (its own row) or inside an XNNPACK partition with rows.
    covered = {i for r in profile["ops"] for i in r["covers"]}
    assert covered == {op["index"] for op in ops}
    assert len(interpreted) + len(profile["delegated_ops"]) == len(ops)
    assert {r["op"] for r in interpreted} <= {op["op_name"] for op in ops}
    assert all(r["ms"] >= 0 for r in profile["ops"]) and profile["ops_total_ms"] > 0
    assert sum(r["share"] for r in profile["ops"]) == pytest.approx(1.0)
    assert sum(t["count"] for t in profile["by_type"]) == len(profile["ops"])
    assert profile["xnnpack"] and runs // 2 <= profile["runs"] <= runs  # the fastest half is averaged
    json.dumps(profile)
    # Timing on a shared 2-core machine: a preempted attempt may miss; two more chances before failing.
    attempts = [profile]
    while not _within(attempts[-1]) and len(attempts) < 3:
        attempts.append(_profile_alone(variants[name], runs))
    assert _within(attempts[-1]), [(a["ops_total_ms"], a["invoke_ms"]) for a in attempts]


def test_int8_shows_its_conversions_and_int8_kernels(variants: dict[str, Path]) -> None:
    float_profile = profile_ops(str(variants["cnn_float32"]), None, threads=1, runs=20)
    int8_profile = profile_ops(str(variants["cnn_int8"]), None, threads=1, runs=20)
    float_types = {t["op"] for t in float_profile["by_type"]}
    int8_types = {t["op"] for t in int8_profile["by_type"]}
    assert "XNNPACK/Convert" in int8_types and "XNNPACK/Convert" not in float_types
    conv_kernels = {r["kernel"] for r in int8_profile["ops"] if r["op"] == "XNNPACK/Convolution"}
    assert conv_kernels and all("QC8" in k for k in conv_kernels)
    assert all("F32" in r["kernel"] for r in float_profile["ops"] if r["op"] == "XNNPACK/Convolution")

    rows = [{"variant": "float32", "latency_ms_p50": 0.010, "op_profile": float_profile},
            {"variant": "int8", "latency_ms_p50": 0.020, "op_profile": int8_profile}]
    table = aligned_op_table(rows)
    converts = table[table["op"] == "XNNPACK/Convert"]
    assert len(converts) == 2 and converts["float32 ms"].isna().all() and converts["int8 ms"].notna().all()
    first_conv = table[(table["op"] == "XNNPACK/Convolution") & (table["#"] == 1)]
    assert first_conv[["float32 ms", "int8 ms"]].notna().all(axis=None)
    assert len(op_type_figure(rows).data) == len(float_types | int8_types)
    sentences = explain_slowdowns(rows)
    assert sentences and all(s.startswith("int8: ") for s in sentences)
