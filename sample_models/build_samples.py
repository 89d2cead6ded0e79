"""Rebuild the sample models and their data deterministically: ``python sample_models/build_samples.py``
(all three), or name the ones to build: ``python sample_models/build_samples.py demo``.

- ``hot_pixels_cnn.keras`` + ``hot_pixels.npz``: the default demo, where the variants differ in size, latency and
  accuracy. scikit-learn's digits drawn 3x larger at a random place of a 32x32 frame, the ink at a random
  contrast in [0.6, 1], and up to three "hot" pixels per image stuck at 255 (a sensor defect, 255 times the
  ink's full scale). The CNN (~118k parameters, ~11M multiply-adds: int8 is measurably faster than float32,
  while int16x8's reference kernels keep the default comparison short) clips its input to [0, 1] in its first
  layer, so float32 ignores the hot pixels; full-integer int8 cannot: min/max calibration gives the input
  tensor one scale covering 0-255, so the ink keeps two levels (a real loss of accuracy), while int16x8 and
  the float-activation variants keep it. Saved uncompiled, so the file holds no optimizer state.
- ``digits_cnn.keras`` + ``digits.npz``: a small CNN (~70k parameters, so weights dominate the file) on
  scikit-learn's 8x8 digits, pixels scaled to [0, 1].
- ``cancer_mlp.keras`` + ``cancer.npz``: an MLP on scikit-learn's breast-cancer table, features standardised
  with the training split's mean and standard deviation.

Each ``.npz`` holds ``x_calib``/``y_calib`` (the training split, used for calibration and fine-tuning) and
``x_eval``/``y_eval`` (held out).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 0
HOT_PIXEL = 255.0  # the value a hot pixel is stuck at; the ink is in [0, 1]


def _seed() -> None:
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()


def build_digits() -> float:
    _seed()
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_eval, y_train, y_eval = train_test_split(x, y, test_size=0.4, random_state=SEED, stratify=y)
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ], name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0, shuffle=True)
    accuracy = float(model.evaluate(x_eval, y_eval, verbose=0)[1])
    model.save(HERE / "digits_cnn.keras")
    np.savez_compressed(HERE / "digits.npz", x_calib=x_train, y_calib=y_train, x_eval=x_eval, y_eval=y_eval)
    return accuracy


def build_cancer() -> float:
    _seed()
    table = load_breast_cancer()
    x_train, x_eval, y_train, y_eval = train_test_split(
        table.data.astype(np.float32), table.target.astype(np.int64), test_size=0.4, random_state=SEED,
        stratify=table.target)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    x_train, x_eval = (x_train - mean) / std, (x_eval - mean) / std
    model = keras.Sequential([
        keras.Input((30,), name="features"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(2, activation="softmax"),
    ], name="cancer_mlp")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=30, batch_size=32, verbose=0, shuffle=True)
    accuracy = float(model.evaluate(x_eval, y_eval, verbose=0)[1])
    model.save(HERE / "cancer_mlp.keras")
    np.savez_compressed(HERE / "cancer.npz", x_calib=x_train.astype(np.float32), y_calib=y_train,
                        x_eval=x_eval.astype(np.float32), y_eval=y_eval)
    return accuracy


def hot_pixel_images(seed: int = SEED, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The digits, 3x larger at a random place of a ``size`` x ``size`` frame, at a random ink contrast, with
    zero to three hot pixels each: float32 images (n, size, size, 1) and their labels."""
    rng = np.random.default_rng(seed)
    digits = load_digits()
    images = np.zeros((len(digits.images), size, size, 1), np.float32)
    for i, image in enumerate(digits.images):
        big = np.kron(image / 16.0, np.ones((3, 3))) * rng.uniform(0.6, 1.0)
        row, col = rng.integers(0, size - big.shape[0] + 1, 2)
        images[i, row:row + big.shape[0], col:col + big.shape[1], 0] = big
        hot = rng.integers(0, size, (rng.integers(0, 4), 2))
        images[i, hot[:, 0], hot[:, 1], 0] = HOT_PIXEL
    return images, digits.target.astype(np.int64)


def _hot_pixels_cnn() -> keras.Model:
    return keras.Sequential([
        keras.Input((32, 32, 1), name="image"),
        keras.layers.ReLU(max_value=1.0, name="clip"),  # hot pixels read as full ink
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ], name="hot_pixels_cnn")


def build_demo(out: Path = HERE) -> float:
    _seed()
    x, y = hot_pixel_images()
    x_train, x_eval, y_train, y_eval = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)
    model = _hot_pixels_cnn()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0, shuffle=True)
    accuracy = float(model.evaluate(x_eval, y_eval, verbose=0)[1])
    saved = _hot_pixels_cnn()  # uncompiled: the file holds the weights without the optimizer's state
    saved.set_weights(model.get_weights())
    saved.save(out / "hot_pixels_cnn.keras")
    np.savez_compressed(out / "hot_pixels.npz", x_calib=x_train, y_calib=y_train, x_eval=x_eval, y_eval=y_eval)
    return accuracy


if __name__ == "__main__":
    builders = {"demo": build_demo, "digits": build_digits, "cancer": build_cancer}
    parser = argparse.ArgumentParser(description="Rebuild the sample models and their data.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"samples to build, of {list(builders)} (default: all)")
    names = parser.parse_args().names or list(builders)
    if unknown := sorted(set(names) - set(builders)):
        parser.error(f"expected sample names among {list(builders)}; found {unknown}")
    for name in names:
        print(f"{name} eval accuracy {builders[name]():.4f}")
