"""What the figures warn about: a model that ignores its input, an output range cut off by calibration, a
variant that quantized nothing."""

from __future__ import annotations

import keras
import numpy as np

from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import rows_by_name


def _save(model, folder):
    path = folder / "model.keras"
    model.save(path)
    return path


def test_constant_outputs_of_the_float_model_are_warned_about(tmp_path):
    inputs = keras.Input((6,), name="features")
    dense = keras.layers.Dense(3, activation="softmax", name="scores", kernel_initializer="zeros",
                               bias_initializer="ones")
    model_path = _save(keras.Model(inputs, dense(inputs)), tmp_path)
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32),
             y=np.arange(40) % 3)
    result = run_comparison(model_path, tmp_path / "run", [VariantSpec("float32")], data=tmp_path / "d.npz",
                            options=RunOptions(warmup_runs=1))
    warnings = rows_by_name(result)["float32"]["warnings"]
    assert any("scores of the float model are the same for every evaluation input" in w for w in warnings)


def test_an_output_range_cut_off_by_calibration_is_warned_about(tmp_path):
    """Calibrated on inputs in [0, 0.3], evaluated on [0, 1]: int8's output range stops near 0.9 while the
    float model reaches 3; the int8 row says so, float16 (no calibration) does not."""
    inputs = keras.Input((4,), name="x")
    dense = keras.layers.Dense(1, name="y", kernel_initializer=keras.initializers.Constant(0.75))
    model_path = _save(keras.Model(inputs, dense(inputs)), tmp_path)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 0.3, (64, 4)).astype(np.float32))
    np.save(tmp_path / "eval.npy", rng.uniform(0, 1, (64, 4)).astype(np.float32))
    result = run_comparison(model_path, tmp_path / "run", [VariantSpec("float16"), VariantSpec("int8")],
                            calib=tmp_path / "calib.npy", eval_data=tmp_path / "eval.npy",
                            options=RunOptions(warmup_runs=1))
    rows = rows_by_name(result)
    assert rows["int8"]["per_output"]["y"]["clipped_fraction"] > 0.3
    assert any(w.startswith("output y clipped:") for w in rows["int8"]["warnings"])
    assert not any("clipped" in w for w in rows["float16"].get("warnings") or [])


def test_a_variant_that_quantized_nothing_says_so(tmp_path):
    """Dynamic-range quantization leaves kernels under 1024 weights float: on a model with only such kernels
    the file is float32's size and its row says it quantized nothing; int8 does quantize them."""
    inputs = keras.Input((8,), name="x")
    model_path = _save(keras.Model(inputs, keras.layers.Dense(2, name="out")(
        keras.layers.Dense(16, activation="relu")(inputs))), tmp_path)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    result = run_comparison(model_path, tmp_path / "run", [VariantSpec("dynamic_range"), VariantSpec("int8")],
                            data=tmp_path / "x.npy", options=RunOptions(warmup_runs=1))
    rows = rows_by_name(result)
    assert any(w.startswith("quantized nothing") for w in rows["dynamic_range"]["warnings"])
    assert not rows["int8"].get("warnings")
