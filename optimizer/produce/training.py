"""Training-time variants with tensorflow-model-optimization: the only module that imports tfmot.

Each technique starts from a fresh tf_keras twin of the uploaded Keras 3 model (see :mod:`optimizer.produce.bridge`),
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
from optimizer.produce.calibration import representative_dataset, representative_samples
from optimizer.variants import INT8, VariantKind, VariantSpec

try:
    from optimizer.produce.bridge import EQUIVALENCE_TOLERANCE
except ImportError:  # optimizer.produce.recipes runs this module's source standalone, where the package is absent
    EQUIVALENCE_TOLERANCE = 1e-4

ProgressCallback = Callable[[dict[str, Any]], None]
_KERNEL_LAYERS = ("Conv2D", "Dense", "DepthwiseConv2D")
# tfmot clusters these kernels; its registry lists DepthwiseConv2D with no clusterable weight ("big
# unrecoverable accuracy loss"), so depthwise kernels stay float, with their trained weights.
_CLUSTERED_LAYERS = ("Conv1D", "Conv2D", "Dense")
_CHECK_SAMPLES = 16  # training samples on which a wrapped model is checked before its fine-tune


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

        class Callback(tf_keras.callbacks.Callback):  # type: ignore[misc]  # tf_keras has no stubs: its base is Any
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
    """Clone the model, replacing each layer for which ``wrap`` returns a wrapped layer; returns the names.

    Every layer of the clone starts from the original's trained weights: a layer ``wrap`` leaves alone is a
    fresh copy from its config, which ``clone_model`` builds with new random weights, so the original's
    weights are copied into it once the clone is built; so are they into a wrapper around a fresh copy (QAT's
    annotation). A wrapper around the original layer object (pruning, clustering) already holds them.
    """
    import tf_keras

    wrapped: list[str] = []
    pairs: list[tuple[Any, Any]] = []

    def clone(layer: Any) -> Any:
        replacement = wrap(layer)
        if replacement is None:
            replacement = layer.__class__.from_config(layer.get_config())
        else:
            wrapped.append(layer.name)
        pairs.append((layer, replacement))
        return replacement

    cloned = tf_keras.models.clone_model(model, clone_function=clone)
    for original, replacement in pairs:
        target = replacement.layer if isinstance(replacement, tf_keras.layers.Wrapper) else replacement
        weights = original.get_weights()
        if target is original or not weights:
            continue
        shapes = [w.shape for w in target.get_weights()]
        if shapes != [w.shape for w in weights]:
            raise VariantFailed(f"layer {original.name!r}: its copy has weight shapes {shapes}, the trained layer "
                                f"{[w.shape for w in weights]}; the copy cannot start from the trained weights")
        target.set_weights(weights)
    return cloned, wrapped


def _named(variables: list[Any]) -> dict[str, np.ndarray]:
    """{variable name: a copy of its value} for one layer's variables, named without their scope ('kernel:0'):
    tfmot rebuilds stripped layers outside their name scope. A layer whose short names repeat (a nested model)
    keeps the full names."""
    short = [v.name.rsplit("/", 1)[-1] for v in variables]
    names = short if len(set(short)) == len(short) else [v.name for v in variables]
    return {name: np.array(v) for name, v in zip(names, variables, strict=True)}


def _weights_by_layer(model: Any) -> dict[str, dict[str, np.ndarray]]:
    """Layer name -> {variable name: a copy of its value}, for the layers that have weights."""
    return {layer.name: _named(layer.weights) for layer in model.layers if layer.weights}


def _starting_weights(layer: Any) -> tuple[str, dict[str, np.ndarray]]:
    """(name of the layer a wrapper wraps, {variable name: value}) for a layer of a wrapped model.

    A wrapper lists the variables it starts from under their original names: pruning keeps the kernel in the
    layer, quantization takes it into its own weights, clustering keeps the float kernel it trains (and
    derives the centroids and indices from) as ``original_weight_kernel``, named as before."""
    import tf_keras

    inner = layer
    while isinstance(inner, tf_keras.layers.Wrapper):
        inner = inner.layer
    return inner.name, _named(layer.weights)


def _check_start_outputs(technique: str, reference: np.ndarray, candidate: Any, check_inputs: np.ndarray) -> float:
    """Before fine-tuning, the wrapped model must compute what the trained model computes (max |diff| <= 1e-4)."""
    found = np.asarray(candidate.predict(check_inputs, verbose=0))
    difference = float(np.max(np.abs(np.asarray(reference, dtype=np.float64) - found)))
    if not difference <= EQUIVALENCE_TOLERANCE:
        raise VariantFailed(f"{technique}: before fine-tuning, the wrapped model's outputs differ from the trained "
                            f"model's by {difference:.2e} (at most {EQUIVALENCE_TOLERANCE:.0e} allowed): it does "
                            "not start from the trained weights")
    return difference


def _check_start_weights(technique: str, original: dict[str, dict[str, np.ndarray]], candidate: Any
                         ) -> tuple[float, list[str]]:
    """Before fine-tuning, every layer of the wrapped model that has a trained counterpart (same layer name,
    same variable names) must hold exactly its weights; returns the largest difference (0.0) and the trained
    layers that could not be compared (renamed or merged by a transform)."""
    compared: set[str] = set()
    worst, worst_variable = 0.0, ""
    for layer in candidate.layers:
        name, found = _starting_weights(layer)
        expected = original.get(name)
        if expected is None or not set(expected) <= set(found):
            continue
        compared.add(name)
        for variable, wanted in expected.items():
            if found[variable].shape != wanted.shape:
                raise VariantFailed(f"{technique}: before fine-tuning, weight {variable} has shape "
                                    f"{found[variable].shape}; the trained one {wanted.shape}")
            difference = float(np.max(np.abs(found[variable].astype(np.float64) - wanted))) if wanted.size else 0.0
            if difference > worst:
                worst, worst_variable = difference, variable
    if worst > 0:
        raise VariantFailed(f"{technique}: before fine-tuning, the wrapped model's weights differ from the trained "
                            f"model's by up to {worst:.2e} (in {worst_variable}; they must be identical): it does "
                            "not start from the trained weights")
    return worst, sorted(set(original) - compared)


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

    check = x[:_CHECK_SAMPLES]
    reference = np.asarray(model.predict(check, verbose=0))
    pruned, names = _clone_wrapping(model, wrap)
    if not names:
        raise VariantFailed("no layer of this model can be pruned" + (" in a 2:4 pattern" if m_by_n else ""))
    # The masks start all ones (the schedule prunes from the first training step on): identical outputs.
    start = _check_start_outputs("2:4 pruning" if m_by_n else "pruning", reference, pruned, check)
    info = _fit(pruned, x, y, spec, task, report, [tfmot.sparsity.keras.UpdatePruningStep()])
    info["pruned_layers"] = names
    info.update(technique_start_check="outputs", technique_start_max_abs_difference=start)
    if m_by_n:
        info["layers_not_2x4_eligible"] = skipped
    return tfmot.sparsity.keras.strip_pruning(pruned), info


def _cluster(model: Any, x: np.ndarray, y: np.ndarray, spec: VariantSpec, task: str, report: ProgressCallback,
             preserve_sparsity: bool = False) -> tuple[Any, dict[str, Any]]:
    """Cluster the Conv1D/Conv2D/Dense kernels (others stay float with their trained weights, listed).

    Start check: clustering snaps each kernel to its centroids the moment it is wrapped, so the outputs
    legitimately change; what must hold is that every weight the wrapped model starts from is the trained
    one: the unclustered layers' weights and the float kernel each clustering wrapper trains, from which it
    derives its centroids and indices, are identical to the model's (any difference fails the variant). The
    output change clustering itself makes is recorded, not judged."""
    tfmot = _tfmot()
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    clustering = tfmot.clustering.keras
    cluster = clustering.cluster_weights
    extra: dict[str, Any] = {}
    if preserve_sparsity:  # tfmot 0.8.1 keeps the sparsity-preserving entry point internal
        from tensorflow_model_optimization.python.core.clustering.keras.cluster import _cluster_weights

        cluster, extra = _cluster_weights, {"preserve_sparsity": True}

    def wrap(layer: Any) -> Any | None:
        if type(layer).__name__ not in _CLUSTERED_LAYERS or not ClusteringRegistry.supports(layer):
            return None
        return cluster(layer, number_of_clusters=int(spec.options["clusters"]),
                       cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS, **extra)

    check = x[:_CHECK_SAMPLES]
    reference = np.asarray(model.predict(check, verbose=0))
    original = _weights_by_layer(model)  # before wrapping: a clustering wrapper changes the layer it wraps
    clustered, names = _clone_wrapping(model, wrap)
    if not names:
        raise VariantFailed("no Conv1D/Conv2D/Dense layer of this model can be clustered")
    technique = "sparsity-preserving clustering" if preserve_sparsity else "clustering"
    start, missing = _check_start_weights(technique, original, clustered)
    if missing:
        raise VariantFailed(f"{technique}: before fine-tuning, the trained layer(s) {', '.join(missing)} have no "
                            "counterpart in the wrapped model")
    clustered_outputs = np.asarray(clustered.predict(check, verbose=0))
    info = _fit(clustered, x, y, spec, task, report)
    info.update(clustered_layers=names, layers_not_clustered=[n for n in original if n not in names],
                technique_start_check="weights", technique_start_max_abs_difference=start,
                clustering_start_output_difference=float(np.max(np.abs(clustered_outputs - reference))))
    return clustering.strip_clustering(clustered), info


def _quantize_aware(model: Any, x: np.ndarray, y: np.ndarray, spec: VariantSpec, task: str,
                    report: ProgressCallback, scheme: Any = None) -> tuple[Any, dict[str, Any]]:
    """QAT on the layers tfmot can quantize; a BatchNormalization not after a conv, Rescaling and other
    unsupported layers stay float (and are listed).

    Start check: fake quantization changes the outputs on purpose, so the outputs are compared on the
    annotated model, before ``quantize_apply`` (max |diff| <= 1e-4), and after it every layer that keeps its
    name must hold exactly the trained weights (layers tfmot's transforms rename are listed, not compared)."""
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

    check = x[:_CHECK_SAMPLES]
    reference = np.asarray(model.predict(check, verbose=0))
    original = _weights_by_layer(model)
    annotated, _ = _clone_wrapping(model, wrap)
    technique = "quantization-aware training"
    start = _check_start_outputs(technique, reference, annotated, check)
    with tfmot.quantization.keras.quantize_scope():
        quantized = (tfmot.quantization.keras.quantize_apply(annotated, scheme) if scheme is not None
                     else tfmot.quantization.keras.quantize_apply(annotated))
    weights_difference, not_compared = _check_start_weights(technique, original, quantized)
    info = _fit(quantized, x, y, spec, task, report)
    info.update(layers_kept_float=kept_float, technique_start_check="outputs before quantize_apply, then weights",
                technique_start_max_abs_difference=start, technique_start_max_weight_difference=weights_difference,
                technique_start_layers_not_compared=not_compared)
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
    raise InvalidOption(f"variant {kind} is not a training variant")


def convert_trained(trained: TrainedModel, calibration: np.ndarray, samples: int = 200) -> bytes:
    """Convert a fine-tuned tf_keras model: float, or full int8 (calibrated on the first ``samples`` samples,
    for any layer left float)."""
    import tensorflow as tf

    if not (isinstance(samples, int) and not isinstance(samples, bool) and samples >= 1):
        raise InvalidOption(f"calibration_samples must be a whole number >= 1; found {samples!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(trained.model)
    if trained.int8:
        input_dtype = np.dtype(getattr(trained.model.inputs[0].dtype, "as_numpy_dtype", np.float32))
        INT8.apply(converter, representative_dataset(representative_samples(calibration, samples, input_dtype)))
    return bytes(converter.convert())


def train_task(payload: dict[str, Any], report: ProgressCallback) -> list[dict[str, Any]]:
    """Worker task: for each training spec, a fresh twin, a seeded fine-tune, conversion."""
    from pathlib import Path

    import tf_keras

    from optimizer.intake.model import load_checked
    from optimizer.produce.bridge import to_tf_keras
    from optimizer.produce.outcomes import Produced, produce_each
    from optimizer.records import ProducePayload

    job = ProducePayload.from_dict(payload)
    if not job.calibration_path or not job.calibration_labels_path:
        raise VariantFailed("training needs labelled training data; found none")
    x = np.load(job.calibration_path, allow_pickle=False)
    y = np.load(job.calibration_labels_path, allow_pickle=False)
    task, seed = job.task or "classification", job.seed
    _, loaded = load_checked(Path(job.model_path), Path(job.workdir))
    check_inputs = x[:16]

    def produce(spec: VariantSpec) -> Produced:
        started = time.perf_counter()
        twin, bridge = to_tf_keras(loaded, check_inputs)  # a fresh, verified copy for this technique
        tf_keras.utils.set_random_seed(seed)
        trained = train_variant(spec, lambda: twin, x, y, task, report)
        converting = time.perf_counter()
        samples = int(spec.options.get("calibration_samples") or 200)
        content = convert_trained(trained, x, samples)
        info = {**trained.info, **bridge.to_dict(), "seed": seed}
        if trained.int8:
            info["calibration_samples"] = min(samples, len(x))
        extra = {"training": info, "training_s": round(time.perf_counter() - started, 3), "epochs": info["epochs"]}
        return content, extra, time.perf_counter() - converting

    return produce_each((VariantSpec.from_dict(d) for d in job.specs), Path(job.out_dir), produce, report,
                        "training error")
