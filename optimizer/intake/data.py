"""Data intake: read an upload without pickle, check it against the model's inputs, split it reproducibly.

Accepted: ``.npz`` with one array per model input named after it (``x`` for a model with one input, or
``x_calib``/``x_eval``) and labels ``y`` (a model with one output) or ``y_<output name>``; a pair of ``.npy``
(inputs and labels), CSV (numeric feature columns plus a label column) and a ``.zip`` of images, one folder
per class, for models with one input. The prepared arrays are written as ``.npy`` into the job folder for the
workers, keyed by tensor name: float inputs as float32, integer inputs in their own dtype.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from optimizer.errors import DataRejected
from optimizer.intake.archive import ArchiveLimits, check_zip
from optimizer.records import TensorInfo
from optimizer.tensors import Arrays, pick, sample_count

MAX_FILE_BYTES = 1024**3
ARRAY_LIMIT_VARIABLE = "STUDIO_MAX_ARRAY_MB"
MAX_ARRAY_BYTES = int(os.environ.get(ARRAY_LIMIT_VARIABLE, "2048")) * 1024**2  # one array in memory
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
SYNTHETIC_SAMPLES = 64
CSV_CELL_BYTES = 8  # pandas holds numeric columns as 64-bit values
_UNREADABLE = (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile)


@dataclass
class Upload:
    """What one upload holds, keyed by the model's tensor names: the inputs (one array per model input), the
    labels of the outputs it labels, and the evaluation half when the file carries its own split."""

    inputs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    source: str
    eval_inputs: dict[str, np.ndarray] | None = None
    eval_labels: dict[str, np.ndarray] | None = None
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    feeds: dict[str, str] = field(default_factory=dict)  # "in:<input>" / "label:<output>" -> "file: array"


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


def _npz_layout(path: Path, keys: set[str], inputs: list[str], outputs: list[str]) -> dict[str, str]:
    """{array key: role} of a ``.npz`` for this model. Roles: ``in:<input>``, ``label:<output>``, and for the
    single-input split form ``eval_in:<input>`` / ``eval_label:<output>``. Labels are ``y`` for a model with
    one output, ``y_<output name>`` for any output; an unlabelled output gets fidelity only."""
    if len(inputs) == 1 and {"x_calib", "x_eval"} <= keys:
        layout = {"x_calib": f"in:{inputs[0]}", "x_eval": f"eval_in:{inputs[0]}"}
        if len(outputs) == 1:
            layout.update({k: f"{r}:{outputs[0]}" for k, r in (("y_calib", "label"), ("y_eval", "eval_label"))
                           if k in keys})
        return layout
    if len(inputs) == 1 and "x" in keys:
        layout = {"x": f"in:{inputs[0]}"}
    elif set(inputs) <= keys:
        layout = {name: f"in:{name}" for name in inputs}
    else:
        expected = "'x'" if len(inputs) == 1 else f"one array per input named {inputs}"
        extra = " (or 'x_calib' + 'x_eval')" if len(inputs) == 1 else ""
        missing = f"; missing {sorted(set(inputs) - keys)}" if len(inputs) > 1 else ""
        raise DataRejected(f"{path.name}: expected {expected}{extra} and optional labels; found arrays "
                           f"{sorted(keys)}{missing}")
    if "y" in keys:
        if len(outputs) != 1:
            raise DataRejected(f"{path.name}: array 'y' is ambiguous for a model with outputs {outputs}; name the "
                               f"labels of each labelled output y_<output name> (e.g. 'y_{outputs[0]}')")
        layout["y"] = f"label:{outputs[0]}"
    layout.update({f"y_{name}": f"label:{name}" for name in outputs if f"y_{name}" in keys})
    return layout


def _npz_members(path: Path, inputs: list[str] | None, outputs: list[str] | None) -> dict[str, zipfile.ZipInfo]:
    """The members a ``.npz`` upload is read from (key -> member), known from the zip directory alone; without
    a model (``inputs`` None), every member, so that every header can be checked."""
    members = check_zip(path, ArchiveLimits(max_members=64, max_total_bytes=MAX_ARRAY_BYTES * 2))
    by_name = {info.filename: info for info in members if not info.is_dir()}
    keys = {name.removesuffix(".npy") for name in by_name if name.endswith(".npy")}
    if not keys:
        raise DataRejected(f"{path.name}: expected .npy arrays inside the .npz; found {sorted(by_name)[:5]}")
    chosen = keys if inputs is None else set(_npz_layout(path, keys, inputs, outputs or []))
    return {key: by_name[f"{key}.npy"] for key in sorted(chosen)}


def _npz_arrays(path: Path, read: bool, inputs: list[str] | None = None,
                outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    """Check every member's header (against the member's size in the zip directory and the memory limit)
    before any member's data is read; then, if ``read``, read them."""
    members = _npz_members(path, inputs, outputs)
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


