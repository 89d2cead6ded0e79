"""Accuracy on the evaluation set and fidelity to the float32 model; the metrics are pure numpy."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from optimizer import tensors
from optimizer.records import EvaluatePayload


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    MULTILABEL = "multilabel"


TOP5_MIN_CLASSES = 10  # top-5 accuracy is reported for outputs with at least this many classes


def infer_task(labels: np.ndarray | None, output_shape: list[int | None]) -> Task | None:
    """Classification when labels are whole numbers that index the output (or 0/1 for one sigmoid unit);
    multi-label when they are a 0/1 matrix as wide as the output; regression otherwise; ``None`` without
    labels."""
    if labels is None:
        return None
    width = output_shape[-1] if output_shape and output_shape[-1] else 1
    whole = np.issubdtype(labels.dtype, np.integer) or bool(np.all(np.mod(labels, 1) == 0))
    if (whole and labels.ndim == 2 and width > 1 and labels.shape[1] == width
            and set(np.unique(labels).tolist()) <= {0, 1}):
        return Task.MULTILABEL
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


def top_k_accuracy(outputs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """The share of samples whose true class is among the k highest outputs."""
    flat = outputs.reshape(len(outputs), -1)
    top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels.astype(np.int64)[:, None], axis=1)))


def mean_absolute_error(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.abs(outputs.reshape(labels.shape) - labels)))


def root_mean_squared_error(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.sqrt(np.mean((outputs.reshape(labels.shape).astype(np.float64) - labels) ** 2)))


def label_accuracy(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Multi-label: the share of (sample, label) pairs right at a 0.5 threshold, and of samples with every
    label right."""
    predicted = outputs.reshape(labels.shape) >= 0.5
    right = predicted == labels.astype(bool)
    return {"accuracy": float(np.mean(right)), "exact_match": float(np.mean(np.all(right, axis=1)))}


def output_metrics(outputs: np.ndarray, labels: np.ndarray, task: Task) -> dict[str, Any]:
    """One labelled output's metrics: top-1 (and top-5 from 10 classes) for classification, label accuracy
    for multi-label, MAE and RMSE for regression; ``metric`` names the headline one."""
    if task is Task.CLASSIFICATION:
        result: dict[str, Any] = {"task": str(task), "metric": "accuracy", "accuracy": accuracy(outputs, labels),
                                  "per_class_accuracy": per_class_accuracy(outputs, labels)}
        if outputs.reshape(len(outputs), -1).shape[1] >= TOP5_MIN_CLASSES:
            result["top5_accuracy"] = top_k_accuracy(outputs, labels, 5)
        return result
    if task is Task.MULTILABEL:
        return {"task": str(task), "metric": "accuracy", **label_accuracy(outputs, labels)}
    return {"task": str(task), "metric": "mae", "mae": mean_absolute_error(outputs, labels),
            "rmse": root_mean_squared_error(outputs, labels)}


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


CLIP_MARGIN = 0.02  # of the variant's output range: beyond it, a reference value was cut off


def clipped_fraction(outputs: np.ndarray, reference: np.ndarray) -> float:
    """The share of the float32 model's output values beyond the whole range the variant ever produced (by more
    than 2% of that range): what a quantized output range, learned from calibration data, cut off."""
    low, high = float(np.min(outputs)), float(np.max(outputs))
    margin = CLIP_MARGIN * max(high - low, 1e-12)
    beyond = (reference > high + margin) | (reference < low - margin)
    return float(np.mean(beyond))


def score_outputs(outputs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], tasks: Mapping[str, str],
                  reference: Mapping[str, np.ndarray] | None) -> dict[str, dict[str, Any]]:
    """Per output (by name): its metrics where it is labelled, its fidelity to the reference's same output,
    and whether it is constant over the evaluation inputs (a model that ignores its input)."""
    scored: dict[str, dict[str, Any]] = {}
    for name, values in outputs.items():
        entry: dict[str, Any] = {}
        if name in labels:
            entry.update(output_metrics(values, labels[name], Task(tasks.get(name) or Task.CLASSIFICATION)))
        if reference is not None and name in reference:
            entry.update(fidelity(values, reference[name]))
            entry["clipped_fraction"] = clipped_fraction(values, reference[name])
        entry["constant_output"] = bool(len(values) > 1 and np.ptp(values.reshape(len(values), -1), axis=0).max() == 0)
        scored[name] = entry
    return scored


def evaluate_task(payload: dict[str, Any], report: Any) -> dict[str, Any]:
    """Run one variant over the evaluation inputs, save its outputs, and score each output."""
    from optimizer.measure.runtime import audit_ops, predict, weight_stats

    job = EvaluatePayload.from_dict(payload)
    model_path = Path(job.model_path)
    outputs = predict(model_path, tensors.load(job.inputs), job.input_names, job.output_names, job.threads)
    tensors.save_outputs(outputs, Path(job.outputs_path))
    kernels = weight_stats(model_path)
    result: dict[str, Any] = {"audit": audit_ops(model_path).to_dict(), "weight_stats": kernels}
    total = sum(int(np.prod(k["shape"])) for k in kernels)
    if total:
        result["weights_zero_fraction"] = sum(k["zero_fraction"] * int(np.prod(k["shape"])) for k in kernels) / total
        result["weights_max_unique"] = max(k["unique_values"] for k in kernels)
    reference = tensors.load_outputs(Path(job.reference_path)) if job.reference_path else None
    result["per_output"] = score_outputs(outputs, tensors.load(job.labels), job.tasks, reference)
    return result
