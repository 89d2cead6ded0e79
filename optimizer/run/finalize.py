"""The end of a run: every row against float32 (size ratio, accuracy delta, statistics), training variants
that collapsed flagged, and the manifest that records how the numbers were made."""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.measure.evaluate import Task
from optimizer.records import RunLayout
from optimizer.run.context import RunContext
from optimizer.variants import KINDS, VariantKind


def add_statistics(rows: list[dict[str, Any]], context: RunContext) -> None:
    """Against float32: is the accuracy change real (McNemar, bootstrap), is the latency change real (median
    intervals), and which evaluation samples flipped class."""
    layout = context.layout
    reference = next((r for r in rows if r["kind"] == VariantKind.FLOAT32.value and r["status"] == "ok"), None)
    labels_path = context.data.only(context.data.evaluation_labels)
    labels = np.load(labels_path, allow_pickle=False) if labels_path and context.task is Task.CLASSIFICATION else None
    reference_outputs = None
    if reference is not None and layout.outputs_of(reference["variant"]).exists():
        reference_outputs = np.load(layout.outputs_of(reference["variant"]), allow_pickle=False)
    for row in rows:
        if row["status"] != "ok":
            continue
        try:
            _row_statistics(row, reference, reference_outputs, labels, layout, context.options.seed)
        except Exception as exc:  # noqa: BLE001 - the variant stays measured; its statistics say why not
            row["statistics_error"] = f"{type(exc).__name__}: {exc}"[:300]


def _row_statistics(row: dict[str, Any], reference: dict[str, Any] | None, reference_outputs: np.ndarray | None,
                    labels: np.ndarray | None, layout: RunLayout, seed: int) -> None:
    """One variant's latency intervals and verdict, prediction flips and accuracy significance."""
    from optimizer.measure.evaluate import predicted_classes
    from optimizer.measure.stats import accuracy_significance, compare_latency, median_interval, prediction_flips

    if row.get("timings_ms"):
        low, high = median_interval(row["timings_ms"])
        row.update(latency_ms_p50_ci_low=low, latency_ms_p50_ci_high=high)
        if reference is not None and row is not reference and reference.get("timings_ms"):
            row["latency_verdict"] = compare_latency(reference["timings_ms"], row["timings_ms"])
    path = layout.outputs_of(row["variant"])
    if row is reference or reference_outputs is None or not path.exists():
        return
    outputs = np.load(path, allow_pickle=False)
    if reference_outputs.reshape(len(reference_outputs), -1).shape[1] < 2:
        return
    reference_predicted, predicted = predicted_classes(reference_outputs), predicted_classes(outputs)
    flips = prediction_flips(reference_predicted, predicted, labels)
    row.update(flips=flips.count, flips_by_class=flips.by_true_class, flip_indices=flips.indices)
    if labels is not None:
        row.update(accuracy_significance(reference_predicted == labels, predicted == labels, seed=seed))


def add_relative_columns(rows: list[dict[str, Any]]) -> None:
    """Size ratio and accuracy delta against the float32 row, when it succeeded."""
    reference = next((r for r in rows if r["kind"] == VariantKind.FLOAT32.value and r["status"] == "ok"), None)
    if reference is None:
        return
    for row in rows:
        if row.get("size_bytes") and reference.get("size_bytes"):
            row["size_ratio"] = row["size_bytes"] / reference["size_bytes"]
        if row.get("accuracy") is not None and reference.get("accuracy") is not None:
            row["accuracy_delta"] = row["accuracy"] - reference["accuracy"]


COLLAPSE_POINTS = 10.0  # a training variant more accuracy points than this below its reference is flagged


def flag_collapsed_training(rows: list[dict[str, Any]], points: float = COLLAPSE_POINTS) -> None:
    """A training variant whose accuracy falls more than ``points`` below the fine-tune control's (without a
    control, float32's) is never shown as a plain ok: like a false integer-only claim, its status stays ok
    and its error holds the sentence."""
    measured = [r for r in rows if r.get("status") == "ok" and r.get("accuracy") is not None]
    control = next((r for r in measured if r["kind"] == VariantKind.FINETUNE_CONTROL.value), None)
    reference = control or next((r for r in measured if r["kind"] == VariantKind.FLOAT32.value), None)
    if reference is None:
        return
    against = "the fine-tune control" if reference is control else "float32"
    for row in measured:
        if row is reference or row["kind"] not in {k for k, info in KINDS.items() if info.needs_training}:
            continue
        if (reference["accuracy"] - row["accuracy"]) * 100 > points:
            sentence = f"accuracy collapsed: {row['accuracy']:.1%} vs {reference['accuracy']:.1%} for {against}"
            row["error"] = f"{row['error']}; {sentence}" if row.get("error") else sentence
