"""Every variant kind is complete in its one registry row: what it needs, how it is produced (converter
settings or an ai-edge-quantizer recipe, or a worker that trains or diagnoses), its words for the UI, its
defaults; its recipe compiles; the CLI parses it. None of this imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.errors import InvalidOption
from optimizer.produce.recipes import RecipeInputs, recipe_for
from optimizer.run.worker import TASKS
from optimizer.variants import (
    INT8,
    KINDS,
    ConverterSettings,
    KindInfo,
    SourceFormat,
    VariantKind,
    VariantSpec,
    default_kinds,
    parse_variant_list,
)

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", list(VariantKind))
def test_every_kind_has_a_complete_row(kind):
    info = KINDS[kind]
    assert info.kind == kind and info.label and info.summary.endswith(".") and info.sources
    assert info.worker_task in TASKS
    assert info.needs_calibration == ("calibration_samples" in info.option_defaults)
    if info.worker_task == "convert":
        if SourceFormat.TENSORFLOW in info.sources:
            assert info.converter is not None and info.converter.calibrate == info.needs_calibration
        else:
            assert info.aeq_recipe is not None
    if info.needs_training:
        assert info.worker_task == "train" and {"epochs", "batch_size", "learning_rate"} <= set(info.option_defaults)
    spec = VariantSpec(kind)
    assert VariantSpec.from_dict(spec.to_dict()) == spec
    source = SourceFormat.TENSORFLOW if SourceFormat.TENSORFLOW in info.sources else SourceFormat.TFLITE
    assert parse_variant_list(str(kind), source)[-1].kind == kind
    model_file, fmt = ("model.keras", "keras") if source is SourceFormat.TENSORFLOW else ("model.tflite", "tflite")
    inputs = RecipeInputs(model_file=model_file, model_format=fmt, calibration={"image": "work/calib_x_0.npy",
                                                                               "stats": "work/calib_x_1.npy"},
                          labels={"digit": "work/calib_y.npy"}, tasks={"digit": "classification"})
    compile(recipe_for(spec, inputs, float_layers=["a"]), f"{kind}.py", "exec")


def test_converter_settings_print_what_they_apply():
    class Converter:
        class TargetSpec:
            pass

        def __init__(self):
            self.target_spec = self.TargetSpec()

    code = KINDS[VariantKind.INT8_IO].converter.as_code()
    assert code == ("converter.optimizations = [tf.lite.Optimize.DEFAULT]\n"
                    "converter.representative_dataset = representative_dataset\n"
                    "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]\n"
                    "converter.inference_input_type = tf.int8\n"
                    "converter.inference_output_type = tf.int8\n")
    assert KINDS[VariantKind.FLOAT32].converter.as_code() == ""
    assert "experimental_new_quantizer" not in KINDS[VariantKind.INT16X8].converter.as_code()  # speed only
    with pytest.raises(InvalidOption, match="representative dataset"):
        INT8.apply(Converter(), None)


def test_a_row_that_contradicts_itself_is_refused():
    with pytest.raises(InvalidOption, match="exactly one"):
        KindInfo("broken", "broken", frozenset({SourceFormat.TENSORFLOW}), False, False, "Broken.")
    with pytest.raises(InvalidOption, match="needs_calibration"):
        KindInfo("broken", "broken", frozenset({SourceFormat.TENSORFLOW}), False, False, "Broken.",
                 converter=ConverterSettings(calibrate=True))


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(InvalidOption, match=r"expected one of float32, float16, .*; found 'int4'"):
        VariantSpec("int4")


def test_an_extra_kind_is_one_row_and_stays_out_of_default_lists():
    script = ("import sys; from optimizer.variants import KINDS, default_kinds, VariantSpec, SourceFormat; "
              "assert 'test_int8_uint8_io' in KINDS; VariantSpec('test_int8_uint8_io'); "
              "assert 'test_int8_uint8_io' not in default_kinds(SourceFormat.TENSORFLOW, training=True); "
              "assert 'tensorflow' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=60,
                          env={"STUDIO_EXTRA_KINDS": "tests.support.extra_kinds", "PYTHONPATH": str(PROJECT),
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert "test_int8_uint8_io" not in default_kinds(SourceFormat.TENSORFLOW, training=True)
