"""Rebuild the sample models and their data deterministically: ``python sample_models/build_samples.py``.

- ``digits_cnn.keras`` + ``digits.npz``: a small CNN (~70k parameters, so weights dominate the file) on
  scikit-learn's 8x8 digits, pixels scaled to [0, 1].
- ``cancer_mlp.keras`` + ``cancer.npz``: an MLP on scikit-learn's breast-cancer table, features standardised
  with the training split's mean and standard deviation.

Each ``.npz`` holds ``x_calib``/``y_calib`` (the training split, used for calibration and fine-tuning) and
``x_eval``/``y_eval`` (held out).
"""

from __future__ import annotations

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


if __name__ == "__main__":
    print(f"digits_cnn eval accuracy {build_digits():.4f}")
    print(f"cancer_mlp eval accuracy {build_cancer():.4f}")
