"""Hostile and broken uploads: each gets a clear error, nothing lands outside the job folder, and the
process (and the next job) lives on."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from optimizer.errors import DataRejected, ModelRejected, UnsafeArchive, user_message
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import inspect, run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import DIGITS_DATA, DIGITS_MODEL


def _files_outside(root: Path, job: Path) -> set[Path]:
    return {p for p in root.rglob("*") if job not in p.parents and p != job}


@pytest.fixture()
def lambda_model(hostile_dir: Path) -> Path:
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Dense(2)])
    path = hostile_dir / "lambda.keras"
    model.save(path)
    return path


def _assert_still_serving(tmp_path: Path) -> None:
    summary = inspect(DIGITS_MODEL, tmp_path / "next-job")
    assert summary["parameter_count"] > 50_000


def test_lambda_layer_model_is_refused(lambda_model, tmp_path):
    before = _files_outside(tmp_path, tmp_path / "job")
    with pytest.raises(ModelRejected, match="Lambda layer"):
        run_comparison(lambda_model, tmp_path / "job")
    assert _files_outside(tmp_path, tmp_path / "job") == before
    _assert_still_serving(tmp_path)


def test_lambda_layer_h5_is_refused_too(hostile_dir, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x + 1), keras.layers.Dense(2)])
    model.save(hostile_dir / "lambda.h5")
    with pytest.raises(ModelRejected, match="Lambda layer"):
        inspect(hostile_dir / "lambda.h5", tmp_path / "job")


def test_pickled_npy_is_refused_without_running_it(hostile_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    np.save(hostile_dir / "x.npy", np.array([Exploit()], dtype=object), allow_pickle=True)
    with pytest.raises(DataRejected, match="pickled objects") as caught:
        run_comparison(DIGITS_MODEL, tmp_path / "job", data=hostile_dir / "x.npy")
    assert not marker.exists()
    assert "Traceback" not in user_message(caught.value)
    _assert_still_serving(tmp_path)


def test_zip_with_parent_entry_is_refused(hostile_dir, tmp_path):
    path = hostile_dir / "model.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("sm/saved_model.pb"), b"x")
        archive.writestr(zipfile.ZipInfo("../../escaped.txt"), b"pwned")
    with pytest.raises(UnsafeArchive, match="stay inside"):
        run_comparison(path, tmp_path / "job")
    assert not list(tmp_path.rglob("escaped.txt")) and not (tmp_path.parent / "escaped.txt").exists()
    data_zip = hostile_dir / "images.zip"
    with zipfile.ZipFile(data_zip, "w") as archive:
        archive.writestr(zipfile.ZipInfo("cat/../../../escaped.png"), b"pwned")
    with pytest.raises(UnsafeArchive, match="stay inside"):
        run_comparison(DIGITS_MODEL, tmp_path / "job2", data=data_zip)
    _assert_still_serving(tmp_path)


def test_truncated_tflite_is_a_clean_error(digits_float_tflite, hostile_dir, tmp_path):
    path = hostile_dir / "truncated.tflite"
    path.write_bytes(digits_float_tflite.read_bytes()[:2000])
    with pytest.raises(ModelRejected, match="expected a valid TensorFlow Lite flatbuffer"):
        run_comparison(path, tmp_path / "job")
    junk = hostile_dir / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelRejected, match="TFL3"):
        inspect(junk, tmp_path / "job")
    _assert_still_serving(tmp_path)


def test_data_of_the_wrong_shape_names_both_shapes(hostile_dir, tmp_path):
    np.savez(hostile_dir / "wrong.npz", x=np.zeros((10, 7, 7, 1), dtype=np.float32), y=np.zeros(10, dtype=int))
    with pytest.raises(DataRejected, match=r"input .image. expects samples of shape \(8, 8, 1\).*found \(7, 7, 1\)"):
        run_comparison(DIGITS_MODEL, tmp_path / "job", [VariantSpec("float16")], data=hostile_dir / "wrong.npz")
    _assert_still_serving(tmp_path)


def test_labels_outside_the_model_classes(hostile_dir, tmp_path):
    data = np.load(DIGITS_DATA)
    np.savez(hostile_dir / "labels.npz", x=data["x_eval"][:20], y=np.full(20, 42))
    with pytest.raises(DataRejected, match=r"class labels of output .dense_1. in 0..9"):
        run_comparison(DIGITS_MODEL, tmp_path / "job", data=hostile_dir / "labels.npz",
                       options=RunOptions(warmup_runs=0))


def test_wrong_suffix_and_empty_file(hostile_dir, tmp_path):
    (hostile_dir / "model.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ModelRejected, match=r"expected a \.keras, \.h5, SavedModel \.zip or \.tflite"):
        inspect(hostile_dir / "model.pkl", tmp_path / "job")
    (hostile_dir / "empty.keras").write_bytes(b"")
    with pytest.raises(ModelRejected, match="non-empty"):
        inspect(hostile_dir / "empty.keras", tmp_path / "job")