def _load_npz(path: Path, inputs: list[str], outputs: list[str]) -> Upload:
    arrays = _npz_arrays(path, True, inputs, outputs)
    roles = _npz_layout(path, set(arrays), inputs, outputs)
    by_role: dict[str, dict[str, np.ndarray]] = {"in": {}, "label": {}, "eval_in": {}, "eval_label": {}}
    keys: dict[str, list[str]] = {}
    for key, role in sorted(roles.items()):
        kind, _, name = role.partition(":")
        by_role[kind][name] = arrays[key]
        keys.setdefault(role.removeprefix("eval_"), []).append(key)
    feeds = {role: f"{path.name}: {' + '.join(names)}" for role, names in keys.items()}
    if by_role["eval_in"]:
        return Upload(by_role["in"], by_role["label"], f"{path.name} (calibration/evaluation split in file)",
                      eval_inputs=by_role["eval_in"], eval_labels=by_role["eval_label"], feeds=feeds)
    return Upload(by_role["in"], by_role["label"], path.name, feeds=feeds)


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


def _load_csv(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
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
    return frame.to_numpy(dtype=np.float32), labels, notes


def _load_image_zip(path: Path, input_shape: list[int | None]) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
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
    return (np.stack(xs), np.asarray(ys, dtype=np.int64), classes,
            [f"images resized to {height}x{width}x{channels}, scaled to [0, 1]"])


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


def _single_tensor_upload(path: Path, suffix: str, inputs: Sequence[TensorInfo], outputs: list[str],
                          label_column: str) -> Upload:
    """A ``.npy``, a CSV or an image folder: one array for the model's one input, labels for its one output."""
    if len(inputs) != 1:
        raise DataRejected(f"{path.name}: a {suffix} upload feeds a model with one input; this model has inputs "
                           f"{[t.name for t in inputs]}: give an .npz with one array per input, named after it")
    name, labels, classes = inputs[0].name, None, None
    notes: list[str] = []
    feeds = {".npy": path.name, ".csv": f"{path.name}: feature columns", ".zip": f"{path.name}: images"}
    label_feeds = {".csv": f"{path.name}: column {label_column!r}", ".zip": f"{path.name}: class folders"}
    if suffix == ".npy":
        x = _load_npy_file(path)
    elif suffix == ".csv":
        x, labels, notes = _load_csv(path, label_column)
    else:
        x, labels, classes, notes = _load_image_zip(path, list(inputs[0].shape))
    found = _single_labels(path, labels, outputs)
    return Upload({name: x}, found, path.name, classes=classes, notes=notes,
                  feeds={f"in:{name}": feeds[suffix], **{f"label:{o}": label_feeds[suffix] for o in found}})


def _single_labels(path: Path, labels: np.ndarray | None, outputs: list[str]) -> dict[str, np.ndarray]:
    """Labels without an output name (a CSV column, class folders, a labels .npy) label a model's one output."""
    if labels is None:
        return {}
    if len(outputs) != 1:
        raise DataRejected(f"{path.name}: these labels have no output name, and the model has outputs {outputs}; "
                           "give an .npz with y_<output name> arrays")
    return {outputs[0]: labels}


def read_data(path: Path, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo] = (),
              labels_path: Path | None = None, label_column: str = "label") -> Upload:
    """Read one data upload (plus a labels ``.npy`` for the pair form) for a model with these inputs and
    outputs, without executing anything in it; arrays come back keyed by the model's tensor names."""
    _check_size(path)
    suffix = _suffix(path)
    output_names = [t.name for t in outputs] or ["output"]
    if labels_path is not None:  # both headers before either file's data
        _check_size(labels_path)
        _check_npy_file(labels_path)
    if suffix == ".npz":
        upload = _load_npz(path, [t.name for t in inputs], output_names)
    else:
        upload = _single_tensor_upload(path, suffix, inputs, output_names, label_column)
    if labels_path is not None:
        upload.labels = _single_labels(labels_path, _load_npy_file(labels_path), output_names)
        upload.feeds.update({f"label:{name}": labels_path.name for name in upload.labels})
        upload.source += f" + {labels_path.name}"
    return upload


