"""Where the project and its bundled sample models and data live (the app and CLI open the demo sample by default)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where worker and runner processes import optimizer from
SAMPLE_DIR = PROJECT_ROOT / "sample_models"
# The default demo: a CNN whose variants differ in size, latency and accuracy (see sample_models/build_samples.py).
DEMO_MODEL = SAMPLE_DIR / "hot_pixels_cnn.keras"
DEMO_DATA = SAMPLE_DIR / "hot_pixels.npz"
# The small CNN the tests use: every variant is as accurate and about as fast, so it runs in seconds.
DIGITS_MODEL = SAMPLE_DIR / "digits_cnn.keras"
DIGITS_DATA = SAMPLE_DIR / "digits.npz"
CANCER_MODEL = SAMPLE_DIR / "cancer_mlp.keras"
CANCER_DATA = SAMPLE_DIR / "cancer.npz"
DEFAULT_MODEL, DEFAULT_DATA = DEMO_MODEL, DEMO_DATA
DEFAULT_SAMPLE = "Hot-pixel digits CNN (32x32 images, 10 classes): the default demo"
SAMPLES = {  # the Model & data page offers them in this order
    DEFAULT_SAMPLE: (DEMO_MODEL, DEMO_DATA),
    "Digits CNN (8x8 images, 10 classes)": (DIGITS_MODEL, DIGITS_DATA),
    "Breast-cancer MLP (30 features, 2 classes)": (CANCER_MODEL, CANCER_DATA),
}
SAMPLE_DATA = {model: data for model, data in SAMPLES.values()}  # each sample model opens with its own data


def runs_dir() -> Path:
    """Where runs.db, every run's artifacts and the variant store live: $STUDIO_RUNS_DIR, default ./runs."""
    return Path(os.environ.get("STUDIO_RUNS_DIR", PROJECT_ROOT / "runs")).resolve()


def default_cache_dir(runs: Path | None = None) -> Path | None:
    """The variant store of the app and the CLI (inside the runs folder); None when $STUDIO_CACHE is 0."""
    if os.environ.get("STUDIO_CACHE", "1").strip() == "0":
        return None
    return (runs or runs_dir()) / "cache"
