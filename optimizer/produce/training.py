"""Training-time variants with tensorflow-model-optimization: the only module that imports tfmot.

Each technique starts from a fresh tf_keras twin of the uploaded Keras 3 model (see :mod:`optimizer.produce.bridge`),
fine-tunes it on the labelled training split with a fixed seed, strips the training wrappers and converts
it. The same number of epochs without any technique ("finetune_control") shows what more training alone did.

Data goes by name: inputs by input name, labels (and each one's task) by labelled output name; an output
without labels gets no loss. Wrapped copies rename layers (QAT's ``quant_<name>``) but never reorder a
model's inputs or outputs, so they are fed in the twin's order and the .tflite keeps the twin's names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer.errors import InvalidOption, VariantFailed
from optimizer.produce.bridge import EQUIVALENCE_TOLERANCE, largest_difference
from optimizer.produce.calibration import representative_dataset, representative_samples
from optimizer.tensors import by_name
from optimizer.variants import INT8, VariantKind, VariantSpec

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
    input_names: list[str] = field(default_factory=list)  # the twin's, which the .tflite's tensors are named
    output_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingData:
    """A fine-tune's data: inputs by input name, labels and tasks by labelled output name, and the twin's
    input and output names in its own order (what wrapped copies are fed and answer in)."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    tasks: dict[str, str]
    inputs: list[str]
    outputs: list[str]

    @property
    def samples(self) -> int:
        return len(self.x[self.inputs[0]])

    def head(self, count: int = _CHECK_SAMPLES) -> dict[str, np.ndarray]:
        return {name: array[:count] for name, array in self.x.items()}


def _keyed(value: Any, names: list[str], what: str) -> dict[str, np.ndarray]:
    """Arrays by name: a dict as given, or the one array of a model with one such tensor."""
    if isinstance(value, dict):
        return {str(name): np.asarray(array) for name, array in value.items()}
    if len(names) != 1:
        raise InvalidOption(f"training data: the model has {what} {names}; give the arrays as a dict keyed by "
                            "those names")
    return {names[0]: np.asarray(value)}


def training_data(model: Any, x: Any, y: Any, task: Any) -> TrainingData:
    """The data for ``model`` (a tf_keras twin): ``x`` and ``y`` by name, or one array each for a model with
    one input / one output; ``task`` one for every labelled output or ``{output name: task}``."""
    inputs, outputs = list(model.input_names), list(model.output_names)
    arrays, labels = _keyed(x, inputs, "inputs"), _keyed(y, outputs, "outputs")
    if set(arrays) != set(inputs) or not labels or not set(labels) <= set(outputs):
        raise InvalidOption(f"training data: inputs {sorted(arrays)} and labels {sorted(labels)} do not match the "
                            f"model's inputs {inputs} and outputs {outputs}")
    tasks = {name: str((task.get(name) if isinstance(task, dict) else task) or "classification") for name in labels}
    return TrainingData({name: arrays[name] for name in inputs}, labels, tasks, inputs, outputs)


def _feed(data: TrainingData, arrays: dict[str, np.ndarray]) -> Any:
    """Inputs for a model derived from the twin: a list in its input order (one array when single)."""
    values = [arrays[name] for name in data.inputs]
    return values[0] if len(values) == 1 else values


def _predict(model: Any, data: TrainingData, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    outputs = model.predict(_feed(data, arrays), verbose=0)
    return [np.asarray(o) for o in outputs] if isinstance(outputs, (list, tuple)) else [np.asarray(outputs)]


def _by_output(model: Any, data: TrainingData, values: dict[str, Any]) -> Any:
    """Per-output values (labels, losses, metrics) keyed by ``model``'s own output names, labelled outputs
    only; the bare value for a model whose one output is labelled."""
    if len(data.outputs) == 1:
        return values[data.outputs[0]]
    names = dict(zip(data.outputs, model.output_names, strict=True))
    return {names[name]: value for name, value in values.items()}


def _tfmot() -> Any:
    import tensorflow_model_optimization as tfmot

    return tfmot


def _loss_for(task: str, outputs: np.ndarray) -> Any:
    """The loss for one labelled output, from its task and what the model gives now: probabilities or logits,
    one unit (binary) or several (classes; 0/1 columns for multilabel)."""
    import tf_keras

    if task == "regression":
        return tf_keras.losses.MeanSquaredError()
    probabilities = bool(np.all((outputs >= 0) & (outputs <= 1)))
    if task == "multilabel" or outputs.shape[-1] == 1:
        return tf_keras.losses.BinaryCrossentropy(from_logits=not probabilities)
    sums_to_one = bool(np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3) and np.all(outputs >= 0))
    return tf_keras.losses.SparseCategoricalCrossentropy(from_logits=not sums_to_one)


