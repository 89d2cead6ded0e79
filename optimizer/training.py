"""Training-time variants with tensorflow-model-optimization: the only module that imports tfmot.

Each technique starts from a fresh tf_keras twin of the uploaded Keras 3 model (see :mod:`optimizer.bridge`),
fine-tunes it on the labelled training split with a fixed seed, strips the training wrappers and converts
it. The same number of epochs without any technique ("finetune_control") shows what more training alone did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer.errors import InvalidOption, VariantFailed
from optimizer.variants import VariantKind, VariantSpec

ProgressCallback = Callable[[dict[str, Any]], None]
_KERNEL_LAYERS = ("Conv2D", "Dense", "DepthwiseConv2D")


@dataclass
class TrainedModel:
    """A fine-tuned tf_keras model ready to convert, with what training did and cost."""

    model: Any
    int8: bool
    info: dict[str, Any] = field(default_factory=dict)


def _tfmot() -> Any:
    import tensorflow_model_optimization as tfmot

    return tfmot


def _loss_for(model: Any, labels: np.ndarray, samples: np.ndarray, task: str) -> Any:
    import tf_keras

    if task == "regression":
        return tf_keras.losses.MeanSquaredError()
    outputs = np.asarray(model.predict(samples[:16], verbose=0))
    if outputs.shape[-1] == 1:
        probabilities = bool(np.all((outputs >= 0) & (outputs <= 1)))
        return tf_keras.losses.BinaryCrossentropy(from_logits=not probabilities)
    sums_to_one = bool(np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3) and np.all(outputs >= 0))
    return tf_keras.losses.SparseCategoricalCrossentropy(from_logits=not sums_to_one)


class _EpochReporter:
    """A tf_keras callback factory that reports 'training epoch k/n' for one variant."""

    def __init__(self, report: ProgressCallback, variant: str, epochs: int) -> None:
        import tf_keras

        outer = self

        class Callback(tf_keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                outer.history.append({k: float(v) for k, v in (logs or {}).items()})
                report({"stage": "training", "variant": variant, "epoch": epoch + 1, "epochs": epochs})

        self.history: list[dict[str, float]] = []
        self.callback = Callback()


def _fit(model: Any, x: np.ndarray, y: np.ndarray, spec: VariantSpec, task: str, report: ProgressCallback,
         extra_callbacks: list[Any] | None = None) -> dict[str, Any]:
    import tf_keras

    options = spec.options
    epochs, batch = int(options["epochs"]), int(options["batch_size"])
    model.compile(optimizer=tf_keras.optimizers.Adam(float(options["learning_rate"])),
                  loss=_loss_for(model, y, x, task), metrics=["accuracy"] if task == "classification" else [])
    reporter = _EpochReporter(report, spec.name, epochs)
    started = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=batch, shuffle=True, verbose=0,
              callbacks=[reporter.callback, *(extra_callbacks or [])])
    steps = int(np.ceil(len(x) / batch)) * epochs
    return {"epochs": epochs, "steps": steps, "training_s": round(time.perf_counter() - started, 3),
            "history": reporter.history}


def _clone_wrapping(model: Any, wrap: Callable[[Any], Any | None]) -> tuple[Any, list[str]]:
    """Clone the model, replacing each layer for which ``wrap`` returns a wrapped layer; returns the names."""
    import tf_keras

    wrapped: list[str] = []

    def clone(layer: Any) -> Any:
        replacement = wrap(layer)
        if replacement is None:
            return layer.__class__.from_config(layer.get_config())
        wrapped.append(layer.name)
        return replacement

    return tf_keras.models.clone_model(model, clone_function=clone), wrapped


def _pruning_schedule(spec: VariantSpec, samples: int) -> Any:
    """PolynomialDecay to the target over the first 3/4 of the fine-tune (or the target at once with
    ``schedule='constant'``), updating often enough that a short fine-tune really prunes (tfmot's default
    frequency of 100 steps would leave it dense)."""
    tfmot = _tfmot()
    total = int(np.ceil(samples / int(spec.options["batch_size"]))) * int(spec.options["epochs"])
    end = max(1, int(total * 0.75))
    target = float(spec.options["sparsity"])
    if spec.options.get("schedule") == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(target, begin_step=0, frequency=max(1, end // 10))
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=target, begin_step=0, end_step=end, frequency=max(1, end // 10))


def _eligible_for_2x4(layer: Any) -> bool:
    """2:4 groups run along the input channels: Conv2D/Dense kernels whose input size divides by 4."""
    if type(layer).__name__ not in ("Conv2D", "Dense"):
        return False
    kernel = layer.get_weights()[0] if layer.get_weights() else None
    return kernel is not None and kernel.shape[-2] % 4 == 0 and kernel.shape[-2] >= 4


def _prune(model: Any, x: np.ndarray, y: np.ndarray, spec: VariantSpec, task: str, report: ProgressCallback,
           m_by_n: bool = False) -> tuple[Any, dict[str, Any]]:
    tfmot = _tfmot()
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    schedule = (tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1) if m_by_n
                else _pruning_schedule(spec, len(x)))
    skipped: list[str] = []

    def wrap(layer: Any) -> Any | None:
        if type(layer).__name__ not in _KERNEL_LAYERS or not PruneRegistry.supports(layer):
            return None
        if m_by_n and not _eligible_for_2x4(layer):
            skipped.append(layer.name)
            return None
        kwargs = {"sparsity_m_by_n": (2, 4)} if m_by_n else {}
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule, **kwargs)

    pruned, names = _clone_wrapping(model, wrap)
    if not names:
        raise VariantFailed("no layer of this model can be pruned" + (" in a 2:4 pattern" if m_by_n else ""))
    info = _fit(pruned, x, y, spec, task, report, [tfmot.sparsity.keras.UpdatePruningStep()])
    info["pruned_layers"] = names
    if m_by_n:
        info["layers_not_2x4_eligible"] = skipped
    return tfmot.sparsity.keras.strip_pruning(pruned), info


def _cluster(model: Any, x: np.ndarray, y: np.ndarray, spec: VariantSpec, task: str, report: ProgressCallback,
             preserve_sparsity: bool = False) -> tuple[Any, dict[str, Any]]:
    tfmot = _tfmot()
    clustering = tfmot.clustering.keras
    cluster = clustering.cluster_weights
    extra: dict[str, Any] = {}
    if preserve_sparsity:  # tfmot 0.8.1 keeps the sparsity-preserving entry point internal
        from tensorflow_model_optimization.python.core.clustering.keras.cluster import _cluster_weights

        cluster, extra = _cluster_weights, {"preserve_sparsity": True}

    def wrap(layer: Any) -> Any | None:
        if type(layer).__name__ not in ("Conv2D", "Dense"):
            return None
        return cluster(layer, number_of_clusters=int(spec.options["clusters"]),
                       cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS, **extra)

    clustered, names = _clone_wrapping(model, wrap)
    if not names:
        raise VariantFailed("no Conv2D/Dense layer of this model can be clustered")
    info = _fit(clustered, x, y, spec, task, report)
    info["clustered_layers"] = names
    return clustering.strip_clustering(clustered), info


def _quantize_aware(model: Any, x: np.ndarray, y: np.ndarray, spec: VariantSpec, task: str,
                    report: ProgressCallback, scheme: Any = None) -> tuple[Any, dict[str, Any]]:
    """QAT on the layers tfmot can quantize; a BatchNormalization not after a conv, Rescaling and other
    unsupported layers stay float (and are listed)."""
    tfmot = _tfmot()
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry import (  # noqa: E501
        Default8BitQuantizeRegistry,
    )

    registry = Default8BitQuantizeRegistry()
    producers = _producers(model)
    kept_float: list[str] = []

    def wrap(layer: Any) -> Any | None:
        kind = type(layer).__name__
        if kind == "InputLayer":
            return None
        after_conv = producers.get(layer.name) in ("Conv2D", "DepthwiseConv2D")
        if kind == "Rescaling" or (kind == "BatchNormalization" and not after_conv) or not registry.supports(layer):
            kept_float.append(layer.name)
            return None
        return tfmot.quantization.keras.quantize_annotate_layer(layer.__class__.from_config(layer.get_config()))

    annotated, _ = _clone_wrapping(model, wrap)
    annotated.set_weights(model.get_weights())
    with tfmot.quantization.keras.quantize_scope():
        quantized = (tfmot.quantization.keras.quantize_apply(annotated, scheme) if scheme is not None
                     else tfmot.quantization.keras.quantize_apply(annotated))
    info = _fit(quantized, x, y, spec, task, report)
    info["layers_kept_float"] = kept_float
    return quantized, info


def _producers(model: Any) -> dict[str, str]:
    """Layer name -> class name of the layer feeding it (for 'BatchNormalization after a conv')."""
    result: dict[str, str] = {}
    previous = None
    for layer in model.layers:
        inbound = getattr(layer, "_inbound_nodes", [])
        feeding = [n.inbound_layers for n in inbound] if inbound else []
        names = [type(f).__name__ for group in feeding for f in (group if isinstance(group, list) else [group])]
        result[layer.name] = names[0] if names else (type(previous).__name__ if previous is not None else "")
        previous = layer
    return result


def train_variant(spec: VariantSpec, twin_factory: Callable[[], Any], x: np.ndarray, y: np.ndarray, task: str,
                  report: ProgressCallback) -> TrainedModel:
    """Apply one technique to a fresh twin of the model and fine-tune it."""
    tfmot = _tfmot()
    combine = tfmot.experimental.combine
    kind = spec.kind
    model = twin_factory()
    if kind is VariantKind.FINETUNE_CONTROL:
        return TrainedModel(model, False, _fit(model, x, y, spec, task, report))
    if kind is VariantKind.QAT:
        trained, info = _quantize_aware(model, x, y, spec, task, report)
        return TrainedModel(trained, True, info)
    if kind in (VariantKind.PRUNE, VariantKind.PRUNE_INT8):
        trained, info = _prune(model, x, y, spec, task, report)
        return TrainedModel(trained, kind is VariantKind.PRUNE_INT8, info)
    if kind is VariantKind.PRUNE_2X4:
        trained, info = _prune(model, x, y, spec, task, report, m_by_n=True)
        return TrainedModel(trained, False, info)
    if kind is VariantKind.CLUSTER:
        trained, info = _cluster(model, x, y, spec, task, report)
        return TrainedModel(trained, False, info)
    if kind is VariantKind.SPARSE_CLUSTER:
        pruned, prune_info = _prune(model, x, y, spec, task, report)
        trained, info = _cluster(pruned, x, y, spec, task, report, preserve_sparsity=True)
        return TrainedModel(trained, False, {**info, "pruning": prune_info})
    if kind is VariantKind.PQAT:
        pruned, prune_info = _prune(model, x, y, spec, task, report)
        trained, info = _quantize_aware(pruned, x, y, spec, task, report,
                                        combine.Default8BitPrunePreserveQuantizeScheme())
        return TrainedModel(trained, True, {**info, "pruning": prune_info})
    if kind is VariantKind.CQAT:
        clustered, cluster_info = _cluster(model, x, y, spec, task, report)
        trained, info = _quantize_aware(clustered, x, y, spec, task, report,
                                        combine.Default8BitClusterPreserveQuantizeScheme())
        return TrainedModel(trained, True, {**info, "clustering": cluster_info})
    raise InvalidOption(f"variant {kind.value} is not a training variant")


def convert_trained(trained: TrainedModel, calibration: np.ndarray) -> bytes:
    """Convert a fine-tuned tf_keras model: float, or full int8 (calibrated for any layer left float)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(trained.model)
    if trained.int8:
        samples = calibration[:200].astype(np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([samples[i:i + 1]] for i in range(len(samples)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return bytes(converter.convert())


def train_task(payload: dict[str, Any], report: ProgressCallback) -> list[dict[str, Any]]:
    """Worker task: for each training spec, a fresh twin, a seeded fine-tune, conversion."""
    from pathlib import Path

    import tf_keras

    from optimizer.bridge import to_tf_keras
    from optimizer.intake import load_checked
    from optimizer.outcomes import Produced, produce_each

    x = np.load(payload["calibration_path"], allow_pickle=False)
    y = np.load(payload["calibration_labels_path"], allow_pickle=False)
    task = payload.get("task") or "classification"
    seed = int(payload.get("seed", 0))
    _, loaded = load_checked(Path(payload["model_path"]), Path(payload["workdir"]))
    check_inputs = x[:16]

    def produce(spec: VariantSpec) -> Produced:
        started = time.perf_counter()
        twin, bridge = to_tf_keras(loaded, check_inputs)  # a fresh, verified copy for this technique
        tf_keras.utils.set_random_seed(seed)
        trained = train_variant(spec, lambda: twin, x, y, task, report)
        converting = time.perf_counter()
        content = convert_trained(trained, x)
        info = {**trained.info, **bridge.to_dict(), "seed": seed}
        extra = {"training": info, "training_s": round(time.perf_counter() - started, 3), "epochs": info["epochs"]}
        return content, extra, time.perf_counter() - converting

    return produce_each((VariantSpec.from_dict(d) for d in payload["specs"]), Path(payload["out_dir"]), produce,
                        report, "training error")
