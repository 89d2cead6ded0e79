"""StoredRun and VariantResult: the typed, read-only view of a stored run that the Compare and History pages
draw from (reference, measured and failed variants, the results table, files resolved inside the run folder)."""

import math
import pickle

import pandas as pd
import pytest

from optimizer.errors import InvalidOption
from optimizer.report.charts import Budget
from optimizer.report.results import (
    TABLE_COLUMNS,
    StoredRun,
    VariantResult,
    combined_frame,
    has_results,
    to_frame,
)


def _rows() -> list[dict]:
    return [
        {"variant": "float32", "kind": "float32", "label": "float32", "status": "ok", "error": None,
         "size_bytes": 1000, "gzip_bytes": 900, "size_ratio": 1.0, "latency_ms_p50": 0.10, "latency_ms_p95": 0.20,
         "accuracy": 0.90, "fidelity_snr_db": float("inf"), "integer_only": False, "runtime": "ai_edge_litert",
         "runtime_version": "2.3.0", "threads": 1, "path": "variants/float32.tflite",
         "recipe_path": "variants/float32.py", "timings_ms": [0.1, 0.1, 0.11],
         "per_class_accuracy": {"0": 0.9, "1": 0.9}},
        {"variant": "int8", "kind": "int8", "label": "int8", "status": "ok", "error": "",
         "size_bytes": 300, "gzip_bytes": 250, "size_ratio": 0.3, "latency_ms_p50": 0.05, "latency_ms_p95": 0.08,
         "accuracy": 0.88, "accuracy_delta": -0.02, "flips": 3, "flip_indices": [4, 9, 11],
         "integer_only": True, "runtime": "ai_edge_litert", "runtime_version": "2.3.0", "threads": 1,
         "path": "../outside/int8.tflite", "recipe_path": "/etc/passwd"},
        {"variant": "float16", "kind": "float16", "status": "ok", "size_bytes": 500,
         "latency_ms_p50": float("nan"), "path": "variants/float16.tflite"},  # produced, not benchmarked
        {"variant": "int16x8", "kind": "int16x8", "status": "failed", "error": "calibration diverged"},
        {"variant": "dynamic_range", "kind": "dynamic_range", "status": "skipped", "error": None},
    ]


def _record(rows, **fields) -> dict:
    return {"id": "20250101-000000-abcdef12", "status": "done", "error": None, "model_name": "digits_cnn.keras",
            "rows": rows, "progress": {}, "inputs": {"model": {"name": "digits_cnn.keras", "sha256": "ab" * 32}},
            "options": {"variants": []}, "updated_at": 1700000000.5,
            "manifest": {"cpu": "AMD EPYC", "threads": 2, "versions": {"python": "3.11"},
                         "data": {"source": "digits.npz", "class_names": ["zero", "one"]}}, **fields}


@pytest.fixture()
def job_dir(tmp_path):
    folder = tmp_path / "jobs" / "20250101-000000-abcdef12"
    (folder / "variants").mkdir(parents=True)
    for name in ("float32.tflite", "float32.py", "float16.tflite"):
        (folder / "variants" / name).write_bytes(b"x")
    outside = tmp_path / "jobs" / "outside"
    outside.mkdir()
    (outside / "int8.tflite").write_bytes(b"secret")
    return folder


def test_a_row_becomes_typed_fields_and_keeps_the_raw_row():
    row = _rows()[0]
    result = VariantResult.from_row(row)
    assert (result.name, result.kind, result.status, result.error) == ("float32", "float32", "ok", "")
    assert result.size_bytes == 1000 and isinstance(result.size_bytes, int)
    assert result.latency_ms_p50 == pytest.approx(0.10) and result.fidelity_snr_db == math.inf
    assert result.integer_only is False and result.per_class_accuracy == {"0": 0.9, "1": 0.9}
    assert result.raw == row and result.raw is not row  # a copy: the view never changes the record
    assert result.ok and result.measured and result.failed_reason is None

    not_benchmarked = VariantResult.from_row(_rows()[2])
    assert not_benchmarked.ok and not not_benchmarked.measured and not_benchmarked.latency_ms_p50 is None
    skipped = VariantResult.from_row(_rows()[4])
    assert not skipped.ok and skipped.failed_reason == "no reason recorded"
    assert VariantResult.from_row({"variant": "x", "fidelity_snr_db": "inf", "flips": 2.0}).flips == 2
    with pytest.raises(InvalidOption, match="result row"):
        VariantResult.from_row({"status": "ok"})


