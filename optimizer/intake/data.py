"""Data intake: read an upload without pickle, check it against the model's input, split it reproducibly.

Accepted: ``.npz`` (``x``/``y``, or ``x_calib``/``x_eval``/``y_eval``), a pair of ``.npy`` (inputs and
labels), CSV (numeric feature columns plus a label column), and a ``.zip`` of images, one folder per class.
The prepared arrays are written as float32 ``.npy`` into the job folder for the workers.

A header can declare far more than the file holds (``(10**6, 10**6)`` float32 in a few bytes), so no array
data is read before its declared shape x dtype has been checked against the bytes actually present and
against :data:`MAX_ARRAY_BYTES` (``$STUDIO_MAX_ARRAY_MB``); CSV tables and image folders are bounded the same
way before they are parsed or decoded. :func:`check_data_files` runs every such check without a model.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from optimizer.errors import DataRejected
from optimizer.intake.archive import ArchiveLimits, check_zip

MAX_FILE_BYTES = 1024**3
ARRAY_LIMIT_VARIABLE = "STUDIO_MAX_ARRAY_MB"
MAX_ARRAY_BYTES = int(os.environ.get(ARRAY_LIMIT_VARIABLE, "2048")) * 1024**2  # one array in memory
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
SYNTHETIC_SAMPLES = 64
CSV_CELL_BYTES = 8  # pandas holds numeric columns as 64-bit values
_UNREADABLE = (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile)


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


def format_bytes(count: int) -> str:
    """``2.0 GiB``; exact below 1 KiB; a power of ten beyond what a float shows (declared sizes are unbounded)."""
    if count < 1024:
        return f"{count} bytes"
    if count >= 1000 * 1024**6:
        return f"about 10^{len(str(count)) - 1} bytes"
    exponent = min((count.bit_length() - 1) // 10, 6)
    return f"{count / 1024**exponent:.1f} {('KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB')[exponent - 1]}"


def _one_line(exc: BaseException) -> str:
    """A library's message as one short line (numpy's own messages span lines; headers are attacker text)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _limit_text() -> str:
    return f"the {format_bytes(MAX_ARRAY_BYTES)} memory limit for one array (${ARRAY_LIMIT_VARIABLE})"


def _check_size(path: Path) -> None:
    if not path.is_file():
        raise DataRejected(f"{path.name}: expected a data file; found nothing at that path")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataRejected(f"{path.name}: at most {MAX_FILE_BYTES} bytes allowed; found {size}")


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header declares, and where its data would start."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool
    data_offset: int

    @property
    def declared_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: a huge shape cannot overflow

    def describe(self) -> str:
        """``shape (1000000, 1000000) float32 = 3.6 TiB``; absurd sizes shortened to ``1.0e200``."""
        sizes = [str(size) if size < 10**15 else f"{str(size)[0]}.{str(size)[1]}e{len(str(size)) - 1}"
                 for size in self.shape[:8]]
        if len(self.shape) > 8:
            sizes.append(f"... {len(self.shape)} dimensions")
        shape = f"({sizes[0]},)" if len(sizes) == 1 else f"({', '.join(sizes)})"
        return f"shape {shape} {self.dtype} = {format_bytes(self.declared_bytes)}"


def read_npy_header(stream: IO[bytes], name: str) -> NpyHeader:
    """Read the magic and header at the stream's position, none of the data; refuse pickles and non-numbers."""
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise DataRejected(f"{name}: expected a .npy array of format 1.0 or 2.0; "
                               f"found format {version[0]}.{version[1]}")
        offset = stream.tell()
    except _UNREADABLE as exc:
        raise DataRejected(f"{name}: expected a .npy array; found unreadable data ({_one_line(exc)})") from None
    if dtype.hasobject:
        raise DataRejected(f"{name}: expected a plain numeric array; found pickled objects (refused)")
    if dtype.kind not in "biuf":
        raise DataRejected(f"{name}: expected a numeric array; found {dtype}")
    if any(size < 0 for size in shape):
        raise DataRejected(f"{name}: expected a shape of sizes >= 0; found {shape}")
    return NpyHeader(tuple(int(size) for size in shape), dtype, bool(fortran_order), offset)