def fit_to_input(x: np.ndarray, tensor: TensorInfo, name: str) -> tuple[np.ndarray, list[str]]:
    """Check one input's samples against the model input (shape, finite values, dtype); add a trailing
    channel of 1 if missing. Float inputs are kept as float32; integer inputs (token ids, uint8 pixels) in
    the input's own dtype, refused when a value is not a whole number in its range."""
    expected = tuple(tensor.shape[1:])
    notes: list[str] = []
    if x.ndim == len(expected) and expected and expected[-1] == 1:
        x = x[..., np.newaxis]
        notes.append(f"{tensor.name}: added a trailing channel axis of size 1")
    sample_shape = x.shape[1:]
    fits = len(sample_shape) == len(expected) and all(
        e is None or e == s for e, s in zip(expected, sample_shape, strict=True))
    if not fits:
        shown = tuple("any" if e is None else e for e in expected)
        raise DataRejected(f"{name}: input {tensor.name!r} expects samples of shape {shown}; found {sample_shape}")
    if len(x) == 0:
        raise DataRejected(f"{name}: expected at least one sample for input {tensor.name!r}; found none")
    bad = int(np.count_nonzero(~np.isfinite(x))) if x.dtype.kind == "f" else 0
    if bad:
        raise DataRejected(f"{name}: expected finite values for input {tensor.name!r}; found {bad} NaN/Inf value(s)")
    return _in_dtype(x, tensor, name), notes


def _in_dtype(x: np.ndarray, tensor: TensorInfo, name: str) -> np.ndarray:
    wanted = np.dtype(tensor.data_dtype)
    if wanted.kind == "f":
        return x.astype(np.float32, copy=False)
    if wanted.kind == "b":
        return x.astype(bool)
    info = np.iinfo(wanted)
    if x.dtype.kind == "f" and not bool(np.all(np.mod(x, 1) == 0)):
        raise DataRejected(f"{name}: input {tensor.name!r} takes whole numbers ({wanted}); found fractional values")
    low, high = (x.min(), x.max()) if x.size else (0, 0)
    if low < info.min or high > info.max:
        raise DataRejected(f"{name}: input {tensor.name!r} takes {wanted} values in {info.min}..{info.max}; found "
                           f"values from {low} to {high}")
    return x.astype(wanted, copy=False)


def check_labels(y: np.ndarray, count: int, output: TensorInfo, name: str) -> np.ndarray:
    """One labelled output's labels: one per sample, finite, class indices within the output's width."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if len(y) != count:
        raise DataRejected(f"{name}: expected one label of output {output.name!r} per sample ({count}); found "
                           f"{len(y)} labels")
    if not np.all(np.isfinite(y.astype(np.float64))):
        raise DataRejected(f"{name}: expected finite labels for output {output.name!r}; found NaN/Inf")
    width = output.shape[-1] if output.shape and output.shape[-1] else 1
    whole = y.dtype.kind in "biu" or bool(np.all(np.mod(y, 1) == 0))
    if whole and width > 1 and y.ndim == 1 and (y.min() < 0 or y.max() >= width):
        raise DataRejected(f"{name}: expected class labels of output {output.name!r} in 0..{width - 1} (it has "
                           f"{width} units); found labels from {y.min()} to {y.max()}")
    return y.astype(np.int64) if whole and y.ndim == 1 else y.astype(np.float32)


def _digest(*groups: Arrays | None) -> str:
    digest = hashlib.sha256()
    for group in groups:
        for name, array in sorted((group or {}).items()):
            if len(group or {}) > 1:  # one tensor per group: the digest of earlier versions
                digest.update(name.encode())
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass
class _Prepared:
    """The calibration and evaluation arrays chosen from the uploads, by tensor name, and how the data report
    words them."""

    eval_x: Arrays
    source: str
    split: str
    calib_x: Arrays | None = None
    calib_y: Arrays | None = None
    eval_y: Arrays | None = None
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    feeds: dict[str, str] = field(default_factory=dict)


def _check_data_request(data: Path | None, calib: Path | None, eval_data: Path | None,
                        eval_fraction: float) -> None:
    """Refuse one data file given together with separate files, and an evaluation fraction outside (0, 1)."""
    if data is not None and (calib is not None or eval_data is not None):
        raise DataRejected("give either one data file or separate calibration/evaluation files, not both")
    if not 0 < eval_fraction < 1:
        raise DataRejected(f"eval_fraction: expected a value in (0, 1); found {eval_fraction}")


def synthetic_input(tensor: TensorInfo, count: int, rng: np.random.Generator) -> np.ndarray:
    """Stand-in samples for one input: uniform [0, 1) floats, 0/1 for integer ids (valid for any vocabulary),
    any value for uint8 pixels."""
    shape = [d if d is not None else 1 for d in tensor.shape[1:]]
    dtype = np.dtype(tensor.data_dtype)
    if dtype.kind == "f":
        return rng.uniform(0, 1, size=(count, *shape)).astype(np.float32)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=(count, *shape)).astype(bool)
    return rng.integers(0, 256 if dtype == np.uint8 else 2, size=(count, *shape)).astype(dtype)


def _synthetic_data(inputs: Sequence[TensorInfo], seed: int) -> _Prepared:
    """Random inputs drawn by ``seed``, for fidelity only, when no data was given."""
    rng = np.random.default_rng(seed)
    eval_x = {tensor.name: synthetic_input(tensor, SYNTHETIC_SAMPLES, rng) for tensor in inputs}
    return _Prepared(eval_x=eval_x, source="synthetic", split="none",
                     notes=["no data: fidelity measured on synthetic random inputs (uniform [0, 1) for float inputs); "
                            "calibrated variants are skipped; no accuracy"])


def _split_indices(count: int, eval_fraction: float, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, evaluation) sample indices of a random permutation by ``seed``."""
    if count < 2:
        raise DataRejected(f"{name}: expected at least 2 samples to split; found {count}")
    order = np.random.default_rng(seed).permutation(count)
    n_eval = max(1, int(round(count * eval_fraction)))
    return order[n_eval:], order[:n_eval]