def _metrics_for(task: str, outputs: np.ndarray) -> list[Any]:
    """Accuracy where it means something: classes, and 0/1 columns (thresholded where sigmoid is 0.5)."""
    import tf_keras

    if task == "classification":
        return ["accuracy"]
    if task == "multilabel":
        probabilities = bool(np.all((outputs >= 0) & (outputs <= 1)))
        return [tf_keras.metrics.BinaryAccuracy(threshold=0.5 if probabilities else 0.0)]
    return []


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


def _fit(model: Any, data: TrainingData, spec: VariantSpec, report: ProgressCallback,
         extra_callbacks: list[Any] | None = None) -> dict[str, Any]:
    import tf_keras

    options = spec.options
    epochs, batch = int(options["epochs"]), int(options["batch_size"])
    current = dict(zip(data.outputs, _predict(model, data, data.head()), strict=True))
    losses = {name: _loss_for(task, current[name]) for name, task in data.tasks.items()}
    metrics = {name: _metrics_for(task, current[name]) for name, task in data.tasks.items()}
    model.compile(optimizer=tf_keras.optimizers.Adam(float(options["learning_rate"])),
                  loss=_by_output(model, data, losses), metrics=_by_output(model, data, metrics))
    reporter = _EpochReporter(report, spec.name, epochs)
    started = time.perf_counter()
    model.fit(_feed(data, data.x), _by_output(model, data, data.y), epochs=epochs, batch_size=batch, shuffle=True,
              verbose=0, callbacks=[reporter.callback, *(extra_callbacks or [])])
    steps = int(np.ceil(data.samples / batch)) * epochs
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


def _check_start_outputs(technique: str, reference: list[np.ndarray], candidate: Any, data: TrainingData) -> float:
    """Before fine-tuning, the wrapped model must compute what the trained model computes on every output
    (max |diff| <= 1e-4)."""
    difference = largest_difference(reference, _predict(candidate, data, data.head()))
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


def _prune(model: Any, data: TrainingData, spec: VariantSpec, report: ProgressCallback,
           m_by_n: bool = False) -> tuple[Any, dict[str, Any]]:
    tfmot = _tfmot()
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    schedule = (tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1) if m_by_n
                else _pruning_schedule(spec, data.samples))
    skipped: list[str] = []

    def wrap(layer: Any) -> Any | None:
        if type(layer).__name__ not in _KERNEL_LAYERS or not PruneRegistry.supports(layer):
            return None
        if m_by_n and not _eligible_for_2x4(layer):
            skipped.append(layer.name)
            return None
        kwargs = {"sparsity_m_by_n": (2, 4)} if m_by_n else {}
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule, **kwargs)

    reference = _predict(model, data, data.head())
    pruned, names = _clone_wrapping(model, wrap)
    if not names:
        raise VariantFailed("no layer of this model can be pruned" + (" in a 2:4 pattern" if m_by_n else ""))
    # The masks start all ones (the schedule prunes from the first training step on): identical outputs.
    start = _check_start_outputs("2:4 pruning" if m_by_n else "pruning", reference, pruned, data)
    info = _fit(pruned, data, spec, report, [tfmot.sparsity.keras.UpdatePruningStep()])
    info["pruned_layers"] = names
    info.update(technique_start_check="outputs", technique_start_max_abs_difference=start)
    if m_by_n:
        info["layers_not_2x4_eligible"] = skipped
    return tfmot.sparsity.keras.strip_pruning(pruned), info


