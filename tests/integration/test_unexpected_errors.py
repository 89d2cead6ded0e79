"""An error nobody planned for, in one variant's evaluation or benchmark, fails that variant only: it is a
row with the reason, and every other variant is measured."""

from __future__ import annotations

import pytest

from optimizer.run import context
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import CANCER_DATA, CANCER_MODEL

pytestmark = pytest.mark.slow


def test_an_unexpected_error_in_one_variant_is_that_variants_failed_row(tmp_path, monkeypatch):
    real_sizes, real_record = context.file_sizes, context.RunContext._record_target

    def sizes(path):
        if path.stem == "float16":
            raise RuntimeError("injected while sizing float16")
        return real_sizes(path)

    def record(run_context, spec, target, measured):
        if spec.name == "dynamic_range":
            raise KeyError("injected while benchmarking dynamic_range")
        return real_record(run_context, spec, target, measured)

    monkeypatch.setattr(context, "file_sizes", sizes)
    monkeypatch.setattr(context.RunContext, "_record_target", record)
    specs = [VariantSpec(k) for k in ("float16", "dynamic_range", "int8", "int8_io")]
    result = run_comparison(CANCER_MODEL, tmp_path, specs, data=CANCER_DATA,
                            options=RunOptions(warmup_runs=1, threads=2))
    rows = {r["variant"]: r for r in result.rows}
    assert list(rows) == ["float32", "float16", "dynamic_range", "int8", "int8_io"]
    assert rows["float16"]["status"] == "failed"
    assert rows["float16"]["error"] == "unexpected error while evaluating: RuntimeError: injected while sizing float16"
    assert rows["dynamic_range"]["status"] == "failed"
    assert "unexpected error while benchmarking: KeyError" in rows["dynamic_range"]["error"]
    for name in ("float32", "int8", "int8_io"):
        assert rows[name]["status"] == "ok", rows[name]["error"]
        assert rows[name]["latency_ms_p50"] > 0 and rows[name]["accuracy"] > 0.8
    assert (tmp_path / "results.csv").read_text().count("\n") == 6  # header + every variant
