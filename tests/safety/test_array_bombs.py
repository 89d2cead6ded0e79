"""Arrays whose header declares more data than the file holds or than memory allows (issue 15): each is
refused from its header, before a byte of its data is read, with one line naming the array and its shape."""

import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format
from PIL import Image

from optimizer.errors import DataRejected, user_message
from optimizer.intake import data as data_module
from optimizer.intake.data import check_data_files, format_bytes, prepare_data, read_data
from optimizer.records import TensorInfo
from tests.conftest import DIGITS_MODEL

ROOT = Path(__file__).resolve().parents[2]
IMAGE_INPUT = (TensorInfo("image", (None, 8, 8, 1), "float32"),)
TEN_CLASSES = (TensorInfo("digit", (None, 10), "float32"),)
BOMB_SHAPE = (10**6, 10**6)  # 3.6 TiB of float32, declared in a 128-byte header
BOMB_SAYS = "declares shape (1000000, 1000000) float32 = 3.6 TiB"


def _header(shape: tuple[int, ...], descr: str = "<f4", version: tuple[int, int] = (1, 0)) -> bytes:
    buffer = io.BytesIO()
    write = npy_format.write_array_header_1_0 if version == (1, 0) else npy_format.write_array_header_2_0
    write(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _bomb_bytes(version: tuple[int, int] = (1, 0)) -> bytes:
    return _header(BOMB_SHAPE, version=version) + b"\0" * 16


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npz(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


def _refusal(path: Path, **kwargs) -> str:
    """The message of both entry points (the model-free pre-check and the reader), which must agree."""
    with pytest.raises(DataRejected) as checked:
        check_data_files(path, **kwargs)
    with pytest.raises(DataRejected) as read:
        read_data(path, IMAGE_INPUT, labels_path=kwargs.get("labels"))
    assert str(checked.value) == str(read.value)
    assert "\n" not in str(read.value)
    return str(read.value)


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_shape_bomb_npy_is_refused_from_its_header(tmp_path, version):
    path = tmp_path / "bomb.npy"
    path.write_bytes(_bomb_bytes(version))
    assert _refusal(path) == f"bomb.npy: array {BOMB_SAYS}; the file holds only 16 bytes of array data"


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_shape_bomb_npz_member_is_refused_from_the_zip_directory(tmp_path, compression):
    path = _npz(tmp_path / "bomb.npz", {"x.npy": _bomb_bytes(), "y.npy": _npy_bytes(np.arange(4))}, compression)
    assert _refusal(path) == f"bomb.npz: array 'x' {BOMB_SAYS}; its member 'x.npy' holds only 16 bytes of array data"


def test_bomb_in_any_member_read_is_refused_before_the_others_are_read(tmp_path):
    x = _npy_bytes(np.zeros((4, 8, 8, 1), dtype=np.float32))
    labels_bomb = _npz(tmp_path / "labels.npz", {"x.npy": x, "y.npy": _bomb_bytes()}, zipfile.ZIP_DEFLATED)
    assert _refusal(labels_bomb).startswith(f"labels.npz: array 'y' {BOMB_SAYS}")
    split_bomb = _npz(tmp_path / "split.npz", {"x_calib.npy": x, "x_eval.npy": _bomb_bytes(),
                                               "y_eval.npy": _npy_bytes(np.arange(4))})
    assert _refusal(split_bomb).startswith(f"split.npz: array 'x_eval' {BOMB_SAYS}")


def test_npy_declaring_more_rows_than_it_holds_below_the_limit(tmp_path):
    path = tmp_path / "short.npy"
    path.write_bytes(_header((1000, 64)) + np.zeros((10, 64), dtype=np.float32).tobytes())
    expected = ("short.npy: array declares shape (1000, 64) float32 = 250.0 KiB; "
                "the file holds only 2.5 KiB of array data")
    assert _refusal(path) == expected
    with pytest.raises(DataRejected) as caught:  # the path the pipeline and the app take
        prepare_data(tmp_path / "work", (TensorInfo("features", (None, 64), "float32"),), TEN_CLASSES, data=path)
    assert user_message(caught.value) == f"Data refused: {expected}"
    assert not (tmp_path / "work" / "calib_x.npy").exists()


def test_labels_npy_bomb_is_refused_before_the_inputs_are_read(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8, 1), dtype=np.float32))
    (tmp_path / "y.npy").write_bytes(_header((10**15,), "<i8") + b"\0" * 8)
    message = _refusal(tmp_path / "x.npy", labels=tmp_path / "y.npy")
    assert message == ("y.npy: array declares shape (1.0e15,) int64 = 7.1 PiB; "
                       "the file holds only 8 bytes of array data")


def test_absurd_shapes_cannot_overflow_and_stay_one_short_line(tmp_path):
    path = tmp_path / "absurd.npy"
    path.write_bytes(_header((10**200, 10**200, *range(1, 12)), version=(2, 0)) + b"\0" * 16)
    message = _refusal(path)
    assert message.startswith("absurd.npy: array declares shape (1.0e200, 1.0e200, 1, 2, 3, 4, 5, 6, ... "
                              "13 dimensions) float32 = about 10^")
    assert len(message) < 200


