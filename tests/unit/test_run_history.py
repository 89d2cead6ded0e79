"""History's library side: one line per stored run, what differs between two runs, and a run's files in one zip."""

import io
import json
import zipfile
from datetime import datetime

import pytest

from optimizer.report.history import duration_text, figures_diff, run_overview, settings_diff
from optimizer.report.results import StoredRun

RUN_ID = "20250101-000000-abcdef12"


def _rows(int8_latency: float = 0.05, int8_accuracy: float = 0.88) -> list[dict]:
    return [
        {"variant": "float32", "kind": "float32", "status": "ok", "size_bytes": 1000, "gzip_bytes": 900,
         "latency_ms_p50": 0.10, "latency_ms_p95": 0.20, "accuracy": 0.90, "path": "variants/float32.tflite",
         "recipe_path": "variants/float32.py"},
        {"variant": "int8", "kind": "int8", "status": "ok", "size_bytes": 300, "gzip_bytes": 250,
         "latency_ms_p50": int8_latency, "latency_ms_p95": 0.08, "accuracy": int8_accuracy,
         "path": "variants/int8.tflite", "recipe_path": "../outside/int8.py"},
    ]


def _manifest(**changes) -> dict:
    manifest = {"created_at": "2025-01-01T00:00:00+00:00", "wall_time_s": 12.5, "cpu": "AMD EPYC", "threads": 1,
                "task": "classification", "step_s": {"prepare": 3.0},
                "request": {"model": "/runs/jobs/one/input/m.keras"},
                "model": {"file_name": "m.keras", "sha256": "ab" * 32, "parameter_count": 4130},
                "data": {"source": "digits.npz", "dataset_sha256": "cd" * 32},
                "options": {"threads": 1, "seed": 0, "timed_runs": 50, "limits": {"timeout_s": 1800.0}},
                "variants": [{"kind": "float32", "name": "float32", "options": {}},
                             {"kind": "int8", "name": "int8", "options": {}}],
                "versions": {"python": "3.11.7", "tensorflow": "2.21.0"}}
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = manifest
        for key in parents:
            target = target[key]
        target[last] = value
    return manifest


def _record(run_id: str = RUN_ID, rows=None, manifest=None, **fields) -> dict:
    return {"id": run_id, "status": "done", "error": None, "model_name": "m.keras", "rows": rows or _rows(),
            "inputs": {"model": {"name": "m.keras", "sha256": "ab" * 32, "size_bytes": 75226},
                       "data": {"name": "digits.npz", "sha256": "ef" * 32, "size_bytes": 100}},
            "options": {"model": f"/runs/jobs/{run_id}/input/m.keras", "data": f"/runs/jobs/{run_id}/input/d.npz",
                        "variants": [], "options": {"threads": 1, "seed": 0}},
            "created_at": 1735689600.0, "manifest": manifest or _manifest(), **fields}


@pytest.fixture()
def job_dir(tmp_path):
    folder = tmp_path / "jobs" / RUN_ID
    (folder / "variants").mkdir(parents=True)
    (folder / "variants" / "float32.tflite").write_bytes(b"F" * 64)
    (folder / "variants" / "float32.py").write_text("print('float32')\n")
    (folder / "variants" / "int8.tflite").write_bytes(b"I" * 16)
    (folder / "results.csv").write_text("variant\nfloat32\nint8\n")
    (folder / "input").mkdir()
    (folder / "input" / "m.keras").write_bytes(b"the uploaded model")
    (tmp_path / "jobs" / "outside").mkdir()
    (tmp_path / "jobs" / "outside" / "int8.py").write_text("secret")
    return folder


def test_run_overview_has_date_duration_model_kinds_and_status():
    line = run_overview(_record())
    assert line == {"run": RUN_ID, "date": datetime.fromtimestamp(1735689600.0).strftime("%Y-%m-%d %H:%M"),
                    "duration": "12.5 s", "status": "done", "model": "m.keras", "kinds": "float32, int8",
                    "variants": 2, "data": "digits.npz", "model sha256": "ab" * 6, "error": ""}
    queued = run_overview(_record(rows=[], manifest={}, status="queued") | {"rows": [], "manifest": None,
                                                                            "options": {"variants": [{"kind": "qat"}]}})
    assert (queued["duration"], queued["kinds"], queued["variants"]) == ("", "qat", 0)
    failed = run_overview(_record() | {"manifest": None, "rows": None, "started_at": 100.0, "finished_at": 285.0,
                                       "options": {"variants": []}, "status": "failed", "error": "out of memory"})
    assert (failed["duration"], failed["kinds"], failed["error"]) == ("3 min 05 s", "default", "out of memory")
    assert [duration_text(s) for s in (None, 8.44, 3725.0, float("nan"))] == ["", "8.4 s", "1 h 02 min", ""]