def _cluster(model: Any, data: TrainingData, spec: VariantSpec, report: ProgressCallback,
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

    reference = _predict(model, data, data.head())
    original = _weights_by_layer(model)  # before wrapping: a clustering wrapper changes the layer it wraps
    clustered, names = _clone_wrapping(model, wrap)
    if not names:
        raise VariantFailed("no Conv1D/Conv2D/Dense layer of this model can be clustered")
    technique = "sparsity-preserving clustering" if preserve_sparsity else "clustering"
    start, missing = _check_start_weights(technique, original, clustered)
    if missing:
        raise VariantFailed(f"{technique}: before fine-tuning, the trained layer(s) {', '.join(missing)} have no "
                            "counterpart in the wrapped model")
    clustered_outputs = _predict(clustered, data, data.head())
    info = _fit(clustered, data, spec, report)
    info.update(clustered_layers=names, layers_not_clustered=[n for n in original if n not in names],
                technique_start_check="weights", technique_start_max_abs_difference=start,
                clustering_start_output_difference=largest_difference(reference, clustered_outputs))
    return clustering.strip_clustering(clustered), info


def _quantize_aware(model: Any, data: TrainingData, spec: VariantSpec, report: ProgressCallback,
                    scheme: Any = None) -> tuple[Any, dict[str, Any]]:
    """QAT on the layers tfmot can quantize; a BatchNormalization not after a conv, Rescaling, layers reading
    integers and other unsupported layers stay float (and are listed).

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
        # tfmot quantizes a BatchNormalization only as part of its conv (its registry does not list it)
        folded = kind == "BatchNormalization" and _after_linear_conv(producers.get(layer.name))
        if kind == "Rescaling" or _reads_integers(layer) or not (folded or registry.supports(layer)):
            kept_float.append(layer.name)
            return None
        return tfmot.quantization.keras.quantize_annotate_layer(layer.__class__.from_config(layer.get_config()))

    reference = _predict(model, data, data.head())
    original = _weights_by_layer(model)
    annotated, _ = _clone_wrapping(model, wrap)
    technique = "quantization-aware training"
    start = _check_start_outputs(technique, reference, annotated, data)
    with tfmot.quantization.keras.quantize_scope():
        quantized = (tfmot.quantization.keras.quantize_apply(annotated, scheme) if scheme is not None
                     else tfmot.quantization.keras.quantize_apply(annotated))
    weights_difference, not_compared = _check_start_weights(technique, original, quantized)
    info = _fit(quantized, data, spec, report)
    info.update(layers_kept_float=kept_float, technique_start_check="outputs before quantize_apply, then weights",
                technique_start_max_abs_difference=start, technique_start_max_weight_difference=weights_difference,
                technique_start_layers_not_compared=not_compared)
    return quantized, info


def _producers(model: Any) -> dict[str, Any]:
    """Layer name -> the layer feeding it (for 'BatchNormalization after a conv')."""
    result: dict[str, Any] = {}
    previous = None
    for layer in model.layers:
        inbound = getattr(layer, "_inbound_nodes", [])
        feeding = [n.inbound_layers for n in inbound] if inbound else []
        layers = [f for group in feeding for f in (group if isinstance(group, list) else [group])]
        result[layer.name] = layers[0] if layers else previous
        previous = layer
    return result


def _reads_integers(layer: Any) -> bool:
    """Whether a layer reads integer tensors (token ids, a mask, uint8 pixels): tfmot would put a fake-quant
    (float only) in front of it, so it stays float."""
    import tensorflow as tf

    try:
        inputs = tf.nest.flatten(layer.input)
    except (AttributeError, ValueError):  # a layer called more than once has no single input
        return False
    return any(not tf.as_dtype(t.dtype).is_floating for t in inputs)


def _after_linear_conv(producer: Any) -> bool:
    """tfmot's conv + BatchNormalization patterns: a Conv2D/DepthwiseConv2D without its own activation."""
    return (type(producer).__name__ in ("Conv2D", "DepthwiseConv2D")
            and producer.get_config().get("activation") == "linear")


def train_variant(spec: VariantSpec, twin_factory: Callable[[], Any], x: Any, y: Any, task: Any,
                  report: ProgressCallback) -> TrainedModel:
    """Apply one technique to a fresh twin of the model and fine-tune it. ``x``/``y``: dicts by input and
    labelled output name (one array each for a model with one input / output); ``task``: one task, or one
    per labelled output."""
    model = twin_factory()
    data = training_data(model, x, y, task)
    trained, info, int8 = _apply(spec, model, data, report)
    return TrainedModel(trained, int8, info, list(data.inputs), list(data.outputs))


def _apply(spec: VariantSpec, model: Any, data: TrainingData, report: ProgressCallback
           ) -> tuple[Any, dict[str, Any], bool]:
    """(trained model, training info, whether it converts to int8) for one technique or combination."""
    combine = _tfmot().experimental.combine
    kind = spec.kind
    if kind is VariantKind.FINETUNE_CONTROL:
        return model, _fit(model, data, spec, report), False
    if kind is VariantKind.QAT:
        return *_quantize_aware(model, data, spec, report), True
    if kind in (VariantKind.PRUNE, VariantKind.PRUNE_INT8):
        return *_prune(model, data, spec, report), kind is VariantKind.PRUNE_INT8
    if kind is VariantKind.PRUNE_2X4:
        return *_prune(model, data, spec, report, m_by_n=True), False
    if kind is VariantKind.CLUSTER:
        return *_cluster(model, data, spec, report), False
    if kind is VariantKind.SPARSE_CLUSTER:
        pruned, prune_info = _prune(model, data, spec, report)
        trained, info = _cluster(pruned, data, spec, report, preserve_sparsity=True)
        return trained, {**info, "pruning": prune_info}, False
    if kind is VariantKind.PQAT:
        pruned, prune_info = _prune(model, data, spec, report)
        trained, info = _quantize_aware(pruned, data, spec, report, combine.Default8BitPrunePreserveQuantizeScheme())
        return trained, {**info, "pruning": prune_info}, True
    if kind is VariantKind.CQAT:
        clustered, cluster_info = _cluster(model, data, spec, report)
        trained, info = _quantize_aware(clustered, data, spec, report,
                                        combine.Default8BitClusterPreserveQuantizeScheme())
        return trained, {**info, "clustering": cluster_info}, True
    raise InvalidOption(f"variant {kind} is not a training variant")


def _input_names(trained: TrainedModel) -> list[str]:
    """What the .tflite's inputs are named: the twin's input names (a wrapped copy keeps their order)."""
    return trained.input_names or [str(name) for name in trained.model.input_names]


def _export(trained: TrainedModel, folder: str) -> None:
    """A SavedModel of the model's serving function only, inputs and outputs keyed by the twin's names.

    ``from_keras_model`` on a tf_keras model first saves a full Keras SavedModel, tracing every layer's call
    (MobileNetV3Small with QAT: 57 s); this traces the model once (16 s, the same .tflite). QAT's wrappers
    would also name the outputs ``quant_<name>``; here they keep the twin's names."""
    import tensorflow as tf
    import tf_keras

    model = trained.model
    inputs, outputs = _input_names(trained), trained.output_names or list(model.output_names)
    specs = [tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=name) for t, name in zip(model.inputs, inputs,
                                                                                         strict=True)]

    def serve(*args: Any) -> dict[str, Any]:
        found = model(list(args) if len(args) > 1 else args[0], training=False)
        return dict(zip(outputs, found if isinstance(found, (list, tuple)) else [found], strict=True))

    archive = tf_keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=specs)
    archive.write_out(folder)


