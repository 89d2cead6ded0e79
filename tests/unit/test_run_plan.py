"""The run plan is pure: which variants a run makes, in which order, which are skipped or failed before
anything runs and why, and which worker makes the others; decided without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.errors import InvalidOption
from optimizer.run.plan import PlanFacts, plan_run
from optimizer.variants import SourceFormat, VariantKind, VariantSpec

PROJECT = Path(__file__).resolve().parents[2]
KERAS_WITH_LABELS = PlanFacts(source=SourceFormat.TENSORFLOW, trainable=True, model_format="keras",
                              has_calibration=True, has_calibration_labels=True, classification=True)


def _specs(*kinds: str) -> list[VariantSpec]:
    return [VariantSpec(k) for k in kinds]


def test_float32_comes_first_and_is_added_when_missing():
    plan = plan_run(_specs("int8", "float16"), KERAS_WITH_LABELS)
    assert [s.name for s in plan.variants] == ["float32", "int8", "float16"] and not plan.refused


def test_default_plan_is_every_post_training_kind_of_the_source():
    assert [s.kind for s in plan_run(None, KERAS_WITH_LABELS).variants] == [
        VariantKind.FLOAT32, VariantKind.FLOAT16, VariantKind.DYNAMIC_RANGE, VariantKind.INT8, VariantKind.INT8_IO,
        VariantKind.INT16X8]
    tflite = PlanFacts(SourceFormat.TFLITE, False, "tflite", True, False, True)
    assert [str(s.kind) for s in plan_run(None, tflite).variants] == [
        "float32", "aeq_dynamic_int8", "aeq_weight_only_int8", "aeq_static_int8"]


@pytest.mark.parametrize(("facts", "kind", "status", "reason"), [
    (PlanFacts(SourceFormat.TFLITE, False, "tflite", True, True, True), "float16", "skipped",
     "cannot be made from a tflite model"),
    (PlanFacts(SourceFormat.TENSORFLOW, False, "saved_model_zip", True, True, True), "qat", "skipped",
     "training needs a Keras model (.keras or .h5); found a saved_model_zip"),
    (PlanFacts(SourceFormat.TENSORFLOW, True, "keras", True, False, False), "prune", "failed",
     "training needs labelled training data"),
    (PlanFacts(SourceFormat.TENSORFLOW, True, "keras", False, False, False), "int8", "skipped",
     "needs calibration data; none was given"),
    (PlanFacts(SourceFormat.TENSORFLOW, True, "keras", True, True, False), "mixed_int8", "failed",
     "the selective search needs labelled classification data"),
])
def test_what_the_inputs_do_not_allow_is_refused_with_the_reason(facts, kind, status, reason):
    plan = plan_run(_specs(kind), facts)
    refused = plan.refused[kind]
    assert refused.status == status and refused.reason.startswith(reason)
    assert [s.name for s in plan.produced] == ["float32"]


def test_workers_and_conversion_shares():
    plan = plan_run(_specs("int8", "int8_io", "float16", "dynamic_range", "int16x8", "qat", "mixed_int8"),
                    KERAS_WITH_LABELS)
    assert [s.name for s in plan.by_worker("train")] == ["qat"]
    assert [s.name for s in plan.by_worker("diagnose")] == ["mixed_int8"]
    first, second = plan.conversion_shares()
    assert first[0].name == "float32"
    assert {"int8", "int8_io"} <= {s.name for s in first} or {"int8", "int8_io"} <= {s.name for s in second}
    assert sorted(s.name for s in first + second) == sorted(s.name for s in plan.by_worker("convert"))


def test_duplicate_names_are_refused():
    with pytest.raises(InvalidOption, match="variant names must be unique"):
        plan_run([VariantSpec("int8"), VariantSpec("int8")], KERAS_WITH_LABELS)


def test_planning_imports_no_tensorflow():
    script = ("import sys; from optimizer.run.plan import PlanFacts, plan_run; from optimizer.variants import "
              "SourceFormat; plan_run(None, PlanFacts(SourceFormat.TENSORFLOW, True, 'keras', True, True, True)); "
              "heavy = [m for m in ('tensorflow', 'keras', 'ai_edge_litert', 'tensorflow_model_optimization') "
              "if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
