"""Results as tidy rows (unit-suffixed columns, a ``status`` and an ``error`` per variant) plus a manifest.

Saved side by side as ``results.csv``, ``results.json`` and ``manifest.json`` in the run folder.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
from pathlib import Path
from typing import Any

import pandas as pd

COLUMNS = [
    "variant", "kind", "label", "status", "error",
    "size_bytes", "gzip_bytes", "size_ratio", "conversion_s",
    "latency_ms_p50", "latency_ms_p95", "latency_ms_min", "latency_ms_mean", "latency_ms_std",
    "latency_ms_init", "latency_ms_first", "latency_runs", "memory_peak_bytes", "memory_model_bytes",
    "latency_ms_p50_ci_low", "latency_ms_p50_ci_high", "latency_verdict",
    "metric", "accuracy", "mae", "accuracy_delta", "accuracy_delta_ci_low", "accuracy_delta_ci_high",
    "mcnemar_p", "accuracy_verdict", "flips",
    "fidelity_top1_agreement", "fidelity_rmse", "fidelity_snr_db", "fidelity_inputs",
    "weights_zero_fraction", "weights_max_unique", "training_s", "epochs", "float_layers", "search_met_budget",
    "integer_only", "expected_integer_only", "float_compute_ops", "input_dtypes", "output_dtypes", "op_counts",
    "runtime", "runtime_version", "threads", "cpu", "path", "recipe_path",
]
# Kept in JSON only: long lists that do not belong in a flat table.
JSON_ONLY = {"timings_ms", "per_class_accuracy", "audit", "weight_stats", "training", "flips_by_class",
             "flip_indices", "analysis"}
LIST_COLUMNS = {"float_compute_ops", "input_dtypes", "output_dtypes"}
TRACKED_PACKAGES = ["tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "ai-edge-litert",
                    "ai-edge-quantizer", "numpy", "pandas", "streamlit", "plotly"]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> DataFrame with the known columns first; lists shown as comma-joined text, dicts as JSON."""
    frame = pd.DataFrame([{k: v for k, v in row.items() if k not in JSON_ONLY} for row in rows])
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in LIST_COLUMNS & set(frame.columns):
        frame[column] = frame[column].map(lambda v: ", ".join(v) if isinstance(v, list) else v)
    if "op_counts" in frame.columns:
        frame["op_counts"] = frame["op_counts"].map(
            lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def save_results(rows: list[dict[str, Any]], manifest: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json",
             "manifest": out_dir / "manifest.json"}
    to_frame(rows).to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(_json_safe({"manifest": manifest, "rows": rows}), indent=2, default=str))
    paths["manifest"].write_text(json.dumps(_json_safe(manifest), indent=2, default=str))
    return paths
