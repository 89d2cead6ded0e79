"""Accuracy on the evaluation set and fidelity to the float32 model; the metrics are pure numpy."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.records import EvaluatePayload


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


def infer_task(labels: np.ndarray | None, output_shape: list[int | None]) -> Task | None:
    """Classification when labels are whole numbers that index the output (or 0/1 for one sigmoid unit);
    regression otherwise; ``None`` without labels."""
    if labels is None:
        return None
    width = output_shape[-1] if output_shape and output_shape[-1] else 1
    whole = np.issubdtype(labels.dtype, np.integer) or bool(np.all(np.mod(labels, 1) == 0))
    if whole and labels.ndim == 1 and labels.min() >= 0:
        if width > 1 and labels.max() < width:
            return Task.CLASSIFICATION
        if width == 1 and set(np.unique(labels).tolist()) <= {0, 1}:
            return Task.CLASSIFICATION
    return Task.REGRESSION


def predicted_classes(outputs: np.ndarray) -> np.ndarray:
    flat = outputs.reshape(len(outputs), -1)
    if flat.shape[1] == 1:
        return (flat[:, 0] >= 0.5).astype(np.int64)
    classes: np.ndarray = np.argmax(flat, axis=1)  # numpy's stubs give Any for an argmax along an axis
    return classes


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predicted_classes(outputs) == labels.astype(np.int64)))


def per_class_accuracy(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy within each true class (keys are class indices as text, for JSON)."""
    predicted = predicted_classes(outputs)
    labels = labels.astype(np.int64)
    return {str(c): float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)}


def mean_absolute_error(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.abs(outputs.reshape(labels.shape) - labels)))


def fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Top-1 agreement, RMSE and SNR (dB) of a variant's outputs against the float32 model's."""
    diff = outputs.astype(np.float64) - reference.astype(np.float64)
    noise = float(np.mean(diff**2))
    signal = float(np.mean(reference.astype(np.float64) ** 2))
    snr = float("inf") if noise == 0 else 10 * np.log10(signal / noise) if signal > 0 else float("-inf")
    result = {"fidelity_rmse": float(np.sqrt(noise)), "fidelity_snr_db": snr}
    if reference.reshape(len(reference), -1).shape[1] > 1:
        result["fidelity_top1_agreement"] = float(
            np.mean(predicted_classes(outputs) == predicted_classes(reference))
        )
    return result


def evaluate_task(payload: dict[str, Any], report: Any) -> dict[str, Any]:
    """Run one variant over the evaluation inputs, save its outputs, and score them."""
    from optimizer.measure.runtime import audit_ops, predict, weight_stats

    job = EvaluatePayload.from_dict(payload)
    model_path = Path(job.model_path)
    x = np.load(job.inputs_path, allow_pickle=False)
    outputs = predict(model_path, x, job.threads)
    np.save(job.outputs_path, outputs, allow_pickle=False)
    kernels = weight_stats(model_path)
    result: dict[str, Any] = {"audit": audit_ops(model_path).to_dict(), "weight_stats": kernels}
    total = sum(int(np.prod(k["shape"])) for k in kernels)
    if total:
        result["weights_zero_fraction"] = sum(k["zero_fraction"] * int(np.prod(k["shape"])) for k in kernels) / total
        result["weights_max_unique"] = max(k["unique_values"] for k in kernels)
    if job.labels_path:
        labels = np.load(job.labels_path, allow_pickle=False)
        task = Task(job.task or Task.CLASSIFICATION)
        if task is Task.CLASSIFICATION:
            result["accuracy"] = accuracy(outputs, labels)
            result["per_class_accuracy"] = per_class_accuracy(outputs, labels)
        else:
            result["mae"] = mean_absolute_error(outputs, labels)
    if job.reference_path:
        reference = np.load(job.reference_path, allow_pickle=False)
        result.update(fidelity(outputs, reference))
    return result
