"""Every variant's recipe, run in a fresh process, reproduces the tool's own file: same ops, same dtypes,
size within 1%."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from optimizer.measure.runtime import audit_ops


def _cases(result):
    return [(result.out_dir, row) for row in result.rows if row["status"] == "ok"]


@pytest.fixture(scope="module")
def all_variants(digits_run, training_run, digits_diagnosis, tflite_run):
    cases = _cases(digits_run) + _cases(tflite_run)
    cases += [(training_run.out_dir, r) for r in training_run.rows if r["variant"] in ("qat", "prune_2x4")]
    cases += [(digits_diagnosis.out_dir, r) for r in digits_diagnosis.rows if r["variant"] == "mixed_int8"]
    return cases


def _run(case):
    out_dir, row = case
    recipe = out_dir / row["recipe_path"]
    result = subprocess.run([sys.executable, str(recipe)], cwd="/", capture_output=True, text=True, timeout=600)
    return out_dir, row, result


def test_every_recipe_reproduces_its_variant(all_variants):
    kinds = {row["kind"] for _, row in all_variants}
    assert {"float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8", "aeq_dynamic_int8",
            "aeq_weight_only_int8", "aeq_static_int8", "qat", "prune_2x4", "mixed_int8"} <= kinds
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_run, all_variants))
    for out_dir, row, result in results:
        assert result.returncode == 0, (row["variant"], result.stderr[-2000:])
        original = out_dir / row["path"]
        reproduced = original.with_suffix(".recipe.tflite")
        ours, theirs = audit_ops(original), audit_ops(reproduced)
        assert theirs.op_counts == ours.op_counts, row["variant"]
        assert (theirs.activation_dtypes, theirs.weight_dtypes) == (ours.activation_dtypes, ours.weight_dtypes)
        assert (theirs.input_dtypes, theirs.output_dtypes) == (ours.input_dtypes, ours.output_dtypes)
        assert abs(reproduced.stat().st_size - original.stat().st_size) <= 0.01 * original.stat().st_size


def test_recipes_are_plain_python_with_the_settings(digits_run):
    row = next(r for r in digits_run.rows if r["variant"] == "int8_io")
    text = (digits_run.out_dir / row["recipe_path"]).read_text()
    assert "tf.lite.OpsSet.TFLITE_BUILTINS_INT8" in text and "inference_input_type = tf.int8" in text
    assert "safe_mode=True" in text and "[:200]" in text
    compile(text, "recipe", "exec")