def check_npy_header(stream: IO[bytes], name: str, stored_bytes: int, *, array: str, holder: str) -> NpyHeader:
    """The header at the stream's position, refused if its data is more than ``stored_bytes`` (header
    included) hold or more than :data:`MAX_ARRAY_BYTES`. ``array`` and ``holder`` word the message:
    ``"d.npz: array 'x'"`` and ``"its member 'x.npy'"``."""
    header = read_npy_header(stream, name)
    present = max(stored_bytes - header.data_offset, 0)
    if header.declared_bytes > present:
        raise DataRejected(f"{array} declares {header.describe()}; {holder} holds only {format_bytes(present)} "
                           f"of array data")
    if header.declared_bytes > MAX_ARRAY_BYTES:
        raise DataRejected(f"{array} declares {header.describe()}, over {_limit_text()}")
    return header


def _read_checked(stream: IO[bytes], header: NpyHeader, name: str) -> np.ndarray:
    """Read an array whose header :func:`check_npy_header` accepted, from the start of its stream."""
    stream.seek(0)
    try:
        array = npy_format.read_array(stream, allow_pickle=False)
    except MemoryError:
        raise DataRejected(f"{name}: not enough memory to read {format_bytes(header.declared_bytes)} "
                           f"of array data") from None
    except _UNREADABLE as exc:
        raise DataRejected(f"{name}: expected a .npy array; found unreadable data ({_one_line(exc)})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise DataRejected(f"{name}: expected a numeric array; found {getattr(array, 'dtype', type(array))}")
    return array


def _npy_file_header(handle: IO[bytes], path: Path) -> NpyHeader:
    return check_npy_header(handle, path.name, os.fstat(handle.fileno()).st_size,
                            array=f"{path.name}: array", holder="the file")


def _check_npy_file(path: Path) -> None:
    with open(path, "rb") as handle:
        _npy_file_header(handle, path)


def _load_npy_file(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        return _read_checked(handle, _npy_file_header(handle, path), path.name)


def _npz_members(path: Path) -> dict[str, zipfile.ZipInfo]:
    """The members a ``.npz`` upload is read from (key -> member), known from the zip directory alone."""
    members = check_zip(path, ArchiveLimits(max_members=64, max_total_bytes=MAX_ARRAY_BYTES * 2))
    by_name = {info.filename: info for info in members if not info.is_dir()}
    keys = {name.removesuffix(".npy") for name in by_name}
    if {"x_calib", "x_eval"} <= keys:
        wanted, optional = ["x_calib", "x_eval"], ["y_calib", "y_eval"]
    elif "x" in keys:
        wanted, optional = ["x"], ["y"]
    else:
        raise DataRejected(
            f"{path.name}: expected arrays 'x' (and optional 'y') or 'x_calib'+'x_eval'; found {sorted(keys)}"
        )
    chosen: dict[str, zipfile.ZipInfo] = {}
    for key in wanted + [k for k in optional if k in keys]:
        if f"{key}.npy" not in by_name:
            raise DataRejected(f"{path.name}: expected an array named {key!r}")
        chosen[key] = by_name[f"{key}.npy"]
    return chosen


def _npz_arrays(path: Path, read: bool) -> dict[str, np.ndarray]:
    """Check every member's header (against the member's size in the zip directory and the memory limit)
    before any member's data is read; then, if ``read``, read them."""
    members = _npz_members(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            headers = {}
            for key, info in members.items():
                with archive.open(info) as stream:
                    headers[key] = check_npy_header(stream, f"{path.name}[{key}]", info.file_size,
                                                    array=f"{path.name}: array {key!r}",
                                                    holder=f"its member {info.filename!r}")
            if read:
                for key, info in members.items():
                    with archive.open(info) as stream:
                        arrays[key] = _read_checked(stream, headers[key], f"{path.name}[{key}]")
    except (*_UNREADABLE, RuntimeError, NotImplementedError) as exc:  # zipfile: encrypted, unknown method
        raise DataRejected(f"{path.name}: expected an .npz archive; found unreadable data ({_one_line(exc)})") from None
    return arrays


def _load_npz(path: Path) -> Arrays:
    arrays = _npz_arrays(path, read=True)
    if "x_calib" in arrays:
        return Arrays(x=arrays["x_calib"], y=arrays.get("y_calib"), x_eval=arrays["x_eval"],
                      y_eval=arrays.get("y_eval"), source=f"{path.name} (calibration/evaluation split in file)")
    return Arrays(x=arrays["x"], y=arrays.get("y"), source=path.name)


def _check_csv(path: Path) -> None:
    """Bound the table pandas would build (rows x columns, counted without parsing) by the memory limit. Every
    line ending pandas accepts counts (\\n, \\r\\n and a bare \\r); a split \\r\\n only over-counts."""
    columns, rows, in_header, last = 1, 0, True, b"\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if in_header:
                ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
                end = min(ends) if ends else -1
                columns += chunk.count(b",", 0, len(chunk) if end < 0 else end)
                in_header = end < 0
            rows += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            last = chunk[-1:]
    if last not in (b"\n", b"\r"):
        rows += 1
    rows = max(rows - 1, 0)  # the header row
    declared = rows * columns * CSV_CELL_BYTES
    if declared > MAX_ARRAY_BYTES:
        raise DataRejected(f"{path.name}: a table of about {rows} rows x {columns} columns = "
                           f"{format_bytes(declared)} as 64-bit numbers, over {_limit_text()}")


def _load_csv(path: Path, label_column: str) -> Arrays:
    import pandas as pd

    _check_csv(path)
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many parser errors
        raise DataRejected(f"{path.name}: expected a CSV table with a header row; {_one_line(exc)}") from None
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
    stacked = len(members) * height * width * channels * np.dtype(np.float32).itemsize
    if stacked > MAX_ARRAY_BYTES:
        raise DataRejected(f"{path.name}: {len(members)} images at {height}x{width}x{channels} float32 = "
                           f"{format_bytes(stacked)}, over {_limit_text()}")
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
                except Image.DecompressionBombError as exc:  # declared dimensions, checked before decoding
                    raise DataRejected(f"{path.name}: image {member.orig_filename!r} is too large to decode "
                                       f"({_one_line(exc)})") from None
                except Exception as exc:  # noqa: BLE001 - PIL raises many types
                    raise DataRejected(f"{path.name}: expected a readable image at {member.orig_filename!r}; "
                                       f"{type(exc).__name__}") from None
                ys.append(label)
    return Arrays(x=np.stack(xs), y=np.asarray(ys, dtype=np.int64), source=path.name, classes=classes,
                  notes=[f"images resized to {height}x{width}x{channels}, scaled to [0, 1]"])


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy", ".csv", ".zip"):
        raise DataRejected(f"{path.name}: expected .npz, .npy, .csv or an image .zip; found suffix {suffix!r}")
    return suffix


def check_data_files(*paths: Path | None, labels: Path | None = None) -> None:
    """Every check of data uploads that needs neither the model nor any array data: file sizes, zip
    directories, each array header against the bytes present and :data:`MAX_ARRAY_BYTES`, a CSV's rows x
    columns. Cheap; the CLI runs it before any worker starts, and :func:`read_data` repeats it."""
    for path in paths:
        if path is None:
            continue
        _check_size(path)
        suffix = _suffix(path)
        if suffix == ".npz":
            _npz_arrays(path, read=False)
        elif suffix == ".npy":
            _check_npy_file(path)
        elif suffix == ".csv":
            _check_csv(path)
        else:
            check_zip(path)
    if labels is not None:
        _check_size(labels)
        _check_npy_file(labels)


def read_data(path: Path, input_shape: list[int | None], labels_path: Path | None = None,
              label_column: str = "label") -> Arrays:
    """Read one data upload (plus a labels ``.npy`` for the pair form) without executing anything in it."""
    _check_size(path)
    suffix = _suffix(path)
    if labels_path is not None:  # both headers before either file's data
        _check_size(labels_path)
        _check_npy_file(labels_path)
    if suffix == ".npz":
        arrays = _load_npz(path)
    elif suffix == ".npy":
        arrays = Arrays(x=_load_npy_file(path), y=None, source=path.name)
    elif suffix == ".csv":
        arrays = _load_csv(path, label_column)
    else:
        arrays = _load_image_zip(path, input_shape)
    if labels_path is not None:
        arrays.y = _load_npy_file(labels_path)
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


@dataclass
class _Prepared:
    """The calibration and evaluation arrays chosen from the uploads, and how the data report words them."""

    eval_x: np.ndarray
    source: str
    split: str
    calib_x: np.ndarray | None = None
    calib_y: np.ndarray | None = None
    eval_y: np.ndarray | None = None
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def _check_data_request(data: Path | None, calib: Path | None, eval_data: Path | None,
                        eval_fraction: float) -> None:
    """Refuse one data file given together with separate files, and an evaluation fraction outside (0, 1)."""
    if data is not None and (calib is not None or eval_data is not None):
        raise DataRejected("give either one data file or separate calibration/evaluation files, not both")
    if not 0 < eval_fraction < 1:
        raise DataRejected(f"eval_fraction: expected a value in (0, 1); found {eval_fraction}")


def _synthetic_data(input_shape: list[int | None], seed: int) -> _Prepared:
    """Uniform [0, 1) inputs drawn by ``seed``, for fidelity only, when no data was given."""
    shape = [d if d is not None else 1 for d in input_shape[1:]]
    eval_x = np.random.default_rng(seed).uniform(0, 1, size=(SYNTHETIC_SAMPLES, *shape)).astype(np.float32)
    return _Prepared(eval_x=eval_x, source="synthetic", split="none",
                     notes=["no data: fidelity measured on synthetic uniform [0, 1) inputs; "
                            "calibrated variants are skipped; no accuracy"])


def _split_indices(count: int, eval_fraction: float, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, evaluation) sample indices of a random permutation by ``seed``."""
    if count < 2:
        raise DataRejected(f"{name}: expected at least 2 samples to split; found {count}")
    order = np.random.default_rng(seed).permutation(count)
    n_eval = max(1, int(round(count * eval_fraction)))
    return order[n_eval:], order[:n_eval]


def _one_file_data(data: Path, labels: Path | None, input_shape: list[int | None], output_shape: list[int | None],
                   label_column: str, eval_fraction: float, seed: int) -> _Prepared:
    """One upload: the calibration/evaluation split it carries, else a random split by ``seed``."""
    arrays = read_data(data, input_shape, labels, label_column)
    x, notes = fit_to_input(arrays.x, input_shape, data.name)
    y = check_labels(arrays.y, len(x), output_shape, data.name) if arrays.y is not None else None
    if arrays.x_eval is not None:
        calib_x, calib_y, split = x, y, "given in file"
        eval_x, _ = fit_to_input(arrays.x_eval, input_shape, f"{data.name}[x_eval]")
        eval_y = (check_labels(arrays.y_eval, len(eval_x), output_shape, f"{data.name}[y_eval]")
                  if arrays.y_eval is not None else None)
    else:
        calib_idx, eval_idx = _split_indices(len(x), eval_fraction, seed, data.name)
        calib_x, eval_x = x[calib_idx], x[eval_idx]
        calib_y, eval_y = (None, None) if y is None else (y[calib_idx], y[eval_idx])
        split = f"random permutation (seed {seed}): {len(calib_idx)} calibration, {len(eval_idx)} evaluation"
    return _Prepared(calib_x=calib_x, calib_y=calib_y, eval_x=eval_x, eval_y=eval_y, source=arrays.source,
                     split=split, classes=arrays.classes, notes=arrays.notes + notes)


def _separate_files_data(calib: Path | None, eval_data: Path | None, labels: Path | None,
                         input_shape: list[int | None], output_shape: list[int | None],
                         label_column: str) -> _Prepared:
    """A calibration file and an evaluation file (``labels`` belong to the evaluation file)."""
    if calib is None or eval_data is None:
        raise DataRejected("separate data needs both a calibration file and an evaluation file")
    calib_arrays = read_data(calib, input_shape, None, label_column)
    eval_arrays = read_data(eval_data, input_shape, labels, label_column)
    calib_x, _ = fit_to_input(calib_arrays.x, input_shape, calib.name)
    calib_y = (check_labels(calib_arrays.y, len(calib_x), output_shape, calib.name)
               if calib_arrays.y is not None else None)
    eval_x, notes = fit_to_input(eval_arrays.x, input_shape, eval_data.name)
    eval_y = (check_labels(eval_arrays.y, len(eval_x), output_shape, eval_data.name)
              if eval_arrays.y is not None else None)
    return _Prepared(calib_x=calib_x, calib_y=calib_y, eval_x=eval_x, eval_y=eval_y,
                     source=f"{calib_arrays.source} (calibration), {eval_arrays.source} (evaluation)",
                     split="separate files", classes=eval_arrays.classes, notes=notes + eval_arrays.notes)


def _write_arrays(workdir: Path, prepared: _Prepared) -> dict[str, str | None]:
    """Save each array there is as ``.npy`` in ``workdir``; the report's path of each (None if absent)."""
    paths: dict[str, str | None] = {"calibration_path": None, "calibration_labels_path": None,
                                    "eval_path": None, "eval_labels_path": None}
    for key, array, name in (("calibration_path", prepared.calib_x, "calib_x.npy"),
                             ("calibration_labels_path", prepared.calib_y, "calib_y.npy"),
                             ("eval_path", prepared.eval_x, "eval_x.npy"),
                             ("eval_labels_path", prepared.eval_y, "eval_y.npy")):
        if array is not None:
            np.save(workdir / name, array, allow_pickle=False)
            paths[key] = str(workdir / name)
    return paths


def _describe_arrays(prepared: _Prepared) -> dict[str, Any]:
    """The data report's counts, sample shape, label classes and the digest of every array."""
    calib_x, eval_x, eval_y = prepared.calib_x, prepared.eval_x, prepared.eval_y
    return {
        "calibration_samples": 0 if calib_x is None else len(calib_x),
        "eval_samples": len(eval_x),
        "sample_shape": list(eval_x.shape[1:]),
        "labelled": eval_y is not None,
        "label_classes": None if eval_y is None or eval_y.dtype.kind == "f" else sorted(set(eval_y.tolist())),
        "class_names": prepared.classes,
        "dataset_sha256": _digest(calib_x, prepared.calib_y, eval_x, eval_y),
    }


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
    _check_data_request(data, calib, eval_data, eval_fraction)
    workdir.mkdir(parents=True, exist_ok=True)
    if data is None and calib is None and eval_data is None:
        prepared = _synthetic_data(input_shape, seed)
    elif data is not None:
        prepared = _one_file_data(data, labels, input_shape, output_shape, label_column, eval_fraction, seed)
    else:
        prepared = _separate_files_data(calib, eval_data, labels, input_shape, output_shape, label_column)
    report: dict[str, Any] = {"notes": prepared.notes, "seed": seed, "source": prepared.source,
                              "split": prepared.split}
    report.update(_write_arrays(workdir, prepared))
    report.update(_describe_arrays(prepared))
    return report