def test_settings_diff_names_only_the_fields_that_differ(tmp_path):
    first = StoredRun.from_record(_record(), tmp_path / "a")
    assert settings_diff(first, first).empty
    other = _record("20250102-000000-00000000", manifest=_manifest(
        options__threads=2, versions__tensorflow="2.20.0", cpu="Intel Xeon", wall_time_s=99.0,
        variants=[{"kind": "float32", "name": "float32", "options": {}},
                  {"kind": "qat", "name": "qat", "options": {"epochs": 3}}]))
    other["inputs"]["data"] = {"name": "digits.npz", "sha256": "00" * 32, "size_bytes": 100}
    second = StoredRun.from_record(other, tmp_path / "b")
    diff = settings_diff(first, second)
    found = {(row.group, row.field): (row.A, row.B) for row in diff.itertuples()}
    assert found == {
        ("inputs", "data.sha256"): ("ef" * 32, "00" * 32),
        ("options", "threads"): ("1", "2"),
        ("variants", "variants"): ("float32, int8", "float32, qat"),
        ("variants", "int8.kind"): ("int8", ""),
        ("variants", "qat.kind"): ("", "qat"),
        ("variants", "qat.epochs"): ("", "3"),
        ("versions", "tensorflow"): ("2.21.0", "2.20.0"),
        ("run", "cpu"): ("AMD EPYC", "Intel Xeon"),
    }  # not the paths (per run folder), the timings (wall_time_s) nor the run ids
    assert list(diff.columns) == ["group", "field", "A", "B"]


def test_figures_diff_shows_each_variants_changed_figures_and_the_change(tmp_path):
    first = StoredRun.from_record(_record(), tmp_path / "a")
    assert figures_diff(first, first).empty
    rows = _rows(int8_latency=0.04, int8_accuracy=0.895) + [
        {"variant": "int16x8", "kind": "int16x8", "status": "failed", "error": "calibration diverged"}]
    second = StoredRun.from_record(_record("20250102-000000-00000000", rows=rows), tmp_path / "b")
    diff = figures_diff(first, second)
    found = {(row.variant, row.figure): (row.A, row.B, row.change) for row in diff.itertuples()}
    assert found == {("int8", "latency_ms_p50"): ("50 µs", "40 µs", "-20.0%"),
                     ("int8", "accuracy"): ("88.00%", "89.50%", "+1.50 pts"),
                     ("int16x8", ""): ("", "present", "only in B")}


def test_bundle_zips_every_file_of_the_run_and_nothing_outside_it(job_dir):
    run = StoredRun.from_record(_record(), job_dir)
    archive = zipfile.ZipFile(io.BytesIO(run.bundle("<html>report</html>")))
    assert sorted(archive.namelist()) == sorted(f"{RUN_ID}/{name}" for name in (
        "variants/float32.tflite", "variants/float32.py", "variants/int8.tflite", "results.csv", "results.json",
        "manifest.json", "report.html"))  # not int8's recipe (outside the folder), not the inputs
    assert archive.read(f"{RUN_ID}/variants/float32.tflite") == b"F" * 64
    assert archive.read(f"{RUN_ID}/results.csv") == b"variant\nfloat32\nint8\n"  # the stored file
    assert json.loads(archive.read(f"{RUN_ID}/results.json"))["rows"][0]["variant"] == "float32"  # written
    assert json.loads(archive.read(f"{RUN_ID}/manifest.json"))["wall_time_s"] == 12.5
    assert archive.read(f"{RUN_ID}/report.html") == b"<html>report</html>"
    (job_dir / "report.html").write_text("stored report")
    without = zipfile.ZipFile(io.BytesIO(run.bundle()))
    assert without.read(f"{RUN_ID}/report.html") == b"stored report"
    (job_dir / "report.html").unlink()
    assert f"{RUN_ID}/report.html" not in zipfile.ZipFile(io.BytesIO(run.bundle())).namelist()
