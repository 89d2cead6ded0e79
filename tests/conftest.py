"""Shared fixtures: one real run of every post-training variant on the sample CNN, reused by many tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
# No test shares the repository's variant store (runs/cache): a test that wants a store names its own folder.
os.environ["STUDIO_CACHE"] = "0"

from optimizer.paths import SAMPLE_DIR  # noqa: E402
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import RunResult, run_comparison  # noqa: E402
from optimizer.variants import VariantSpec  # noqa: E402

DIGITS_MODEL = SAMPLE_DIR / "digits_cnn.keras"
DIGITS_DATA = SAMPLE_DIR / "digits.npz"
CANCER_MODEL = SAMPLE_DIR / "cancer_mlp.keras"
CANCER_DATA = SAMPLE_DIR / "cancer.npz"


def rows_by_name(result: RunResult) -> dict[str, dict]:
    return {row["variant"]: row for row in result.rows}


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """Every post-training kind on the sample CNN with its own calibration/evaluation split."""
    return run_comparison(DIGITS_MODEL, tmp_path_factory.mktemp("digits_run"), data=DIGITS_DATA,
                          options=RunOptions(timed_runs=50, warmup_runs=5))


@pytest.fixture(scope="session")
def digits_float_tflite(digits_run: RunResult) -> Path:
    path = digits_run.out_dir / rows_by_name(digits_run)["float32"]["path"]
    assert path.is_file()
    return path


TRAINING = ["qat", "prune", "prune_int8", "prune_2x4", "cluster", "finetune_control"]


@pytest.fixture(scope="session")
def training_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The tfmot techniques (4 epochs each) on the sample CNN, with int8 for comparison."""
    specs = [VariantSpec("int8"), *(VariantSpec(kind) for kind in TRAINING)]
    return run_comparison(DIGITS_MODEL, tmp_path_factory.mktemp("training"), specs, data=DIGITS_DATA,
                          options=RunOptions(warmup_runs=2))


@pytest.fixture(scope="session")
def digits_diagnosis(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    specs = [VariantSpec("int8"), VariantSpec("mixed_int8")]
    return run_comparison(DIGITS_MODEL, tmp_path_factory.mktemp("diagnosis"), specs, data=DIGITS_DATA,
                          options=RunOptions(warmup_runs=2))


@pytest.fixture(scope="session")
def tflite_run(tmp_path_factory: pytest.TempPathFactory, digits_float_tflite: Path) -> RunResult:
    """The sample CNN's float .tflite as an upload: ai-edge-quantizer recipes."""
    return run_comparison(digits_float_tflite, tmp_path_factory.mktemp("tflite_run"), data=DIGITS_DATA,
                          options=RunOptions(warmup_runs=2))


@pytest.fixture()
def hostile_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder
