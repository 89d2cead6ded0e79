"""Keras 3 model -> equivalent tf_keras (Keras 2) model, so tensorflow-model-optimization can train it.

tfmot 0.8 only accepts tf_keras models, and tf_keras cannot read Keras 3 files. The copy is built in memory
from the safely loaded model's config (never by tf_keras opening an uploaded file), the weights are copied
layer by layer, and the two models are checked to give the same outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.errors import ModelRejected

# Keras 3 config keys tf_keras does not know, dropped only when they hold the value that means "off".
_BENIGN_EXTRA_KEYS: dict[str, Any] = {"optional": False, "synchronized": False, "lora_rank": None,
                                      "lora_alpha": None, "quantization_config": None, "input_axes": None,
                                      "output_axes": None, "rms_scaling": False}
EQUIVALENCE_TOLERANCE = 1e-4


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


def _layer_config(layer: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = _plain(layer["config"])  # a layer's config is a dict, so _plain keeps it one
    if layer["class_name"] == "InputLayer" and "batch_shape" in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    return config


def _history(tensor: dict[str, Any], layer_name: str) -> list[Any]:
    if not (isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__"):
        raise ModelRejected(f"layer {layer_name!r}: expected tensor inputs only; found a constant argument "
                            f"{str(tensor)[:80]} that tf_keras cannot express")
    name, node_index, tensor_index = tensor["config"]["keras_history"]
    return [name, node_index, tensor_index]


def _inbound_nodes(layer: dict[str, Any]) -> list[list[list[Any]]]:
    nodes = []
    for node in layer.get("inbound_nodes", []):
        args, kwargs = node.get("args", []), _plain(node.get("kwargs", {}))
        if len(args) != 1:
            raise ModelRejected(f"layer {layer['name']!r}: expected one positional input; found {len(args)}")
        first = args[0]
        tensors = first if isinstance(first, list) else [first]
        nodes.append([[*_history(t, layer["name"]), kwargs] for t in tensors])
    return nodes


def _endpoints(value: list[Any]) -> list[list[Any]]:
    """A model's input or output layers as a list of ``[name, node, tensor]`` (Keras 3 gives one bare when single)."""
    if value and not isinstance(value[0], list):
        return [value]
    return value


def tf_keras_config(model: Any) -> tuple[str, dict[str, Any]]:
    """('sequential' | 'functional', tf_keras config) for a Keras 3 model; subclassed models are refused."""
    import keras

    kind = type(model).__name__
    if isinstance(model, keras.Sequential):
        config = model.get_config()
        return "sequential", {"name": config["name"],
                              "layers": [{"class_name": lay["class_name"], "config": _layer_config(lay)}
                                         for lay in config["layers"]]}
    if kind != "Functional":
        raise ModelRejected(f"training variants need a Sequential or Functional model; found a subclassed {kind}, "
                            "whose Python code is not in the file, so no equivalent tf_keras model can be built")
    config = model.get_config()
    layers = [{"class_name": lay["class_name"], "name": lay["name"], "config": _layer_config(lay),
               "inbound_nodes": _inbound_nodes(lay)} for lay in config["layers"]]
    return "functional", {"name": config["name"], "layers": layers,
                          "input_layers": _endpoints(config["input_layers"]),
                          "output_layers": _endpoints(config["output_layers"])}


def to_tf_keras(model: Any, check_inputs: np.ndarray | None = None) -> tuple[Any, BridgeReport]:
    """Build the tf_keras twin of a Keras 3 model, copy its weights, and prove they agree (max |diff| <= 1e-4)."""
    import tf_keras

    kind, config = tf_keras_config(model)
    try:
        twin = (tf_keras.Sequential if kind == "sequential" else tf_keras.Model).from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelRejected(f"this model cannot be rebuilt in tf_keras for training: {str(exc).splitlines()[0][:300]}"
                            ) from None
    twin_layers = {layer.name: layer for layer in twin.layers}
    copied = 0
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
        copied += 1
    if check_inputs is None:
        shape = [d or 1 for d in model.inputs[0].shape[1:]]
        check_inputs = np.random.default_rng(0).normal(size=(8, *shape)).astype(np.float32)
    expected = np.asarray(model.predict(check_inputs, verbose=0))
    found = np.asarray(twin.predict(check_inputs, verbose=0))
    difference = float(np.max(np.abs(expected - found)))
    if not difference <= EQUIVALENCE_TOLERANCE:
        raise ModelRejected(f"the tf_keras copy differs from the model by {difference:.2e} "
                            f"(at most {EQUIVALENCE_TOLERANCE:.0e} allowed); training variants are not possible")
    return twin, BridgeReport(difference, len(model.layers), len(check_inputs))
