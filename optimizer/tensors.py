"""Arrays keyed by a model's tensor names, and the one rule that matches those names to a converted file's.

Every stage of a run passes data as ``{tensor name: array}``: the calibration and evaluation inputs (one
array per model input), the labels (one per labelled output) and each variant's outputs. Nothing is ever fed
by position: the converter and the interpreter may order a model's inputs and outputs differently from Keras
(alphabetically, for instance). Plain numpy; no TensorFlow, no LiteRT.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.errors import ModelRejected

Arrays = dict[str, np.ndarray]

_SIGNATURE_PREFIX = "serving_default_"
_OUTPUT_KEY = re.compile(r"^output_(\d+)$")


def short_name(name: str) -> str:
    """A tensor name without what converters add around it: ``serving_default_image:0`` -> ``image``."""
    name = name.removeprefix(_SIGNATURE_PREFIX)
    return re.sub(r":\d+$", "", name)


def bind(wanted: Sequence[str], found: Sequence[str], what: str) -> dict[str, str]:
    """``{wanted name: found name}``: which tensor of a file (``found``) is which tensor of the model
    (``wanted``, in the model's order). Matched by exact name, then by :func:`short_name`, then Keras's export
    keys ``output_<k>`` to the model's k-th output, then, for one tensor on each side, that one. Anything else
    is refused with both lists named: a guess by position would feed the wrong data silently."""
    if len(wanted) != len(found):
        raise ModelRejected(f"{what}: expected {len(wanted)} tensor(s) {list(wanted)}; the file has "
                            f"{len(found)}: {list(found)}")
    if len(wanted) == 1:
        return {wanted[0]: found[0]}
    by_short = {short_name(name): name for name in found}
    by_export_index = {int(m.group(1)): name for name in found if (m := _OUTPUT_KEY.match(name))}
    bound: dict[str, str] = {}
    for index, name in enumerate(wanted):
        match = (name if name in found else by_short.get(short_name(name))
                 or by_export_index.get(index))
        if match is None:
            raise ModelRejected(f"{what}: no tensor of the file matches the model's {name!r}; the model has "
                                f"{list(wanted)}, the file {list(found)}")
        bound[name] = match
    if len(set(bound.values())) != len(bound):
        raise ModelRejected(f"{what}: the model's tensors {list(wanted)} do not match the file's {list(found)} "
                            "one to one")
    return bound


def by_name(names: Sequence[str], given: Any, what: str, error: type[Exception] = ModelRejected) -> Arrays:
    """``{name: array}`` in ``names``' order from what a caller gave: a dict keyed by those names or, for a
    one-input model, one bare array. Anything else is refused with the names it needs."""
    names = list(names)
    if not isinstance(given, Mapping):
        if len(names) != 1:
            raise error(f"{what}: the model has inputs {names}; give a dict keyed by those names")
        return {names[0]: np.asarray(given)}
    missing = [name for name in names if name not in given]
    if missing:
        raise error(f"{what}: no arrays for input(s) {missing}; the model has inputs {names}")
    return {name: np.asarray(given[name]) for name in names}


def sample_count(arrays: Mapping[str, np.ndarray]) -> int:
    """How many samples the arrays hold (they all hold the same number; intake checks it)."""
    return len(next(iter(arrays.values()))) if arrays else 0


def take(arrays: Mapping[str, np.ndarray], start: int, stop: int) -> Arrays:
    """Samples ``start:stop`` of every tensor."""
    return {name: array[start:stop] for name, array in arrays.items()}


def pick(arrays: Mapping[str, np.ndarray], indices: np.ndarray) -> Arrays:
    return {name: array[indices] for name, array in arrays.items()}


def load(paths: Mapping[str, str | Path]) -> Arrays:
    """``{tensor name: array}`` from ``{tensor name: .npy path}`` (files this run wrote; never pickles)."""
    return {name: np.load(path, allow_pickle=False) for name, path in paths.items()}


def save_outputs(outputs: Mapping[str, np.ndarray], path: Path) -> None:
    """One variant's outputs, by output name, as an ``.npz`` (the names are the archive's keys)."""
    arrays: dict[str, Any] = {name: np.asarray(array) for name, array in outputs.items()}
    np.savez(path, **arrays)


def load_outputs(path: Path) -> Arrays:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