def _fit_all(upload_inputs: dict[str, np.ndarray], inputs: Sequence[TensorInfo], name: str
             ) -> tuple[Arrays, list[str]]:
    """Every model input's samples, checked; the same number of samples for each."""
    fitted: Arrays = {}
    notes: list[str] = []
    for tensor in inputs:
        fitted[tensor.name], added = fit_to_input(upload_inputs[tensor.name], tensor, name)
        notes += added if len(inputs) > 1 else [n.split(": ", 1)[-1] for n in added]
    counts = {n: len(a) for n, a in fitted.items()}
    if len(set(counts.values())) > 1:
        raise DataRejected(f"{name}: expected the same number of samples for every input; found {counts}")
    return fitted, notes


def _check_all_labels(labels: dict[str, np.ndarray], count: int, outputs: Sequence[TensorInfo],
                      name: str) -> Arrays | None:
    by_name = {t.name: t for t in outputs}
    checked = {output: check_labels(y, count, by_name[output], name) for output, y in labels.items()}
    return checked or None


def _outputs_or_default(outputs: Sequence[TensorInfo]) -> Sequence[TensorInfo]:
    return outputs or (TensorInfo("output", (None,), "float32"),)


def _one_file_data(data: Path, labels: Path | None, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                   label_column: str, eval_fraction: float, seed: int) -> _Prepared:
    """One upload: the calibration/evaluation split it carries, else a random split by ``seed``."""
    upload = read_data(data, inputs, outputs, labels, label_column)
    x, notes = _fit_all(upload.inputs, inputs, data.name)
    y = _check_all_labels(upload.labels, sample_count(x), outputs, data.name)
    if upload.eval_inputs is not None:
        calib_x, calib_y, split = x, y, "given in file"
        eval_x, _ = _fit_all(upload.eval_inputs, inputs, f"{data.name}[x_eval]")
        eval_y = _check_all_labels(upload.eval_labels or {}, sample_count(eval_x), outputs, f"{data.name}[y_eval]")
    else:
        calib_idx, eval_idx = _split_indices(sample_count(x), eval_fraction, seed, data.name)
        calib_x, eval_x = pick(x, calib_idx), pick(x, eval_idx)
        calib_y, eval_y = (None, None) if y is None else (pick(y, calib_idx), pick(y, eval_idx))
        split = f"random permutation (seed {seed}): {len(calib_idx)} calibration, {len(eval_idx)} evaluation"
    return _Prepared(calib_x=calib_x, calib_y=calib_y, eval_x=eval_x, eval_y=eval_y, source=upload.source,
                     split=split, classes=upload.classes, notes=upload.notes + notes, feeds=upload.feeds)