def test_stored_run_reference_measured_and_failed(job_dir):
    run = StoredRun.from_record(_record(_rows()), job_dir)
    assert (run.id, run.status, run.error, run.model_name) == ("20250101-000000-abcdef12", "done", "",
                                                               "digits_cnn.keras")
    assert run.finished and run.has_results
    assert [v.name for v in run.variants] == ["float32", "int8", "float16", "int16x8", "dynamic_range"]
    assert run.reference is not None and run.reference.name == "float32"
    assert [v.name for v in run.measured] == ["float32", "int8"]
    assert [v.name for v in run.failed] == ["int16x8", "dynamic_range"]
    assert [(f.variant, f.status, f.reason) for f in run.failures] == [
        ("int16x8", "failed", "calibration diverged"), ("dynamic_range", "skipped", "no reason recorded")]
    assert run.variant("int8").flip_indices == (4, 9, 11)
    with pytest.raises(InvalidOption, match="no variant 'nope'"):
        run.variant("nope")
    assert run.rows == _rows()[:2] + [run.rows[2]] + _rows()[3:]  # float16's NaN is not equal to itself
    assert run.class_names == ["zero", "one"] and run.versions == {"python": "3.11"}
    environment = run.environment
    assert (environment.runtime, environment.runtime_version, environment.threads, environment.cpu,
            environment.data_source) == ("ai_edge_litert", "2.3.0", 2, "AMD EPYC", "digits.npz")
    assert environment.describe() == "AMD EPYC · ai_edge_litert 2.3.0 · 2 thread(s) · data: digits.npz"


def test_no_reference_when_float32_failed(job_dir):
    rows = [{"variant": "float32", "kind": "float32", "status": "failed", "error": "converter crashed"},
            {"variant": "float16", "kind": "float16", "status": "ok", "latency_ms_p50": 0.1}]
    run = StoredRun.from_record(_record(rows), job_dir)
    assert run.reference is None and [v.name for v in run.measured] == ["float16"]


def test_frame_is_built_once_and_the_table_shows_the_columns_with_values(job_dir):
    run = StoredRun.from_record(_record(_rows()), job_dir)
    assert run.frame() is run.frame()
    pd.testing.assert_frame_equal(run.frame(), to_frame(run.rows))
    table = run.table()
    assert list(table.columns) == [c for c in TABLE_COLUMNS if c in {
        "variant", "status", "size_bytes", "gzip_bytes", "size_ratio", "latency_ms_p50", "latency_ms_p95",
        "accuracy", "accuracy_delta", "flips", "fidelity_snr_db", "integer_only", "error"}]
    assert "mae" not in table.columns and "memory_peak_bytes" not in table.columns  # no variant has a value
    assert list(table["variant"]) == ["float32", "int8", "float16", "int16x8", "dynamic_range"]
    table["size_bytes"] = 0  # a copy: the frame the charts use is untouched
    assert run.frame()["size_bytes"].iloc[0] == 1000

    budgeted = run.table(Budget(max_size_bytes=400))
    assert list(budgeted.columns[:2]) == ["variant", "within_budget"]
    assert list(budgeted["within_budget"]) == [False, True, False, False, False]
    assert "within_budget" not in run.table().columns
    assert list(run.significance_table().columns)[:3] == ["variant", "accuracy_delta", "accuracy_delta_ci_low"]


