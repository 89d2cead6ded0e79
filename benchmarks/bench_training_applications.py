"""How long the training variants take on keras.applications architectures, and whether their .tflite runs.

For each architecture (``MobileNetV3Small`` and ``EfficientNetB0``, ``weights=None``, 96x96x3, 10 classes) and
each technique (QAT, pruning to 50% sparsity, clustering to 16 clusters) it times, in one process:
- **bridge**: the Keras 3 -> tf_keras twin, its weights copied and checked (``to_tf_keras``);
- **train**: wrapping, the start check and the fine-tune (``train_variant``: 1 epoch over 32 random
  samples, batch 32, so one step; the wrapping and tracing dominate, not the step);
- **convert**: ``convert_trained`` (full int8 for QAT, calibrated on the 32 samples; float otherwise);
then opens the .tflite in LiteRT and runs one sample through its signature, by input name. Accuracy is
meaningless here (random data, random weights); the work is what is measured.

Usage: ``python benchmarks/bench_training_applications.py [--only mobilenetv3small|efficientnetb0]
[--samples N]``
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

ARCHITECTURES = ("mobilenetv3small", "efficientnetb0")
TECHNIQUES = {"qat": {"epochs": 1}, "prune": {"epochs": 1, "sparsity": 0.5, "schedule": "constant"},
              "cluster": {"epochs": 1, "clusters": 16}}


def build(name: str) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    application = {"mobilenetv3small": keras.applications.MobileNetV3Small,
                   "efficientnetb0": keras.applications.EfficientNetB0}[name]
    return application(input_shape=(96, 96, 3), weights=None, classes=10)


def runs_in_litert(path: Path, inputs: dict[str, np.ndarray]) -> tuple[str, ...]:
    """Run one sample through the .tflite's signature, by input name; returns its output names."""
    from optimizer.measure.runtime import load_interpreter, quantize_input

    runner = load_interpreter(path).get_signature_runner()
    details = runner.get_input_details()
    outputs = runner(**{name: quantize_input(array[:1], details[name]) for name, array in inputs.items()})
    return tuple(outputs)


def measure(name: str, samples: int, scratch: Path) -> list[dict[str, Any]]:
    from optimizer.produce.bridge import to_tf_keras
    from optimizer.produce.training import convert_trained, train_variant
    from optimizer.variants import VariantSpec

    model = build(name)
    rng = np.random.default_rng(0)
    input_name = str(model.inputs[0].name)
    x = {input_name: rng.uniform(0, 255, (samples, 96, 96, 3)).astype(np.float32)}
    y = {model.output_names[0]: rng.integers(0, 10, samples)}
    rows = []
    for kind, options in TECHNIQUES.items():
        started = time.perf_counter()
        twin, _ = to_tf_keras(model, {n: a[:16] for n, a in x.items()})
        bridged = time.perf_counter()
        trained = train_variant(VariantSpec(kind, options), lambda twin=twin: twin, x, y, "classification",
                                lambda _: None)
        fine_tuned = time.perf_counter()
        content = convert_trained(trained, x, samples)
        converted = time.perf_counter()
        path = scratch / f"{name}_{kind}.tflite"
        path.write_bytes(content)
        outputs = runs_in_litert(path, x)
        info = trained.info
        kinds = {layer.name: type(layer).__name__ for layer in twin.layers}
        rows.append({"architecture": name, "technique": kind, "bridge_s": bridged - started,
                     "train_s": fine_tuned - bridged, "convert_s": converted - fine_tuned,
                     "total_s": converted - started, "size_kb": len(content) / 1024, "outputs": outputs,
                     "kept_float": len(info.get("layers_kept_float", [])),
                     "kept_float_kinds": dict(collections.Counter(kinds.get(n, "?") for n in
                                                                  info.get("layers_kept_float", []))),
                     "wrapped": len(info.get("pruned_layers") or info.get("clustered_layers") or [])})
        print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    return (f"| {row['architecture']} | {row['technique']} | {row['bridge_s']:.1f} | {row['train_s']:.1f} | "
            f"{row['convert_s']:.1f} | {row['total_s']:.1f} | {row['size_kb']:.0f} | {row['kept_float']} | "
            f"{row['wrapped']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=ARCHITECTURES)
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    import tensorflow as tf

    from optimizer.measure.benchmark import cpu_name
    from optimizer.measure.runtime import runtime_version

    print(f"TensorFlow {tf.__version__}, {runtime_version()}, {cpu_name()}, {os.cpu_count()} cores, "
          f"{args.samples} samples, 1 epoch")
    print("| architecture | technique | bridge s | train s | convert s | total s | .tflite KB | layers kept float "
          "| layers pruned/clustered |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in [args.only] if args.only else ARCHITECTURES:
            rows += measure(name, args.samples, Path(scratch))
    for row in rows:
        if row["kept_float_kinds"]:
            print(f"{row['architecture']} {row['technique']}: kept float by class {row['kept_float_kinds']}")


if __name__ == "__main__":
    main()
