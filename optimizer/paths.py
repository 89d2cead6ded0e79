"""Where the project and its bundled sample models and data live (the app and CLI open the samples by default)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where worker and runner processes import optimizer from
SAMPLE_DIR = PROJECT_ROOT / "sample_models"
DEFAULT_MODEL = SAMPLE_DIR / "digits_cnn.keras"
DEFAULT_DATA = SAMPLE_DIR / "digits.npz"
SAMPLES = {
    "Digits CNN (8x8 images, 10 classes)": (SAMPLE_DIR / "digits_cnn.keras", SAMPLE_DIR / "digits.npz"),
    "Breast-cancer MLP (30 features, 2 classes)": (SAMPLE_DIR / "cancer_mlp.keras", SAMPLE_DIR / "cancer.npz"),
}