def test_the_error_column_is_always_shown(job_dir):
    rows = [{"variant": "float32", "kind": "float32", "status": "ok", "latency_ms_p50": 0.1, "error": None}]
    assert "error" in StoredRun.from_record(_record(rows), job_dir).table().columns


def test_files_are_named_only_inside_the_run_folder(job_dir, tmp_path):
    (job_dir / "variants" / "link.tflite").symlink_to(tmp_path / "jobs" / "outside" / "int8.tflite")
    rows = _rows() + [{"variant": "linked", "kind": "int8", "status": "ok", "path": "variants/link.tflite"},
                      {"variant": "absolute", "kind": "int8", "status": "ok",
                       "path": str(job_dir / "variants" / "float16.tflite")}]
    run = StoredRun.from_record(_record(rows), job_dir)
    assert run.tflite_path("float32") == (job_dir / "variants" / "float32.tflite").resolve()
    assert run.recipe_path(run.variant("float32")) == (job_dir / "variants" / "float32.py").resolve()
    assert run.tflite_path("int8") is None  # ../outside/int8.tflite exists, but outside the run folder
    assert run.recipe_path("int8") is None  # an absolute path elsewhere
    assert run.tflite_path("linked") is None  # a symlink that leads out
    assert run.tflite_path("absolute") == (job_dir / "variants" / "float16.tflite").resolve()  # inside: fine
    assert run.tflite_path("int16x8") is None and run.recipe_path("float16") is None  # nothing stored / absent
    assert [v.name for v in run.produced] == ["float32", "float16", "absolute"]
    assert [v.name for v in run.with_recipe] == ["float32"]


def test_a_run_cancelled_before_anything_ran(job_dir):
    record = _record(None, status="cancelled", error="cancelled by the user", manifest=None)
    run = StoredRun.from_record(record, job_dir)
    assert run.variants == () and run.rows == [] and not run.has_results and not run.finished
    assert run.reference is None and run.failures == () and run.error == "cancelled by the user"
    assert run.table().columns.tolist() == ["error"] and run.frame().empty
    assert run.manifest == {} and run.class_names is None and run.environment.threads == 1
    assert not has_results(record)


def test_failures_come_from_the_live_progress_when_no_row_was_written(job_dir):
    progress = {"variants": {"float32": {"stage": "converted"},
                             "int8": {"stage": "failed", "error": "worker ran out of memory"},
                             "qat": {"stage": "training", "error": "no labels"}}}
    run = StoredRun.from_record(_record(None, status="failed", progress=progress), job_dir)
    assert [(f.variant, f.status, f.error) for f in run.failures] == [
        ("int8", "failed", "worker ran out of memory"), ("qat", "training", "no labels")]


def test_has_results_reads_only_the_rows():
    assert has_results(_record(_rows()))
    assert not has_results(_record([{"variant": "float32", "status": "ok", "latency_ms_p50": float("nan")},
                                    {"variant": "int8", "status": "failed", "latency_ms_p50": 0.1}]))
    assert not has_results({"id": "x", "rows": None})


def test_stored_run_survives_pickling_and_refuses_a_record_without_id(job_dir):
    run = StoredRun.from_record(_record(_rows()), job_dir)
    copy = pickle.loads(pickle.dumps(run))  # st.cache_data keeps it pickled
    assert copy.reference == run.reference and copy.tflite_path("float32") == run.tflite_path("float32")
    pd.testing.assert_frame_equal(copy.frame(), run.frame())
    with pytest.raises(InvalidOption, match="run record"):
        StoredRun.from_record({"status": "done"}, job_dir)


def test_combined_frame_prefixes_each_run(job_dir):
    first = StoredRun.from_record(_record(_rows()[:2]), job_dir)
    second = StoredRun.from_record(_record(_rows()[:1]), job_dir)
    frame = combined_frame({"A": first, "B": second})
    assert list(frame["variant"]) == ["A:float32", "A:int8", "B:float32"]
    assert list(first.frame()["variant"]) == ["float32", "int8"]
