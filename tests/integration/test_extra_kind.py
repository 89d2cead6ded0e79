"""A kind added in one registry row (tests/support/extra_kinds.py) runs end to end: converted in a worker
that learns the row from $STUDIO_EXTRA_KINDS, audited, evaluated, benchmarked, with its recipe."""

from __future__ import annotations

import pytest

from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import CANCER_DATA, CANCER_MODEL

pytestmark = pytest.mark.slow


def test_a_test_only_kind_added_in_one_row_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_EXTRA_KINDS", "tests.support.extra_kinds")
    from tests.support.extra_kinds import UINT8_IO

    result = run_comparison(CANCER_MODEL, tmp_path, [VariantSpec(UINT8_IO)], data=CANCER_DATA,
                            options=RunOptions(warmup_runs=1))
    rows = {r["variant"]: r for r in result.rows}
    row = rows[UINT8_IO]
    assert row["status"] == "ok" and row["error"] is None, row["error"]
    assert row["input_dtypes"] == ["uint8"] and row["output_dtypes"] == ["uint8"] and row["integer_only"]
    assert row["accuracy"] >= rows["float32"]["accuracy"] - 0.03
    assert row["latency_ms_p50"] > 0 and row["size_ratio"] < 0.6
    recipe = (tmp_path / row["recipe_path"]).read_text()
    assert "converter.inference_input_type = tf.uint8" in recipe