def test_array_over_the_memory_limit_is_refused_even_when_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "MAX_ARRAY_BYTES", 1024**2)
    np.save(tmp_path / "big.npy", np.zeros((2048, 256), dtype=np.float32))  # 2 MiB, all of it present
    limit = "over the 1.0 MiB memory limit for one array ($STUDIO_MAX_ARRAY_MB)"
    assert _refusal(tmp_path / "big.npy") == f"big.npy: array declares shape (2048, 256) float32 = 2.0 MiB, {limit}"
    # Random (no 200:1 zip bomb) and 1.5 MiB: under the archive's total of twice the limit.
    noise = np.random.default_rng(0).uniform(size=(1536, 256)).astype(np.float32)
    path = _npz(tmp_path / "big.npz", {"x.npy": _npy_bytes(noise)}, zipfile.ZIP_DEFLATED)
    assert _refusal(path) == f"big.npz: array 'x' declares shape (1536, 256) float32 = 1.5 MiB, {limit}"


def test_memory_limit_comes_from_the_environment():
    env = {**os.environ, "STUDIO_MAX_ARRAY_MB": "3"}
    code = "from optimizer.intake.data import MAX_ARRAY_BYTES; print(MAX_ARRAY_BYTES)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == str(3 * 1024**2), result.stderr


@pytest.mark.parametrize("descr, expected", [
    ("|O", "odd.npz[x]: expected a plain numeric array; found pickled objects (refused)"),
    ("<U8", "odd.npz[x]: expected a numeric array; found <U8"),
])
def test_non_numeric_headers_are_refused_before_reading(tmp_path, descr, expected):
    path = _npz(tmp_path / "odd.npz", {"x.npy": _header((4,), descr) + b"\0" * 64})
    assert _refusal(path) == expected


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])  # pandas reads all three; so does the bound
def test_csv_table_over_the_memory_limit_is_refused_before_parsing(tmp_path, monkeypatch, newline):
    monkeypatch.setattr(data_module, "MAX_ARRAY_BYTES", 16 * 1024)
    path = tmp_path / "wide.csv"
    path.write_bytes(("a,b,label" + newline + ("1,2,0" + newline) * 1000).encode())
    assert _refusal(path) == ("wide.csv: a table of about 1000 rows x 3 columns = 23.4 KiB as 64-bit numbers, "
                              "over the 16.0 KiB memory limit for one array ($STUDIO_MAX_ARRAY_MB)")


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_image_folders_are_bounded_before_decoding(tmp_path, monkeypatch):
    bomb = _npz(tmp_path / "bomb.zip", {"cat/a.png": _png(100_000, 100_000)})
    with pytest.raises(DataRejected, match=r"^bomb\.zip: image 'cat/a\.png' is too large to decode "
                                           r"\(Image size \(10000000000 pixels\) exceeds limit"):
        read_data(bomb, IMAGE_INPUT)
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    many = _npz(tmp_path / "many.zip", {f"cat/{i}.png": buffer.getvalue() for i in range(4)})
    monkeypatch.setattr(data_module, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(DataRejected, match=r"^many\.zip: 4 images at 8x8x1 float32 = 1\.0 KiB, over the 1000 bytes"):
        read_data(many, IMAGE_INPUT)


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1024, 5 * 1024**3, 4 * 10**12, 10**30)] == [
        "0 bytes", "1023 bytes", "1.0 KiB", "5.0 GiB", "3.6 TiB", "about 10^30 bytes"]


_PEAK_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("name, member", [("bomb.npz", True), ("bomb.npy", False)])
def test_cli_refuses_a_bomb_with_exit_2_one_line_and_little_memory(tmp_path, name, member):
    path = tmp_path / name
    if member:
        _npz(path, {"x.npy": _bomb_bytes(), "y.npy": _npy_bytes(np.arange(4))}, zipfile.ZIP_DEFLATED)
    else:
        path.write_bytes(_bomb_bytes())
    # Linux keeps a process's peak RSS across exec, so a child started straight from this (large) pytest
    # process would report pytest's peak: a small wrapper forks the CLI and reports the CLI's own peak.
    peak_file = tmp_path / "peak_kib"
    command = [sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), sys.executable, "-m", "optimizer", "run",
               str(DIGITS_MODEL), "--data", str(path), "--out", str(tmp_path / "out")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    stdout, stderr = result.stdout, result.stderr
    assert result.returncode == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    array = "array 'x'" if member else "array"
    assert lines == [f"Data refused: {name}: {array} {BOMB_SAYS}; " + (
        "its member 'x.npy'" if member else "the file") + " holds only 16 bytes of array data"]
    assert int(peak_file.read_text()) * 1024 < 2 * 1024**3  # kilobytes on Linux
    assert not (tmp_path / "out" / "work" / "calib_x.npy").exists()
