import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from optimizer.errors import DataRejected
from optimizer.intake.data import check_labels, fit_to_input, prepare_data, read_data
from optimizer.records import TensorInfo

IMAGE_INPUT = (TensorInfo("image", (None, 8, 8, 1), "float32"),)
TEN_CLASSES = (TensorInfo("digit", (None, 10), "float32"),)
TABLE_INPUT = (TensorInfo("features", (None, 2), "float32"),)
TWO_CLASSES = (TensorInfo("label", (None, 2), "float32"),)


def test_npz_split_is_deterministic_and_recorded(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.uniform(size=(40, 8, 8, 1)).astype(np.float32), y=np.arange(40) % 10)
    first = prepare_data(tmp_path / "a", IMAGE_INPUT, TEN_CLASSES, data=tmp_path / "d.npz", seed=3)
    second = prepare_data(tmp_path / "b", IMAGE_INPUT, TEN_CLASSES, data=tmp_path / "d.npz", seed=3)
    assert first["split"].startswith("random permutation (seed 3): 20 calibration, 20 evaluation")
    assert first["dataset_sha256"] == second["dataset_sha256"]
    other = prepare_data(tmp_path / "c", IMAGE_INPUT, TEN_CLASSES, data=tmp_path / "d.npz", seed=4)
    assert other["dataset_sha256"] != first["dataset_sha256"]
    assert np.load(first["evaluation"]["image"]).dtype == np.float32


def test_npy_pair_and_missing_channel_axis(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((6, 8, 8), dtype=np.float64))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 3, 4, 5]))
    report = prepare_data(tmp_path / "w", IMAGE_INPUT, TEN_CLASSES, data=tmp_path / "x.npy",
                          labels=tmp_path / "y.npy")
    assert report["labelled"] and report["sample_shape"] == [8, 8, 1]
    assert "added a trailing channel axis of size 1" in report["notes"]


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataRejected, match="pickled objects"):
        read_data(tmp_path / "evil.npy", IMAGE_INPUT)


def test_wrong_shape_names_expected_and_found():
    with pytest.raises(DataRejected, match=r"input 'image' expects samples of shape \(8, 8, 1\).*found \(7, 7, 1\)"):
        fit_to_input(np.zeros((3, 7, 7, 1)), IMAGE_INPUT[0], "d.npz")


def test_nan_values_and_label_range_are_refused():
    x = np.zeros((3, 8, 8, 1), dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(DataRejected, match="1 NaN/Inf"):
        fit_to_input(x, IMAGE_INPUT[0], "d")
    with pytest.raises(DataRejected, match=r"class labels of output .digit. in 0..9.*from 0 to 12"):
        check_labels(np.array([0, 3, 12]), 3, TEN_CLASSES[0], "d")
    with pytest.raises(DataRejected, match="one label of output .digit. per sample"):
        check_labels(np.array([0, 1]), 3, TEN_CLASSES[0], "d")


def test_csv_features_and_label_column(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,1\n7,8,0\n")
    report = prepare_data(tmp_path / "w", TABLE_INPUT, TWO_CLASSES, data=tmp_path / "t.csv")
    assert report["labelled"] and report["label_classes"] == [0, 1]
    (tmp_path / "bad.csv").write_text("a,b,label\n1,x,0\n")
    with pytest.raises(DataRejected, match="numeric feature columns"):
        read_data(tmp_path / "bad.csv", TABLE_INPUT)


def test_image_zip_one_folder_per_class(tmp_path):
    path = tmp_path / "imgs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for cls, value in (("cat", 0), ("dog", 255)):
            for i in range(2):
                buffer = io.BytesIO()
                Image.new("RGB", (16, 16), (value, value, value)).save(buffer, format="PNG")
                archive.writestr(f"{cls}/{i}.png", buffer.getvalue())
    upload = read_data(path, IMAGE_INPUT, TEN_CLASSES)
    x, y = upload.inputs["image"], upload.labels["digit"]
    assert x.shape == (4, 8, 8, 1) and upload.classes == ["cat", "dog"]
    assert x[:2].max() == 0.0 and x[2:].min() == 1.0
    assert y.tolist() == [0, 0, 1, 1]


def test_no_data_gives_synthetic_inputs_only(tmp_path):
    report = prepare_data(tmp_path, IMAGE_INPUT, TEN_CLASSES)
    assert report["source"] == "synthetic" and report["calibration"] == {}
    assert not report["labelled"] and np.load(report["evaluation"]["image"]).shape == (64, 8, 8, 1)


def test_separate_files_need_both(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 8, 8, 1), dtype=np.float32))
    with pytest.raises(DataRejected, match="both a calibration file and an evaluation file"):
        prepare_data(tmp_path / "w", IMAGE_INPUT, TEN_CLASSES, calib=tmp_path / "c.npy")


