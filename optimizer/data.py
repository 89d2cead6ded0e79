"""Data intake: read an upload without pickle, check it against the model's input, split it reproducibly.

Accepted: ``.npz`` (``x``/``y``, or ``x_calib``/``x_eval``/``y_eval``), a pair of ``.npy`` (inputs and
labels), CSV (numeric feature columns plus a label column), and a ``.zip`` of images, one folder per class.
The prepared arrays are written as float32 ``.npy`` into the job folder for the workers.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from optimizer.archive import ArchiveLimits, check_zip
from optimizer.errors import DataRejected

MAX_FILE_BYTES = 1024**3
MAX_ARRAY_BYTES = 2 * 1024**3
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
SYNTHETIC_SAMPLES = 64


@dataclass
class Arrays:
    """Inputs and optional labels read from one upload, with where they came from."""

    x: np.ndarray
    y: np.ndarray | None
    source: str
    x_eval: np.ndarray | None = None  # set when the file itself carries the split
    y_eval: np.ndarray | None = None
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def _check_size(path: Path) -> None:
    if not path.is_file():
        raise DataRejected(f"{path.name}: expected a data file; found nothing at that path")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataRejected(f"{path.name}: at most {MAX_FILE_BYTES} bytes allowed; found {size}")


def _load_npy(source: Any, name: str) -> np.ndarray:
    try:
        array = np.load(source, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataRejected(f"{name}: expected a plain numeric array; found pickled objects (refused)") from None
        raise DataRejected(f"{name}: expected a .npy array; found unreadable data ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DataRejected(f"{name}: expected a .npy array; found unreadable data ({exc})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        kind = getattr(array, "dtype", type(array))
        raise DataRejected(f"{name}: expected a numeric array; found {kind}")
    if array.nbytes > MAX_ARRAY_BYTES:
        raise DataRejected(f"{name}: at most {MAX_ARRAY_BYTES} bytes per array; found {array.nbytes}")
    return array


def _load_npz(path: Path) -> Arrays:
    check_zip(path, ArchiveLimits(max_members=64, max_total_bytes=MAX_ARRAY_BYTES * 2))
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataRejected(f"{path.name}: expected an .npz archive; found unreadable data ({exc})") from None
    with archive:
        keys = set(archive.files)

        def get(key: str) -> np.ndarray:
            try:
                return _load_npy(io.BytesIO(archive.zip.read(f"{key}.npy")), f"{path.name}[{key}]")
            except KeyError:
                raise DataRejected(f"{path.name}: expected an array named {key!r}") from None

        if {"x_calib", "x_eval"} <= keys:
            return Arrays(x=get("x_calib"), y=get("y_calib") if "y_calib" in keys else None,
                          x_eval=get("x_eval"), y_eval=get("y_eval") if "y_eval" in keys else None,
                          source=f"{path.name} (calibration/evaluation split in file)")
        if "x" not in keys:
            raise DataRejected(
                f"{path.name}: expected arrays 'x' (and optional 'y') or 'x_calib'+'x_eval'; found {sorted(keys)}"
            )
        return Arrays(x=get("x"), y=get("y") if "y" in keys else None, source=path.name)


def _load_csv(path: Path, label_column: str) -> Arrays:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many parser errors
        raise DataRejected(f"{path.name}: expected a CSV table with a header row; {exc}") from None
    labels = None
    if label_column in frame.columns:
        labels = frame.pop(label_column).to_numpy()
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataRejected(f"{path.name}: expected numeric feature columns; found text in {non_numeric[:5]}")
    if labels is not None and labels.dtype.kind not in "biuf":
        raise DataRejected(f"{path.name}: expected numeric labels in column {label_column!r}; found text")
    notes = [] if labels is not None else [f"no column named {label_column!r}: every column is a feature"]
    return Arrays(x=frame.to_numpy(dtype=np.float32), y=labels, source=path.name, notes=notes)


def _load_image_zip(path: Path, input_shape: list[int | None]) -> Arrays:
    from PIL import Image

    if len(input_shape) != 4 or input_shape[1] is None or input_shape[2] is None:
        raise DataRejected(f"{path.name}: image folders need a model input of shape (batch, H, W, C); "
                           f"found {input_shape}")
    height, width, channels = int(input_shape[1]), int(input_shape[2]), int(input_shape[3] or 3)
    if channels not in (1, 3):
        raise DataRejected(f"{path.name}: expected a model input with 1 or 3 channels; found {channels}")
    members = [m for m in check_zip(path) if not m.is_dir()
               and PurePosixPath(m.orig_filename).suffix.lower() in IMAGE_SUFFIXES]
    by_class: dict[str, list[zipfile.ZipInfo]] = {}
    for member in members:
        parts = PurePosixPath(member.orig_filename).parts
        if len(parts) < 2:
            raise DataRejected(f"{path.name}: expected images inside one folder per class; found {parts[0]!r} at top")
        by_class.setdefault(parts[-2], []).append(member)
    if len(by_class) < 1 or not members:
        raise DataRejected(f"{path.name}: expected image files in class folders; found none")
    classes = sorted(by_class)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    xs, ys = [], []
    with zipfile.ZipFile(path) as archive:
        for label, name in enumerate(classes):
            for member in sorted(by_class[name], key=lambda m: m.orig_filename):
                try:
                    with Image.open(io.BytesIO(archive.read(member))) as opened:
                        pixels = opened.convert("L" if channels == 1 else "RGB").resize((width, height))
                        xs.append(np.asarray(pixels, dtype=np.float32).reshape(height, width, channels) / 255.0)
                except Exception as exc:  # noqa: BLE001 - PIL raises many types, incl. DecompressionBombError
                    raise DataRejected(f"{path.name}: expected a readable image at {member.orig_filename!r}; "
                                       f"{type(exc).__name__}") from None
                ys.append(label)
    return Arrays(x=np.stack(xs), y=np.asarray(ys, dtype=np.int64), source=path.name, classes=classes,
                  notes=[f"images resized to {height}x{width}x{channels}, scaled to [0, 1]"])


def read_data(path: Path, input_shape: list[int | None], labels_path: Path | None = None,
              label_column: str = "label") -> Arrays:
    """Read one data upload (plus a labels ``.npy`` for the pair form) without executing anything in it."""
    _check_size(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _load_npz(path)
    elif suffix == ".npy":
        with open(path, "rb") as handle:
            arrays = Arrays(x=_load_npy(handle, path.name), y=None, source=path.name)
    elif suffix == ".csv":
        arrays = _load_csv(path, label_column)
    elif suffix == ".zip":
        arrays = _load_image_zip(path, input_shape)
    else:
        raise DataRejected(f"{path.name}: expected .npz, .npy, .csv or an image .zip; found suffix {suffix!r}")
    if labels_path is not None:
        _check_size(labels_path)
        with open(labels_path, "rb") as handle:
            arrays.y = _load_npy(handle, labels_path.name)
        arrays.source += f" + {labels_path.name}"
    return arrays


def fit_to_input(x: np.ndarray, input_shape: list[int | None], name: str) -> tuple[np.ndarray, list[str]]:
    """Check samples against the model input (shape, finite values); add a trailing channel of 1 if missing."""
    expected = tuple(input_shape[1:])
    notes: list[str] = []
    if x.ndim == len(expected) and expected and expected[-1] == 1:
        x = x[..., np.newaxis]
        notes.append("added a trailing channel axis of size 1")
    sample_shape = x.shape[1:]
    fits = len(sample_shape) == len(expected) and all(
        e is None or e == s for e, s in zip(expected, sample_shape, strict=True))
    if not fits:
        shown = tuple("any" if e is None else e for e in expected)
        raise DataRejected(f"{name}: expected samples of shape {shown} (the model input); found {sample_shape}")
    if len(x) == 0:
        raise DataRejected(f"{name}: expected at least one sample; found none")
    x = x.astype(np.float32, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataRejected(f"{name}: expected finite values; found {bad} NaN/Inf value(s)")
    return x, notes


def check_labels(y: np.ndarray, count: int, output_shape: list[int | None], name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if len(y) != count:
        raise DataRejected(f"{name}: expected one label per sample ({count}); found {len(y)} labels")
    if not np.all(np.isfinite(y.astype(np.float64))):
        raise DataRejected(f"{name}: expected finite labels; found NaN/Inf")
    width = output_shape[-1] if output_shape and output_shape[-1] else 1
    whole = y.dtype.kind in "biu" or bool(np.all(np.mod(y, 1) == 0))
    if whole and width > 1 and y.ndim == 1 and (y.min() < 0 or y.max() >= width):
        raise DataRejected(f"{name}: expected class labels in 0..{width - 1} (the model has {width} outputs); "
                           f"found labels from {y.min()} to {y.max()}")
    return y.astype(np.int64) if whole and y.ndim == 1 else y.astype(np.float32)


def _digest(*arrays: np.ndarray | None) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        if array is not None:
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def prepare_data(
    workdir: Path,
    input_shape: list[int | None],
    output_shape: list[int | None],
    data: Path | None = None,
    labels: Path | None = None,
    calib: Path | None = None,
    eval_data: Path | None = None,
    label_column: str = "label",
    eval_fraction: float = 0.5,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``calib_x.npy``, ``eval_x.npy`` (and ``eval_y.npy``) into ``workdir``; return the data report.

    Either one ``data`` file (split deterministically by ``seed`` unless it carries its own split), or
    separate ``calib`` and ``eval_data`` files, or nothing: then synthetic inputs serve fidelity only.
    """
    if data is not None and (calib is not None or eval_data is not None):
        raise DataRejected("give either one data file or separate calibration/evaluation files, not both")
    if not 0 < eval_fraction < 1:
        raise DataRejected(f"eval_fraction: expected a value in (0, 1); found {eval_fraction}")
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"notes": [], "seed": seed}
    calib_x = eval_x = eval_y = calib_y = None
    classes = None
    if data is None and calib is None and eval_data is None:
        shape = [d if d is not None else 1 for d in input_shape[1:]]
        eval_x = np.random.default_rng(seed).uniform(0, 1, size=(SYNTHETIC_SAMPLES, *shape)).astype(np.float32)
        report.update(source="synthetic", split="none",
                      notes=["no data: fidelity measured on synthetic uniform [0, 1) inputs; "
                             "calibrated variants are skipped; no accuracy"])
    elif data is not None:
        arrays = read_data(data, input_shape, labels, label_column)
        report["notes"] += arrays.notes
        classes = arrays.classes
        x, notes = fit_to_input(arrays.x, input_shape, data.name)
        report["notes"] += notes
        y = check_labels(arrays.y, len(x), output_shape, data.name) if arrays.y is not None else None
        if arrays.x_eval is not None:
            calib_x, calib_y = x, y
            eval_x, _ = fit_to_input(arrays.x_eval, input_shape, f"{data.name}[x_eval]")
            if arrays.y_eval is not None:
                eval_y = check_labels(arrays.y_eval, len(eval_x), output_shape, f"{data.name}[y_eval]")
            report.update(source=arrays.source, split="given in file")
        else:
            if len(x) < 2:
                raise DataRejected(f"{data.name}: expected at least 2 samples to split; found {len(x)}")
            order = np.random.default_rng(seed).permutation(len(x))
            n_eval = max(1, int(round(len(x) * eval_fraction)))
            eval_idx, calib_idx = order[:n_eval], order[n_eval:]
            calib_x, eval_x = x[calib_idx], x[eval_idx]
            if y is not None:
                calib_y, eval_y = y[calib_idx], y[eval_idx]
            report.update(source=arrays.source,
                          split=f"random permutation (seed {seed}): {len(calib_idx)} calibration, {n_eval} evaluation")
    else:
        if calib is None or eval_data is None:
            raise DataRejected("separate data needs both a calibration file and an evaluation file")
        calib_arrays = read_data(calib, input_shape, None, label_column)
        eval_arrays = read_data(eval_data, input_shape, labels, label_column)
        calib_x, _ = fit_to_input(calib_arrays.x, input_shape, calib.name)
        if calib_arrays.y is not None:
            calib_y = check_labels(calib_arrays.y, len(calib_x), output_shape, calib.name)
        eval_x, notes = fit_to_input(eval_arrays.x, input_shape, eval_data.name)
        report["notes"] += notes + eval_arrays.notes
        if eval_arrays.y is not None:
            eval_y = check_labels(eval_arrays.y, len(eval_x), output_shape, eval_data.name)
        classes = eval_arrays.classes
        report.update(source=f"{calib_arrays.source} (calibration), {eval_arrays.source} (evaluation)",
                      split="separate files")

    paths: dict[str, str | None] = {"calibration_path": None, "calibration_labels_path": None,
                                    "eval_path": None, "eval_labels_path": None}
    for key, array, name in (("calibration_path", calib_x, "calib_x.npy"),
                             ("calibration_labels_path", calib_y, "calib_y.npy"),
                             ("eval_path", eval_x, "eval_x.npy"), ("eval_labels_path", eval_y, "eval_y.npy")):
        if array is not None:
            np.save(workdir / name, array, allow_pickle=False)
            paths[key] = str(workdir / name)
    report.update(paths)
    report.update(
        calibration_samples=0 if calib_x is None else len(calib_x),
        eval_samples=len(eval_x),
        sample_shape=list(eval_x.shape[1:]),
        labelled=eval_y is not None,
        label_classes=None if eval_y is None or eval_y.dtype.kind == "f" else sorted(set(eval_y.tolist())),
        class_names=classes,
        dataset_sha256=_digest(calib_x, calib_y, eval_x, eval_y),
    )
    return report
