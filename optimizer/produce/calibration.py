"""Calibration samples for the converter: the one representative-dataset generator every calibrated
conversion uses (post-training int8/int16x8, selective int8, the int8 training kinds), and the same
generator as recipe code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from optimizer.errors import VariantFailed

Dataset = Callable[[], Iterator[list[np.ndarray]]]


def representative_samples(calibration: np.ndarray | None, count: int,
                           input_dtype: np.dtype[Any] | None = None) -> np.ndarray:
    """The first ``count`` calibration samples: float32 for a float input (the converter refuses float64),
    the input's own dtype for an integer input (token ids, uint8 pixels)."""
    if calibration is None or len(calibration) == 0:
        raise VariantFailed("needs calibration data; none was given (provide --data or --calib)")
    wanted = input_dtype if input_dtype is not None and input_dtype.kind in "iu" else np.dtype(np.float32)
    return calibration[:count].astype(wanted, copy=False)


def representative_dataset(samples: np.ndarray) -> Dataset:
    """A generator of one sample at a time, each with its batch dimension."""

    def generator() -> Iterator[list[np.ndarray]]:
        for i in range(len(samples)):
            yield [samples[i:i + 1]]

    return generator


def representative_dataset_code(samples_expression: str, count: int) -> str:
    """:func:`representative_samples` and :func:`representative_dataset` as a recipe writes them."""
    return f'''
calibration = {samples_expression}.astype(np.float32)[:{count}]


def representative_dataset():
    for i in range(len(calibration)):
        yield [calibration[i:i + 1]]  # one sample at a time, with its batch dimension, float32
'''