TWO_INPUTS = (TensorInfo("stats", (None, 3), "float32"), TensorInfo("tokens", (None, 4), "int32"))
TWO_OUTPUTS = (TensorInfo("digit", (None, 10), "float32"), TensorInfo("ink", (None, 1), "float32"))


def _two_input_npz(path, **extra):
    rng = np.random.default_rng(0)
    np.savez(path, stats=rng.normal(size=(10, 3)), tokens=rng.integers(0, 9, (10, 4)), **extra)


def test_arrays_named_after_the_inputs_and_labels_per_output(tmp_path):
    _two_input_npz(tmp_path / "d.npz", y_digit=np.arange(10) % 10)
    report = prepare_data(tmp_path / "w", TWO_INPUTS, TWO_OUTPUTS, data=tmp_path / "d.npz")
    assert set(report["calibration"]) == {"stats", "tokens"} and set(report["evaluation_labels"]) == {"digit"}
    assert np.load(report["evaluation"]["stats"]).dtype == np.float32  # float64 upload -> the float input's float32
    assert np.load(report["evaluation"]["tokens"]).dtype == np.int32  # token ids keep the input's integer dtype
    assert report["inputs"]["tokens"] == {"shape": [4], "dtype": "int32"} and "ink" not in report["labels"]
    assert report["feeds"] == {"in:stats": "d.npz: stats", "in:tokens": "d.npz: tokens",
                               "label:digit": "d.npz: y_digit"}


def test_multi_input_refusals_name_the_tensor_expected_and_found(tmp_path):
    np.savez(tmp_path / "missing.npz", stats=np.zeros((4, 3)))
    with pytest.raises(DataRejected, match=r"one array per input named \['stats', 'tokens'\].*missing \['tokens'\]"):
        prepare_data(tmp_path / "w", TWO_INPUTS, TWO_OUTPUTS, data=tmp_path / "missing.npz")
    _two_input_npz(tmp_path / "ambiguous.npz", y=np.zeros(10))
    with pytest.raises(DataRejected, match=r"'y' is ambiguous.*y_<output name>"):
        prepare_data(tmp_path / "w", TWO_INPUTS, TWO_OUTPUTS, data=tmp_path / "ambiguous.npz")
    np.savez(tmp_path / "fraction.npz", stats=np.zeros((4, 3)), tokens=np.full((4, 4), 0.5))
    with pytest.raises(DataRejected, match=r"input 'tokens' takes whole numbers \(int32\)"):
        prepare_data(tmp_path / "w", TWO_INPUTS, TWO_OUTPUTS, data=tmp_path / "fraction.npz")
    np.savez(tmp_path / "counts.npz", stats=np.zeros((4, 3)), tokens=np.zeros((5, 4), dtype=np.int32))
    with pytest.raises(DataRejected, match=r"same number of samples for every input; found \{'stats': 4, 'tokens': 5"):
        prepare_data(tmp_path / "w", TWO_INPUTS, TWO_OUTPUTS, data=tmp_path / "counts.npz")
    (tmp_path / "t.csv").write_text("a,b,c,label\n1,2,3,0\n4,5,6,1\n")
    with pytest.raises(DataRejected, match=r"feeds a model with one input; this model has inputs \['stats', 'tok"):
        prepare_data(tmp_path / "w", TWO_INPUTS, TWO_OUTPUTS, data=tmp_path / "t.csv")


def test_uint8_pixels_out_of_range_are_refused(tmp_path):
    pixels = (TensorInfo("pixels", (None, 2, 2, 1), "uint8"),)
    np.savez(tmp_path / "p.npz", x=np.full((4, 2, 2, 1), 300))
    with pytest.raises(DataRejected, match=r"input 'pixels' takes uint8 values in 0..255; found values from 300"):
        prepare_data(tmp_path / "w", pixels, TEN_CLASSES, data=tmp_path / "p.npz")