def _separate_files_data(calib: Path | None, eval_data: Path | None, labels: Path | None,
                         inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo], label_column: str) -> _Prepared:
    """A calibration file and an evaluation file (``labels`` belong to the evaluation file)."""
    if calib is None or eval_data is None:
        raise DataRejected("separate data needs both a calibration file and an evaluation file")
    calib_upload = read_data(calib, inputs, outputs, None, label_column)
    eval_upload = read_data(eval_data, inputs, outputs, labels, label_column)
    calib_x, _ = _fit_all(calib_upload.inputs, inputs, calib.name)
    calib_y = _check_all_labels(calib_upload.labels, sample_count(calib_x), outputs, calib.name)
    eval_x, notes = _fit_all(eval_upload.inputs, inputs, eval_data.name)
    eval_y = _check_all_labels(eval_upload.labels, sample_count(eval_x), outputs, eval_data.name)
    return _Prepared(calib_x=calib_x, calib_y=calib_y, eval_x=eval_x, eval_y=eval_y,
                     source=f"{calib_upload.source} (calibration), {eval_upload.source} (evaluation)",
                     split="separate files", classes=eval_upload.classes, notes=notes + eval_upload.notes,
                     feeds={role: "; ".join(dict.fromkeys(f for f in (calib_upload.feeds.get(role),
                                                                     eval_upload.feeds.get(role)) if f))
                            for role in {**calib_upload.feeds, **eval_upload.feeds}})


def _write_group(workdir: Path, arrays: Arrays | None, stem: str, order: list[str]) -> dict[str, str]:
    """Save each tensor's array as ``<stem>.npy`` (one tensor) or ``<stem>_<position>.npy`` (the tensor's
    position in the model); returns {tensor name: path}."""
    paths: dict[str, str] = {}
    for name, array in (arrays or {}).items():
        file = workdir / (f"{stem}.npy" if len(order) == 1 else f"{stem}_{order.index(name)}.npy")
        np.save(file, array, allow_pickle=False)
        paths[name] = str(file)
    return paths


def _write_arrays(workdir: Path, prepared: _Prepared, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    """Every array there is, as ``.npy`` in ``workdir``; the report's {tensor name: path} of each group."""
    return {"calibration": _write_group(workdir, prepared.calib_x, "calib_x", inputs),
            "calibration_labels": _write_group(workdir, prepared.calib_y, "calib_y", outputs),
            "evaluation": _write_group(workdir, prepared.eval_x, "eval_x", inputs),
            "evaluation_labels": _write_group(workdir, prepared.eval_y, "eval_y", outputs)}


def _describe_arrays(prepared: _Prepared) -> dict[str, Any]:
    """The data report's counts, shapes and dtypes per tensor, label classes and the digest of every array."""
    calib_x, eval_x, eval_y = prepared.calib_x, prepared.eval_x, prepared.eval_y
    first_labels = next(iter((eval_y or {}).values()), None)
    return {
        "calibration_samples": sample_count(calib_x or {}),
        "eval_samples": sample_count(eval_x),
        "sample_shape": list(next(iter(eval_x.values())).shape[1:]),
        "inputs": {name: {"shape": list(a.shape[1:]), "dtype": a.dtype.name} for name, a in eval_x.items()},
        "labels": {name: {"shape": list(a.shape[1:]), "dtype": a.dtype.name} for name, a in (eval_y or {}).items()},
        "labelled": eval_y is not None,
        "label_classes": (None if first_labels is None or first_labels.dtype.kind == "f"
                          else sorted(set(first_labels.tolist()))),
        "class_names": prepared.classes,
        "dataset_sha256": _digest(calib_x, prepared.calib_y, eval_x, eval_y),
    }


def prepare_data(
    workdir: Path,
    inputs: Sequence[TensorInfo],
    outputs: Sequence[TensorInfo],
    data: Path | None = None,
    labels: Path | None = None,
    calib: Path | None = None,
    eval_data: Path | None = None,
    label_column: str = "label",
    eval_fraction: float = 0.5,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the calibration and evaluation arrays of every input (and the labels of every labelled output)
    into ``workdir``; return the data report, whose ``calibration`` / ``evaluation`` / ``*_labels`` entries map
    each tensor name to its file.

    Either one ``data`` file (split deterministically by ``seed`` unless it carries its own split), or
    separate ``calib`` and ``eval_data`` files, or nothing: then synthetic inputs serve fidelity only.
    """
    _check_data_request(data, calib, eval_data, eval_fraction)
    if not inputs:
        raise DataRejected("the model has no inputs to feed")
    workdir.mkdir(parents=True, exist_ok=True)
    outputs = _outputs_or_default(outputs)
    if data is None and calib is None and eval_data is None:
        prepared = _synthetic_data(inputs, seed)
    elif data is not None:
        prepared = _one_file_data(data, labels, inputs, outputs, label_column, eval_fraction, seed)
    else:
        prepared = _separate_files_data(calib, eval_data, labels, inputs, outputs, label_column)
    report: dict[str, Any] = {"notes": prepared.notes, "seed": seed, "source": prepared.source,
                              "split": prepared.split, "feeds": prepared.feeds}
    report.update(_write_arrays(workdir, prepared, [t.name for t in inputs], [t.name for t in outputs]))
    report.update(_describe_arrays(prepared))
    return report