def convert_trained(trained: TrainedModel, calibration: Any, samples: int = 200) -> bytes:
    """Convert a fine-tuned tf_keras model: float, or full int8 (calibrated on the first ``samples`` samples
    of every input, fed by name, for any layer left float). The .tflite's inputs and outputs have the twin's
    names. ``calibration``: ``{input name: array}`` (one array for a one-input model)."""
    import tempfile

    import tensorflow as tf

    if not (isinstance(samples, int) and not isinstance(samples, bool) and samples >= 1):
        raise InvalidOption(f"calibration_samples must be a whole number >= 1; found {samples!r}")
    with tempfile.TemporaryDirectory(prefix="trained-") as scratch:
        _export(trained, scratch)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch)
        if trained.int8:
            arrays = by_name(_input_names(trained), calibration, "calibration", VariantFailed)
            INT8.apply(converter, representative_dataset(representative_samples(arrays, samples)))
        return bytes(converter.convert())


def train_task(payload: dict[str, Any], report: ProgressCallback) -> list[dict[str, Any]]:
    """Worker task: for each training spec, a fresh twin, a seeded fine-tune, conversion. A model the bridge
    cannot copy fails each training variant with the reason (the layer it cannot translate)."""
    from pathlib import Path

    import tf_keras

    from optimizer import tensors
    from optimizer.intake.model import load_checked
    from optimizer.produce.bridge import to_tf_keras
    from optimizer.produce.outcomes import Produced, produce_each
    from optimizer.records import ProducePayload

    job = ProducePayload.from_dict(payload)
    if not job.calibration or not job.calibration_labels:
        raise VariantFailed("training needs labelled training data; found none")
    x, y = tensors.load(job.calibration), tensors.load(job.calibration_labels)
    tasks = {name: job.tasks.get(name, "classification") for name in y}
    seed = job.seed
    _, loaded = load_checked(Path(job.model_path), Path(job.workdir))
    check_inputs = tensors.take(x, 0, _CHECK_SAMPLES)

    def produce(spec: VariantSpec) -> Produced:
        started = time.perf_counter()
        twin, bridge = to_tf_keras(loaded, check_inputs)  # a fresh, verified copy for this technique
        tf_keras.utils.set_random_seed(seed)
        trained = train_variant(spec, lambda: twin, x, y, tasks, report)
        converting = time.perf_counter()
        samples = int(spec.options.get("calibration_samples") or 200)
        content = convert_trained(trained, x, samples)
        info = {**trained.info, **bridge.to_dict(), "seed": seed}
        if trained.int8:
            info["calibration_samples"] = min(samples, tensors.sample_count(x))
        extra = {"training": info, "training_s": round(time.perf_counter() - started, 3), "epochs": info["epochs"]}
        return content, extra, time.perf_counter() - converting

    return produce_each((VariantSpec.from_dict(d) for d in job.specs), Path(job.out_dir), produce, report,
                        "training error")
