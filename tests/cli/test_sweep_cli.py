"""`python -m optimizer sweep`: every grid point is a measured variant whose row carries its parameters."""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import DIGITS_DATA, DIGITS_MODEL

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "optimizer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_a_pruning_grid_on_two_models_gives_one_table_with_model_and_parameter_columns(tmp_path):
    first, second = tmp_path / "cnn_a.keras", tmp_path / "cnn_b.keras"
    shutil.copy(DIGITS_MODEL, first)
    shutil.copy(DIGITS_MODEL, second)
    result = _cli("sweep", str(first), "--models", str(second), "--data", str(DIGITS_DATA),
                  "--grid", "prune:sparsity=0.3,0.8:epochs=1", "--out", str(tmp_path / "sweep"), "--format", "csv")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table["model"].tolist() == ["cnn_a.keras"] * 3 + ["cnn_b.keras"] * 3
    assert table["variant"].tolist()[:3] == ["float32", "prune_sparsity0p3", "prune_sparsity0p8"]
    assert (table["status"] == "ok").all(), table[["variant", "error"]]
    assert table["param: sparsity"].tolist()[1:3] == [0.3, 0.8] and pd.isna(table["param: sparsity"][0])
    # Each point is really that point: the stored weights are as sparse as asked (pruning keeps what it zeroed).
    pruned = table.set_index(["model", "variant"])["weights_zero_fraction"]
    assert pruned["cnn_a.keras", "prune_sparsity0p8"] > pruned["cnn_a.keras", "prune_sparsity0p3"] + 0.3
    assert pruned["cnn_a.keras", "prune_sparsity0p8"] >= 0.7
    assert table["latency_ms_p50"].notna().all() and table["accuracy"].notna().all()
    assert (tmp_path / "sweep" / "sweep.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "sweep" / "cnn_b" / "variants").glob("*.tflite")) == [
        "float32.tflite", "prune_sparsity0p3.tflite", "prune_sparsity0p8.tflite"]


def test_a_sweep_without_a_grid_is_refused_with_exit_2(tmp_path):
    result = _cli("sweep", str(DIGITS_MODEL), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "expected at least one model and one --grid" in result.stderr
    bad = _cli("sweep", str(DIGITS_MODEL), "--grid", "prune:clusters=4", "--out", str(tmp_path))
    assert bad.returncode == 2 and "prune has no option 'clusters'" in bad.stderr
