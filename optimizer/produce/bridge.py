"""Keras 3 model -> equivalent tf_keras (Keras 2) model, so tensorflow-model-optimization can train it.

tfmot 0.8 only accepts tf_keras models, and tf_keras cannot read Keras 3 files. The copy is built in memory
from the safely loaded model's config (never by tf_keras opening an uploaded file), the weights are copied
layer by layer, and the two models are checked to give the same outputs on every output.

Keras 3 writes constructs tf_keras has no layer for; they are translated into tf_keras's own layers, never
into Python code: the hidden op layers of expressions such as ``x + 3.0`` become tf_keras ``TFOpLambda``
layers naming a TensorFlow op from a fixed table (``math.add``), tensor-tensor ops become ``Add``/``Multiply``
/``Subtract``, ``Activation("hard_silu")`` (which tf_keras lacks) becomes the ReLU6 arithmetic it stands
for, and extra positional call arguments (``MultiHeadAttention(query, value, key)``) become tf_keras's
keyword arguments. Anything else is refused with the layer's class and name.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.errors import ModelRejected
from optimizer.tensors import by_name

# Keras 3 config keys tf_keras does not know, dropped only when they hold the value that means "off".
_BENIGN_EXTRA_KEYS: dict[str, Any] = {"optional": False, "synchronized": False, "lora_rank": None,
                                      "lora_alpha": None, "quantization_config": None, "input_axes": None,
                                      "output_axes": None, "rms_scaling": False, "use_gate": False,
                                      "sliding_window": None, "seed": None}
# Keys tf_keras's from_config requires that Keras 3 does not write (None: build on the first call).
_MISSING_KEYS: dict[str, dict[str, Any]] = {
    "MultiHeadAttention": {"query_shape": None, "key_shape": None, "value_shape": None}}
EQUIVALENCE_TOLERANCE = 1e-4
_OP_MODULE = "keras.src.ops"  # Keras 3's hidden op layers (``x + 3.0``) live in its ops modules
# Keras 3 op class -> the TensorFlow API symbol a tf_keras TFOpLambda layer calls (resolved by tf_keras by name).
_BINARY_OPS = {"Add": "math.add", "Subtract": "math.subtract", "Multiply": "math.multiply",
               "TrueDivide": "math.truediv", "Divide": "math.truediv", "Maximum": "math.maximum",
               "Minimum": "math.minimum", "Power": "math.pow"}
_UNARY_OPS = {"Negative": "math.negative", "Abs": "math.abs", "Absolute": "math.abs", "Square": "math.square",
              "Sqrt": "math.sqrt", "Exp": "math.exp", "Log": "math.log", "Tanh": "math.tanh",
              "Relu": "nn.relu", "Relu6": "nn.relu6", "Sigmoid": "math.sigmoid", "Silu": "nn.silu"}
# Two tensors of the same rank: tf_keras's merge layers (tfmot can quantize Add and Multiply).
_MERGE_LAYERS = {"Add": "Add", "Subtract": "Subtract", "Multiply": "Multiply", "Maximum": "Maximum",
                 "Minimum": "Minimum"}
# Keras 3 activations tf_keras lacks or computes differently (its hard_sigmoid is 0.2x + 0.5): Keras 3's
# relu6(x + 3) / 6, spelled in tf_keras layers by _expand_activation.
_EXPANDED_ACTIVATIONS = ("hard_sigmoid", "hard_silu", "hard_swish")


@dataclass
class BridgeReport:
    """What the bridge did, for the results: the largest output difference on the check inputs."""

    max_abs_difference: float
    layers: int
    check_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"bridge_max_abs_difference": self.max_abs_difference, "bridge_layers": self.layers,
                "bridge_check_samples": self.check_samples}


def _plain(value: Any) -> Any:
    """Keras 3 serialised objects -> the tf_keras form: dtype policies become their name, module and
    registered_name keys go, benign new keys at their 'off' value are dropped."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("class_name") == "DTypePolicy" and isinstance(value.get("config"), dict):
        return value["config"].get("name", "float32")
    if "class_name" in value and "config" in value:
        return {"class_name": value["class_name"], "config": _plain(value["config"])}
    result = {}
    for key, item in value.items():
        if key in _BENIGN_EXTRA_KEYS and item == _BENIGN_EXTRA_KEYS[key]:
            continue
        result[key] = _plain(item)
    return result


