"""The default demo sample keeps its promise: its shipped data is what build_samples.py generates, and on it
full-integer int8 really loses accuracy while dynamic-range quantization keeps it, so the recommendation has a
trade-off to explain."""

import sys

import numpy as np
import pytest

from optimizer.paths import DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_SAMPLE, DEMO_DATA, DEMO_MODEL, SAMPLE_DIR, SAMPLES
from optimizer.report.recommend import recommend_variant
from optimizer.report.results import VariantResult
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import rows_by_name


def test_the_demo_is_the_default_and_the_first_sample():
    assert (DEFAULT_MODEL, DEFAULT_DATA) == (DEMO_MODEL, DEMO_DATA) == SAMPLES[DEFAULT_SAMPLE]
    assert list(SAMPLES)[0] == DEFAULT_SAMPLE
    assert all(model.is_file() and data.is_file() for model, data in SAMPLES.values())
    assert sum(path.stat().st_size for path in (DEMO_MODEL, DEMO_DATA)) < 2 * 1024**2


def test_shipped_data_is_what_the_builder_generates():
    sys.path.insert(0, str(SAMPLE_DIR))
    try:
        from build_samples import HOT_PIXEL, hot_pixel_images
    finally:
        sys.path.remove(str(SAMPLE_DIR))
    x, y = hot_pixel_images()
    shipped = np.load(DEMO_DATA)
    assert set(shipped.files) == {"x_calib", "y_calib", "x_eval", "y_eval"}
    together = np.concatenate([shipped["x_calib"], shipped["x_eval"]])
    assert together.shape == x.shape == (1797, 32, 32, 1) and together.dtype == np.float32
    # The same images (the split only reorders them) and the same labels per image.
    order, shipped_order = np.lexsort(x.reshape(len(x), -1).T), np.lexsort(together.reshape(len(x), -1).T)
    np.testing.assert_array_equal(x[order], together[shipped_order])
    np.testing.assert_array_equal(y[order], np.concatenate([shipped["y_calib"], shipped["y_eval"]])[shipped_order])
    hot = together == HOT_PIXEL
    assert 0.4 < np.mean(hot.any(axis=(1, 2, 3))) < 0.9  # most images have a hot pixel, not all
    assert together[~hot].min() >= 0 and together[~hot].max() <= 1  # the ink stays in [0, 1]


@pytest.mark.slow
def test_int8_loses_accuracy_on_the_demo_and_dynamic_range_is_recommended(tmp_path):
    specs = [VariantSpec("dynamic_range"), VariantSpec("int8")]
    result = run_comparison(DEMO_MODEL, tmp_path, specs, data=DEMO_DATA, options=RunOptions(warmup_runs=2))
    rows = rows_by_name(result)
    assert rows["float32"]["accuracy"] > 0.9
    # min/max calibration stretches the int8 input scale over the hot pixels: the ink keeps two levels.
    assert rows["int8"]["integer_only"] and rows["int8"]["accuracy_verdict"] == "significant"
    assert rows["int8"]["accuracy_delta"] < -0.05
    assert rows["dynamic_range"]["accuracy_verdict"] == "within noise"  # float activations keep the ink
    recommendation = recommend_variant([VariantResult.from_row(row) for row in result.rows])
    assert recommendation.name == "dynamic_range"
    assert dict(recommendation.excluded)["int8"].startswith("significantly less accurate than float32")
