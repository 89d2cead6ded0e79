"""Matching a model's tensor names to a converted file's: by name, never silently by position."""

import numpy as np
import pytest

from optimizer.errors import ModelRejected, VariantFailed
from optimizer.tensors import bind, by_name, short_name


def test_exact_names_and_converter_decorations():
    assert bind(["stats", "image"], ["image", "stats"], "inputs") == {"stats": "stats", "image": "image"}
    assert short_name("serving_default_input_ids:0") == "input_ids"
    assert bind(["a", "b"], ["serving_default_b:0", "serving_default_a:0"], "inputs") == {
        "a": "serving_default_a:0", "b": "serving_default_b:0"}


def test_keras_export_output_keys_map_to_the_models_order():
    assert bind(["digit", "ink"], ["output_1", "output_0"], "outputs") == {"digit": "output_0", "ink": "output_1"}
    assert bind(["only"], ["StatefulPartitionedCall:0"], "outputs") == {"only": "StatefulPartitionedCall:0"}


def test_names_that_do_not_match_are_refused_not_guessed():
    with pytest.raises(ModelRejected, match=r"no tensor of the file matches the model's 'b'"):
        bind(["a", "b"], ["a", "c"], "inputs")
    with pytest.raises(ModelRejected, match=r"expected 2 tensor\(s\)"):
        bind(["a", "b"], ["a"], "inputs")


def test_arrays_by_input_name_from_a_dict_or_one_bare_array():
    image, stats = np.zeros((2, 4)), np.ones((2, 3))
    given = {"image": image, "stats": stats, "extra": image}
    assert list(by_name(["stats", "image"], given, "x")) == ["stats", "image"]
    assert by_name(["image"], image, "x")["image"] is not None
    with pytest.raises(VariantFailed, match=r"calibration: no arrays for input\(s\) \['stats'\]"):
        by_name(["image", "stats"], {"image": image}, "calibration", VariantFailed)
    with pytest.raises(ModelRejected, match="give a dict keyed by those names"):
        by_name(["image", "stats"], image, "check_inputs")
