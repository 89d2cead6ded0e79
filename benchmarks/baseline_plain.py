"""Baseline: the same comparison done the plain way, as one would by hand in a notebook.

One process; ``TFLiteConverter.from_keras_model`` for every variant; each variant timed with a loop in the
same process (the same warm-up and timed runs as the tool) and evaluated sample by sample.
Usage: ``python benchmarks/baseline_plain.py MODEL.keras DATA.npz``
"""

from __future__ import annotations

import gzip
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

WARMUP, TIMED, CALIBRATION = 10, 50, 200


def configure(converter: tf.lite.TFLiteConverter, kind: str, calib: np.ndarray) -> None:
    def representative():
        for i in range(min(CALIBRATION, len(calib))):
            yield [calib[i:i + 1]]

    if kind == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif kind in ("int8", "int8_io"):
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if kind == "int8_io":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    elif kind == "int16x8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


def run_one(content: bytes, x_eval: np.ndarray, y_eval: np.ndarray, reference: np.ndarray | None):
    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def feed(sample: np.ndarray) -> None:
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            sample = np.clip(np.round(sample / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], sample)

    def fetch() -> np.ndarray:
        value = interpreter.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            value = (value - zero) * scale
        return value

    feed(x_eval[:1])
    for _ in range(WARMUP + 1):
        interpreter.invoke()
    timings = []
    for _ in range(TIMED):
        start = time.perf_counter()
        interpreter.invoke()
        timings.append((time.perf_counter() - start) * 1e3)
    outputs = []
    for i in range(len(x_eval)):
        feed(x_eval[i:i + 1])
        interpreter.invoke()
        outputs.append(fetch()[0])
    outputs = np.stack(outputs)
    accuracy = float(np.mean(outputs.argmax(1) == y_eval))
    agreement = None if reference is None else float(np.mean(outputs.argmax(1) == reference.argmax(1)))
    return float(np.median(timings)), accuracy, agreement, outputs


def main(model_path: str, data_path: str) -> None:
    started = time.perf_counter()
    data = np.load(data_path)
    calib, x_eval, y_eval = data["x_calib"], data["x_eval"], data["y_eval"]
    model = keras.saving.load_model(model_path, compile=False)
    reference = None
    for kind in ("float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8"):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        configure(converter, kind, calib)
        content = converter.convert()
        try:
            p50, accuracy, agreement, outputs = run_one(content, x_eval, y_eval, reference)
        except RuntimeError as exc:  # e.g. int16x8 kernels refusing a random-weight model
            print(f"{kind:14s} failed: {str(exc).splitlines()[0][:120]}", flush=True)
            continue
        if kind == "float32":
            reference = outputs
        print(f"{kind:14s} size={len(content):9d} gzip={len(gzip.compress(content)):9d} p50={p50:8.3f}ms "
              f"acc={accuracy:.4f} agree={agreement}", flush=True)
    print(f"baseline wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
