"""The variant store: an identical re-run takes every variant from it (the manifest says so) and starts no
TensorFlow worker; anything that changes a variant misses; latency is reused only unless --remeasure."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DIGITS_DATA, DIGITS_MODEL

ROOT = Path(__file__).resolve().parents[2]


def _run(out: Path, store: Path, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "optimizer", "run", str(DIGITS_MODEL), "--data", str(DIGITS_DATA),
                             "--variants", "float16,int8", "--out", str(out), "--cache-dir", str(store),
                             "--format", "json", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_an_identical_rerun_comes_from_the_store_and_a_changed_spec_does_not(tmp_path):
    store = tmp_path / "store"
    first = _run(tmp_path / "a", store)
    assert first["manifest"]["cache"]["hits"] == {"float32": False, "float16": False, "int8": False}
    again = _run(tmp_path / "b", store)
    cache = again["manifest"]["cache"]
    assert cache["hits"] == {"float32": True, "float16": True, "int8": True}
    assert sorted(cache["latency_from_cache"]) == ["float16", "float32", "int8"]
    assert not list((tmp_path / "b" / "work").glob("worker-convert*.log"))  # no TensorFlow worker ran
    by_name = {r["variant"]: r for r in again["rows"]}
    before = {r["variant"]: r for r in first["rows"]}
    for name in ("float32", "float16", "int8"):
        assert by_name[name]["from_cache"] and by_name[name]["status"] == "ok"
        for figure in ("size_bytes", "accuracy", "latency_ms_p50", "fidelity_top1_agreement"):
            assert by_name[name].get(figure) == before[name].get(figure), (name, figure)
        stored, made = tmp_path / "b" / by_name[name]["path"], tmp_path / "a" / before[name]["path"]
        assert stored.read_bytes() == made.read_bytes()
    assert by_name["int8"]["accuracy_verdict"] == before["int8"]["accuracy_verdict"]  # statistics recomputed alike

    remeasured = _run(tmp_path / "c", store, "--remeasure", "--variants", "int8", "--seed", "0")
    assert remeasured["manifest"]["cache"]["latency_from_cache"] == []
    changed = _run(tmp_path / "d", store, "--variants", "float16,int8", "--seed", "1")  # another split: all new
    assert not any(changed["manifest"]["cache"]["hits"].values())