def _described(layer: dict[str, Any]) -> str:
    name = layer.get("name") or (layer.get("config") or {}).get("name")  # Sequential configs name it inside
    return f"layer {name!r} ({layer['class_name']})"


def _check_activation(layer: dict[str, Any], activation: Any) -> None:
    """An activation tf_keras lacks, or computes differently, is refused by name (outside an Activation
    layer, where :func:`_expand_activation` cannot split it off)."""
    import tf_keras

    if not isinstance(activation, str):
        return
    try:
        tf_keras.activations.get(activation)
    except ValueError:
        raise ModelRejected(f"{_described(layer)}: activation {activation!r} has no tf_keras equivalent") from None
    if activation in _EXPANDED_ACTIVATIONS:
        raise ModelRejected(f"{_described(layer)}: activation {activation!r} means something else in tf_keras; "
                            "only a separate Activation layer in a Functional model can be bridged")


def _layer_config(layer: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = _plain(layer["config"])  # a layer's config is a dict, so _plain keeps it one
    if layer["class_name"] == "InputLayer" and "batch_shape" in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    config = {**_MISSING_KEYS.get(layer["class_name"], {}), **config}
    _check_activation(layer, config.get("activation"))
    return config


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _history(tensor: Any, layer: dict[str, Any]) -> list[Any]:
    if not _is_tensor(tensor):
        raise ModelRejected(f"{_described(layer)}: expected tensor inputs only; found a constant argument "
                            f"{str(tensor)[:80]} that tf_keras cannot express")
    name, node_index, tensor_index = tensor["config"]["keras_history"]
    return [name, node_index, tensor_index]


def _argument(value: Any, layer: dict[str, Any]) -> Any:
    """A call argument in tf_keras's node format: a tensor as ``[layer, node, tensor]``, a constant as is."""
    if _is_tensor(value):
        return _history(value, layer)
    if isinstance(value, list):
        return [_argument(v, layer) for v in value]
    if isinstance(value, dict):
        if "class_name" in value:  # a serialised object (an array, a dtype) rather than a plain value
            raise ModelRejected(f"{_described(layer)}: call argument {str(value)[:80]} cannot be expressed in tf_keras")
        return {key: _argument(v, layer) for key, v in value.items()}
    return value


def _call_names(class_name: str) -> list[str]:
    """The names of a tf_keras layer's call arguments (``query, value, key, ...`` for MultiHeadAttention)."""
    import tf_keras

    cls = getattr(tf_keras.layers, class_name, None)
    if cls is None:
        return []
    return [p for p in inspect.signature(cls.call).parameters if p != "self"]


def _split_call(layer: dict[str, Any], node: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(first argument, keyword arguments) of one Keras 3 call: tf_keras passes everything after the first
    positional argument by keyword, so ``MultiHeadAttention(query, value, key)`` becomes ``query`` plus
    ``{"value": ..., "key": ...}``; a call made only with keywords gives its first argument back."""
    args, kwargs = list(node.get("args", [])), dict(node.get("kwargs", {}))
    if len(args) == 1:
        return args[0], kwargs
    names = _call_names(layer["class_name"])
    if not args and names and names[0] in kwargs:
        return kwargs.pop(names[0]), kwargs
    if not args or len(args) > len(names):
        raise ModelRejected(f"{_described(layer)}: called with {len(args)} positional inputs, which tf_keras's "
                            f"{layer['class_name']} does not take")
    kwargs.update(zip(names[1:], args[1:], strict=False))
    return args[0], kwargs


def _inbound_nodes(layer: dict[str, Any]) -> list[list[list[Any]]]:
    nodes = []
    for node in layer.get("inbound_nodes", []):
        first, kwargs = _split_call(layer, node)
        arguments = _argument(_plain(kwargs), layer) if kwargs else {}
        tensors = first if isinstance(first, list) else [first]
        nodes.append([[*_history(t, layer), arguments] for t in tensors])
    return nodes


def _op_lambda(name: str, function: str, nodes: list[Any]) -> dict[str, Any]:
    """A tf_keras TFOpLambda layer: tf_keras resolves ``function`` among TensorFlow's API symbols itself."""
    return {"class_name": "TFOpLambda", "name": name, "inbound_nodes": nodes,
            "config": {"name": name, "trainable": True, "dtype": "float32", "function": function}}


def _op_node(layer: dict[str, Any], node: dict[str, Any]) -> tuple[str, Any]:
    """('merge' | 'op', tf_keras node) for one call of a Keras 3 op: two tensors of one rank -> a merge layer's
    node, else a TFOpLambda node ``[first tensor or constant, {"y": second}]``."""
    args, name = list(node.get("args", [])), layer["class_name"]
    if node.get("kwargs") or len(args) != (2 if name in _BINARY_OPS else 1):
        raise ModelRejected(f"{_described(layer)}: a Keras op called with {len(args)} inputs and keywords "
                            f"{sorted(node.get('kwargs') or {})}, which the bridge does not translate")
    if len(args) == 1:
        return "op", [*_history(args[0], layer), {}]
    first, second = args
    if _is_tensor(first) and _is_tensor(second) and name in _MERGE_LAYERS and (
            len(first["config"]["shape"]) == len(second["config"]["shape"])):
        return "merge", [[*_history(first, layer), {}], [*_history(second, layer), {}]]
    if not (_is_tensor(first) or _is_tensor(second)):
        raise ModelRejected(f"{_described(layer)}: an op on constants only cannot be translated")
    head = _history(first, layer) if _is_tensor(first) else ["_CONSTANT_VALUE", -1, _argument(first, layer)]
    return "op", [*head, {"y": _argument(second, layer)}]


def _op_layer(layer: dict[str, Any]) -> dict[str, Any]:
    """A Keras 3 op layer (``x + 3.0``, ``x * y``) as a tf_keras merge layer or a TFOpLambda on a TF op."""
    name, kind = layer["name"], layer["class_name"]
    function = _BINARY_OPS.get(kind) or _UNARY_OPS.get(kind)
    extra = set(layer.get("config") or {}) - {"name"}
    if function is None or extra:
        what = f" with settings {sorted(extra)}" if function is not None else ""
        raise ModelRejected(f"{_described(layer)}: the Keras op {layer.get('module')}.{kind}{what} has no tf_keras "
                            "equivalent the bridge knows")
    nodes = [_op_node(layer, node) for node in layer.get("inbound_nodes", [])]
    if nodes and all(form == "merge" for form, _ in nodes):
        return {"class_name": _MERGE_LAYERS[kind], "name": name, "inbound_nodes": [n for _, n in nodes],
                "config": {"name": name, "trainable": True, "dtype": "float32"}}
    if any(form == "merge" for form, _ in nodes):  # a shared op both ways: every call as an op
        nodes = [("op", [*n[0][:3], {"y": n[1][:3]}]) if form == "merge" else (form, n) for form, n in nodes]
    return _op_lambda(name, function, [n for _, n in nodes])


def _expand_activation(layer: dict[str, Any]) -> list[dict[str, Any]]:
    """Activation('hard_sigmoid' | 'hard_silu') as tf_keras layers computing Keras 3's definition,
    ``relu6(x + 3) / 6`` (times ``x`` for hard_silu); the last keeps the layer's name, so later layers and
    the model's outputs find it."""
    name, activation = layer["name"], layer["config"]["activation"]
    sources = [_history(_split_call(layer, node)[0], layer) for node in layer.get("inbound_nodes", [])]
    silu = activation != "hard_sigmoid"
    add, relu, scale = f"{name}_add3", f"{name}_relu6", f"{name}_div6" if silu else name
    layers = [
        _op_lambda(add, "math.add", [[*source, {"y": 3.0}] for source in sources]),
        {"class_name": "ReLU", "name": relu, "config": {"name": relu, "trainable": True, "dtype": "float32",
                                                        "max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0},
         "inbound_nodes": [[[add, k, 0, {}]] for k in range(len(sources))]},
        _op_lambda(scale, "math.truediv", [[relu, k, 0, {"y": 6.0}] for k in range(len(sources))]),
    ]
    if silu:
        layers.append({"class_name": "Multiply", "name": name,
                       "config": {"name": name, "trainable": True, "dtype": "float32"},
                       "inbound_nodes": [[[*source, {}], [scale, k, 0, {}]] for k, source in enumerate(sources)]})
    return layers


def _translated(layer: dict[str, Any]) -> list[dict[str, Any]]:
    """One Keras 3 layer of a Functional config as one or more tf_keras layers."""
    if str(layer.get("module") or "").startswith(_OP_MODULE):
        return [_op_layer(layer)]
    if layer["class_name"] == "Activation" and layer["config"].get("activation") in _EXPANDED_ACTIVATIONS:
        return _expand_activation(layer)
    _check_class(layer)
    return [{"class_name": layer["class_name"], "name": layer["name"], "config": _layer_config(layer),
             "inbound_nodes": _inbound_nodes(layer)}]


def _check_class(layer: dict[str, Any]) -> None:
    """A layer class tf_keras has; never one that runs code named by the config (Lambda's bytecode, an
    arbitrary TF symbol): TFOpLambda layers come only from the bridge's own table."""
    import tf_keras

    if layer["class_name"] in ("Lambda", "TFOpLambda") or not hasattr(tf_keras.layers, layer["class_name"]):
        raise ModelRejected(f"{_described(layer)} has no counterpart in tf_keras, so training variants cannot "
                            "be built for this model")


def _endpoints(value: Any) -> list[list[Any]]:
    """A model's input or output layers as a list of ``[name, node, tensor]`` (Keras 3 gives one bare when
    single, and a dict for a model called with a dict)."""
    if isinstance(value, dict):
        value = list(value.values())
    if value and not isinstance(value[0], list):
        return [value]
    return list(value)


def _input_renames(config: dict[str, Any], model: Any) -> dict[str, str]:
    """Input layer name -> the model's name for that input (its tensor's), where they differ: Keras 3 names
    an unnamed input's tensor ``keras_tensor_N`` and its layer ``input_layer_N``; the run's data is keyed by
    the tensor's name, so the twin's inputs (and the .tflite made from it) are named that way too."""
    layers = [endpoint[0] for endpoint in _endpoints(config["input_layers"])]
    return {layer: name for layer, name in zip(layers, input_names(model), strict=True) if layer != name}


def _renamed(value: Any, renames: dict[str, str]) -> Any:
    """A Keras 3 config with the input layers renamed: their own names and every reference to them."""
    if isinstance(value, (list, tuple)):
        return [_renamed(v, renames) for v in value]
    if not isinstance(value, dict):
        return value
    result = {key: _renamed(item, renames) for key, item in value.items()}
    history = result.get("keras_history")
    if isinstance(history, (list, tuple)) and history and history[0] in renames:
        result["keras_history"] = [renames[history[0]], *history[1:]]
    if result.get("class_name") == "InputLayer" and result.get("name") in renames:
        result["name"] = result["config"]["name"] = renames[result["name"]]
    return result


def _functional_config(model: Any) -> dict[str, Any]:
    config = model.get_config()
    renames = _input_renames(config, model)
    if renames:
        config = _renamed(config, renames)
        config["input_layers"] = [[renames.get(e[0], e[0]), *e[1:]] for e in _endpoints(config["input_layers"])]
    outputs = config["output_layers"]
    if isinstance(outputs, dict):  # the model's outputs are its dict's keys, in sorted order (as exported)
        outputs = [outputs[key] for key in sorted(outputs)]
    layers = [translated for lay in config["layers"] for translated in _translated(lay)]
    names = [lay["name"] for lay in layers]
    if len(set(names)) != len(names):
        raise ModelRejected("the layers the bridge adds for Keras 3 constructs clash with the model's own names")
    return {"name": config["name"], "layers": layers, "input_layers": _endpoints(config["input_layers"]),
            "output_layers": _endpoints(outputs)}


def tf_keras_config(model: Any) -> tuple[str, dict[str, Any]]:
    """('sequential' | 'functional', tf_keras config) for a Keras 3 model; subclassed models are refused."""
    import keras

    kind = type(model).__name__
    if isinstance(model, keras.Sequential):
        config = model.get_config()
        layers = []
        for lay in config["layers"]:
            _check_class(lay)
            layers.append({"class_name": lay["class_name"], "config": _layer_config(lay)})
        if layers and layers[0]["class_name"] == "InputLayer":  # named as the model's input (see _input_renames)
            layers[0]["config"]["name"] = input_names(model)[0]
        return "sequential", {"name": config["name"], "layers": layers}
    if kind != "Functional":
        raise ModelRejected(f"training variants need a Sequential or Functional model; found a subclassed {kind}, "
                            "whose Python code is not in the file, so no equivalent tf_keras model can be built")
    return "functional", _functional_config(model)


def output_names(model: Any) -> list[str]:
    """A Keras 3 model's output names as the run keys them: its output layers' names, or the sorted keys of
    a model built with a dict of outputs (the order the twin's outputs follow)."""
    structure = getattr(model, "_outputs_struct", None)
    if isinstance(structure, dict):
        return sorted(structure)
    return [str(t._keras_history.operation.name) for t in model.outputs]  # noqa: SLF001 - the output layer


def _culprit(config: dict[str, Any]) -> str:
    """Which layer tf_keras refuses to build on its own (class and name), to name it in the error."""
    import tf_keras

    for layer in config["layers"]:
        try:
            tf_keras.layers.deserialize({"class_name": layer["class_name"], "config": layer["config"]})
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            name = layer.get("name") or layer["config"].get("name")
            return f"layer {name!r} ({layer['class_name']}): {str(exc).splitlines()[0][:300]}"
    return ""


def _rebuilt(kind: str, config: dict[str, Any]) -> Any:
    import tf_keras

    try:
        return (tf_keras.Sequential if kind == "sequential" else tf_keras.Model).from_config(config)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        reason = _culprit(config) or str(exc).splitlines()[0][:300]
        raise ModelRejected(f"this model cannot be rebuilt in tf_keras for training: {reason}") from None


def _copy_weights(model: Any, twin: Any) -> None:
    twin_layers = {layer.name: layer for layer in twin.layers}
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        target = twin_layers.get(layer.name)
        if target is None:
            raise ModelRejected(f"layer {layer.name!r} ({type(layer).__name__}) has no counterpart in tf_keras")
        shapes = [w.shape for w in target.get_weights()]
        if shapes != [w.shape for w in weights]:
            ours = [w.shape for w in weights]
            raise ModelRejected(f"layer {layer.name!r}: weight shapes differ: Keras 3 {ours}, tf_keras {shapes}")
        target.set_weights(weights)


def input_names(model: Any) -> list[str]:
    """A Keras 3 model's input names, in its order: its input tensors' names (the run's data is keyed by
    them; a model loaded from a file names them after its Input layers)."""
    return [str(t.name) for t in model.inputs]


def _integer_bound(tensor: Any) -> int:
    """Exclusive upper bound for random ids of an integer input: the smallest vocabulary of the Embedding
    layers it feeds (at most 10), else 2 (a mask, token types, ids of unknown range)."""
    source = tensor._keras_history.operation  # noqa: SLF001 - the input's layer: who reads it
    bounds = [int(node.operation.input_dim) for node in getattr(source, "_outbound_nodes", [])
              if type(node.operation).__name__ == "Embedding"]
    return max(1, min([10, *bounds])) if bounds else 2


def random_inputs(model: Any, samples: int = 8) -> dict[str, np.ndarray]:
    """Check inputs for a model without data: normal floats, valid integer ids, the full range of uint8."""
    rng = np.random.default_rng(0)
    result = {}
    for tensor in model.inputs:
        name, shape = str(tensor.name), [d or 1 for d in tensor.shape[1:]]
        dtype = np.dtype(str(tensor.dtype))
        if dtype.kind in "iu":
            high = 256 if dtype == np.uint8 else _integer_bound(tensor)
            result[name] = rng.integers(0, high, size=(samples, *shape)).astype(dtype)
        else:
            result[name] = rng.normal(size=(samples, *shape)).astype(np.float32)
    return result


def check_inputs_for(model: Any, check_inputs: Any) -> dict[str, np.ndarray]:
    """``{input name: array}`` from what the caller gave: a dict by name, one array for a one-input model,
    or None (random inputs)."""
    if check_inputs is None:
        return random_inputs(model)
    return by_name(input_names(model), check_inputs, "check_inputs")


def predict_all(model: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every output of a Keras 3 or tf_keras model, in the model's output order, fed by input name (a list in
    the model's input order, which both Keras versions accept)."""
    names = list(model.input_names) if hasattr(model, "input_names") else input_names(model)  # tf_keras | Keras 3
    feed: Any = [inputs[n] for n in names]
    outputs = model.predict(feed[0] if len(feed) == 1 else feed, verbose=0)
    if isinstance(outputs, dict):  # Keras 3, a model built with a dict of outputs: in its sorted keys' order
        return [np.asarray(outputs[key]) for key in sorted(outputs)]
    return [np.asarray(o) for o in outputs] if isinstance(outputs, (list, tuple)) else [np.asarray(outputs)]


def largest_difference(expected: list[np.ndarray], found: list[np.ndarray]) -> float:
    """Largest |difference| over every output (inf when the outputs do not even line up)."""
    if len(expected) != len(found) or any(a.shape != b.shape for a, b in zip(expected, found, strict=True)):
        return float("inf")
    return max((float(np.max(np.abs(np.asarray(a, np.float64) - b))) if a.size else 0.0
                for a, b in zip(expected, found, strict=True)), default=0.0)


def to_tf_keras(model: Any, check_inputs: Any = None) -> tuple[Any, BridgeReport]:
    """Build the tf_keras twin of a Keras 3 model, copy its weights, and prove they agree on every output
    (max |diff| <= 1e-4). ``check_inputs``: ``{input name: array}`` (one array for a one-input model), or
    None for random inputs."""
    kind, config = tf_keras_config(model)
    twin = _rebuilt(kind, config)
    _copy_weights(model, twin)
    if kind == "functional" and list(twin.output_names) != output_names(model):
        twin.output_names = output_names(model)  # dict keys: what training keys labels by and the .tflite says
    inputs = check_inputs_for(model, check_inputs)
    difference = largest_difference(predict_all(model, inputs), predict_all(twin, inputs))
    if not difference <= EQUIVALENCE_TOLERANCE:
        raise ModelRejected(f"the tf_keras copy differs from the model by {difference:.2e} "
                            f"(at most {EQUIVALENCE_TOLERANCE:.0e} allowed); training variants are not possible")
    return twin, BridgeReport(difference, len(model.layers), len(next(iter(inputs.values()))))
