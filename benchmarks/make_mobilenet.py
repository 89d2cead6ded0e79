"""Build the benchmark's larger model: Keras MobileNetV2 (weights=None, 224x224x3, 1000 classes) plus
random calibration/evaluation data (accuracy is meaningless; the work done is what is measured).
Usage: ``python benchmarks/make_mobilenet.py OUT_DIR``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def main(out_dir: Path, calibration: int = 32, evaluation: int = 32) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
    model.save(out_dir / "mobilenetv2.keras")
    rng = np.random.default_rng(0)
    np.savez(out_dir / "mobilenetv2.npz",
             x_calib=rng.uniform(-1, 1, (calibration, 224, 224, 3)).astype(np.float32),
             x_eval=rng.uniform(-1, 1, (evaluation, 224, 224, 3)).astype(np.float32),
             y_eval=rng.integers(0, 1000, evaluation))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
