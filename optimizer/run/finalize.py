"""The end of a run: every row against float32 (size ratio, accuracy delta, statistics), training variants
that collapsed flagged, and the manifest that records how the numbers were made."""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer import tensors
from optimizer.measure.evaluate import Task
from optimizer.run.context import RunContext
from optimizer.variants import KINDS, VariantKind


def add_statistics(rows: list[dict[str, Any]], context: RunContext) -> None:
    """Against float32: is the accuracy change real (McNemar, bootstrap, per classification output), is the
    latency change real (median intervals), and which evaluation samples flipped class."""
    layout = context.layout
    reference = next((r for r in rows if r["kind"] == VariantKind.FLOAT32.value and r["status"] == "ok"), None)
    labels = {name: np.load(path, allow_pickle=False) for name, path in context.data.evaluation_labels.items()
              if context.tasks.get(name) is Task.CLASSIFICATION}
    classified = [name for name in context.model.output_names
                  if name in labels or (name not in context.tasks and _width(context, name) > 1)]
    reference_outputs = None
    if reference is not None and layout.outputs_of(reference["variant"]).exists():
        reference_outputs = tensors.load_outputs(layout.outputs_of(reference["variant"]))
    for row in rows:
        if row["status"] != "ok":
            continue
        try:
            _latency_statistics(row, reference)
            if row is not reference and reference_outputs is not None and layout.outputs_of(row["variant"]).exists():
                outputs = tensors.load_outputs(layout.outputs_of(row["variant"]))
                for name in classified:
                    figures = _flip_statistics(reference_outputs[name], outputs[name], labels.get(name),
                                               context.options.seed)
                    _record(row, name, figures, headline=name == context.headline_output)
        except Exception as exc:  # noqa: BLE001 - the variant stays measured; its statistics say why not
            row["statistics_error"] = f"{type(exc).__name__}: {exc}"[:300]


def _width(context: RunContext, output: str) -> int:
    shape = context.model.output_named(output).shape
    return int(shape[-1] or 1) if shape else 1


def _latency_statistics(row: dict[str, Any], reference: dict[str, Any] | None) -> None:
    """The median's interval (the rounds' when the row was timed in rounds) and the verdict against float32,
    on the local figures and on every other target's group; below a target's resolution: 'unresolved'."""
    from optimizer.measure.stats import median_interval

    if row.get("timings_ms") and row.get("latency_ms_p50_ci_low") is None:
        low, high = median_interval(row["timings_ms"])
        row.update(latency_ms_p50_ci_low=low, latency_ms_p50_ci_high=high)
    if reference is not None and row is not reference:
        if verdict := _latency_verdict(reference, row):
            row["latency_verdict"] = verdict
        for label, group in (row.get("targets") or {}).items():
            base = (reference.get("targets") or {}).get(label) or {}
            if label != "local" and (verdict := _latency_verdict(base, group)):
                group["latency_verdict"] = verdict


def _latency_verdict(reference: dict[str, Any], figures: dict[str, Any]) -> str | None:
    from optimizer.measure.stats import compare_latency

    if figures.get("error") or not figures.get("timings_ms") or not reference.get("timings_ms"):
        return None
    return compare_latency(reference["timings_ms"], figures["timings_ms"],
                           reference_interval=_interval(reference), variant_interval=_interval(figures),
                           resolution_pct=figures.get("latency_resolution_pct"))


def _interval(figures: dict[str, Any]) -> tuple[float, float] | None:
    """The rounds' interval of the median, when the figures were timed in rounds."""
    low, high = figures.get("latency_ms_p50_ci_low"), figures.get("latency_ms_p50_ci_high")
    return (float(low), float(high)) if figures.get("latency_rounds") and low is not None and high is not None \
        else None


def _flip_statistics(reference_outputs: np.ndarray, outputs: np.ndarray, labels: np.ndarray | None,
                     seed: int) -> dict[str, Any]:
    """Prediction flips of one classification output against float32's, and the accuracy significance."""
    from optimizer.measure.evaluate import predicted_classes
    from optimizer.measure.stats import accuracy_significance, prediction_flips

    reference_predicted, predicted = predicted_classes(reference_outputs), predicted_classes(outputs)
    flips = prediction_flips(reference_predicted, predicted, labels)
    figures: dict[str, Any] = {"flips": flips.count, "flips_by_class": flips.by_true_class,
                               "flip_indices": flips.indices}
    if labels is not None:
        figures.update(accuracy_significance(reference_predicted == labels, predicted == labels, seed=seed))
    return figures


def _record(row: dict[str, Any], output: str, figures: dict[str, Any], headline: bool) -> None:
    """An output's statistics in its ``per_output`` entry; the headline output's also as the row's columns."""
    row.setdefault("per_output", {}).setdefault(output, {}).update(figures)
    if headline:
        row.update(figures)


def add_relative_columns(rows: list[dict[str, Any]]) -> None:
    """Size ratio and accuracy delta against the float32 row, when it succeeded (each output's delta in its
    ``per_output`` entry); a variant that quantized nothing says so."""
    reference = next((r for r in rows if r["kind"] == VariantKind.FLOAT32.value and r["status"] == "ok"), None)
    if reference is None:
        return
    for row in rows:
        if row.get("size_bytes") and reference.get("size_bytes"):
            row["size_ratio"] = row["size_bytes"] / reference["size_bytes"]
        if row.get("accuracy") is not None and reference.get("accuracy") is not None:
            row["accuracy_delta"] = row["accuracy"] - reference["accuracy"]
        for name, figures in (row.get("per_output") or {}).items():
            base = (reference.get("per_output") or {}).get(name) or {}
            for metric in ("accuracy", "mae"):
                if figures.get(metric) is not None and base.get(metric) is not None:
                    figures[f"{metric}_delta"] = figures[metric] - base[metric]
        if row is not reference and row.get("status") == "ok":
            _warn_if_nothing_quantized(row, reference)


def _warn_if_nothing_quantized(row: dict[str, Any], reference: dict[str, Any]) -> None:
    """A variant of a quantizing kind whose file is as large as float32's and whose weights are all float32
    quantized nothing: say so in its row instead of letting it pass as a smaller, faster model."""
    info = KINDS.get(str(row.get("kind")))
    if info is None or not info.quantizes or not row.get("size_ratio"):
        return
    weights = set((row.get("audit") or {}).get("weight_dtypes") or [])
    if row["size_ratio"] >= 0.98 and weights <= {"float32", "int32"} and "float32" in weights:
        row.setdefault("warnings", []).append(
            f"quantized nothing: the file is {row['size_ratio']:.2f}x float32's and every weight is still float32 "
            "(no layer of this model has a kernel this kind quantizes)")


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
