"""Calibration samples for the converter: the one representative-dataset generator every calibrated
conversion uses (post-training int8/int16x8, selective int8, the int8 training kinds), and the same
generator as recipe code. Samples are fed by input name, never by position (see :mod:`optimizer.tensors`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from optimizer.errors import VariantFailed
from optimizer.tensors import Arrays, sample_count

Dataset = Callable[[], Iterator[dict[str, np.ndarray]]]


def representative_samples(calibration: Mapping[str, np.ndarray] | None, count: int) -> Arrays:
    """The first ``count`` calibration samples of every input: float inputs as float32 (the converter refuses
    float64), integer inputs (token ids, uint8 pixels) in the dtype intake gave them, the input's own."""
    if not calibration or sample_count(calibration) == 0:
        raise VariantFailed("needs calibration data; none was given (provide --data or --calib)")
    return {name: array[:count].astype(np.float32, copy=False) if array.dtype.kind == "f" else array[:count]
            for name, array in calibration.items()}


def representative_dataset(samples: Mapping[str, np.ndarray]) -> Dataset:
    """A generator of one sample at a time, each with its batch dimension, as ``{input name: array}``: the
    converter matches the names to its signature's inputs."""

    def generator() -> Iterator[dict[str, np.ndarray]]:
        for i in range(sample_count(samples)):
            yield {name: array[i:i + 1] for name, array in samples.items()}

    return generator


def representative_dataset_code(files: Mapping[str, str], count: int) -> str:
    """:func:`representative_samples` and :func:`representative_dataset` as a recipe writes them; ``files``
    maps each input name to the expression of its calibration array."""
    entries = "\n".join(f"    {name!r}: {expression}," for name, expression in files.items())
    return f'''
def _samples(array):
    array = array[:{count}]
    return array.astype(np.float32) if array.dtype.kind == "f" else array  # integer inputs keep their dtype


calibration = {{name: _samples(array) for name, array in {{
{entries}
}}.items()}}


def representative_dataset():
    for i in range(len(next(iter(calibration.values())))):
        # one sample at a time, with its batch dimension, by input name
        yield {{name: array[i:i + 1] for name, array in calibration.items()}}
'''
