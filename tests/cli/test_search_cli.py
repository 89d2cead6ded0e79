"""`python -m optimizer search`: Optuna proposes variants, each batch is a real run, the budget decides."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.search import pareto_front
from tests.conftest import DIGITS_DATA, DIGITS_MODEL

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["--kinds", "float16,dynamic_range,int8"]


def _search(out: Path, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "optimizer", "search", str(DIGITS_MODEL), "--data",
                             str(DIGITS_DATA), *KINDS, "--out", str(out), "--format", "json", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_pareto_front_keeps_only_points_nothing_beats_on_every_objective():
    points = [("a", (1.0, 5.0)), ("b", (2.0, 2.0)), ("c", (2.0, 3.0)), ("a", (1.0, 5.0)), ("d", (3.0, 1.0))]
    assert pareto_front(points) == ["a", "b", "d"]


@pytest.mark.slow
def test_a_feasible_budget_is_met_and_a_stopped_search_resumes(tmp_path):
    found = _search(tmp_path, "--max-size-kb", "120", "--max-accuracy-drop", "2", "--trials", "4", "--batch", "2")
    assert len(found["trials"]) == 4 and {t["state"] for t in found["trials"]} <= {"complete", "pruned", "failed"}
    chosen = found["recommendation"]
    assert chosen is not None and found["pareto_within_budget"] and chosen in found["pareto"]
    best = next(t for t in found["trials"] if t["variant"] == chosen)
    assert best["feasible"] and best["size_bytes"] <= 120 * 1024 and best["accuracy_drop_points"] <= 2
    # The float32 reference and every 8-bit kind are ~4x the float16 file: float16 never qualifies here.
    assert all(not t["feasible"] for t in found["trials"] if t.get("kind") == "float16")
    batches = sorted(p.name for p in tmp_path.glob("batch-*"))
    resumed = _search(tmp_path, "--max-size-kb", "120", "--max-accuracy-drop", "2", "--trials", "6", "--batch", "2")
    assert len(resumed["trials"]) == 6  # the first 4 came from search.db, 2 were new
    assert [t["trial"] for t in resumed["trials"][:4]] == [t["trial"] for t in found["trials"]]
    assert len(sorted(p.name for p in tmp_path.glob("batch-*"))) <= len(batches) + 1


@pytest.mark.slow
def test_an_infeasible_budget_says_which_limit_failed_and_how_close_it_came(tmp_path):
    found = _search(tmp_path, "--max-size-kb", "10", "--trials", "4", "--batch", "4")
    assert found["recommendation"] is None and not found["pareto_within_budget"]
    assert "over the 10 KB size limit" in found["reason"]
    assert len(found["shortfall"]) == 1 and found["shortfall"][0].startswith("not met: best ")
    assert "against the limit 10 KB" in found["shortfall"][0]
    assert found["pareto"]  # the trade-off of what was measured is still shown
