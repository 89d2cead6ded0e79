"""The only module that imports the LiteRT interpreter: load, run with correct int8 I/O, describe, audit ops.

Never imports TensorFlow, so benchmark and evaluation children stay light (~0.1 s, ~36 MB to import).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import interpreter as litert

from optimizer.errors import ModelRejected
from optimizer.tensors import Arrays, bind, sample_count, take

RUNTIME_NAME = "ai_edge_litert"
# Ops that only move between integer and float at the model's edge (or read a shape): not "float compute".
_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE", "SHAPE"}  # SHAPE reads only metadata
_FLOAT_DTYPES = {"float32", "float16", "float64"}


def runtime_version() -> str:
    import ai_edge_litert

    return str(getattr(ai_edge_litert, "__version__", "unknown"))


def load_interpreter(path: Path, threads: int = 1, xnnpack: bool = True) -> litert.Interpreter:
    """Open a .tflite with LiteRT and allocate it; any parse failure becomes :class:`ModelRejected`."""
    resolver = (
        litert.OpResolverType.AUTO if xnnpack else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter = _open(path, threads, resolver)
    _allocate(interpreter, path)
    return interpreter


def _open(path: Path, threads: int, resolver: litert.OpResolverType) -> litert.Interpreter:
    try:
        return litert.Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
    except (ValueError, RuntimeError) as exc:
        raise ModelRejected(f"{path.name}: expected a valid TensorFlow Lite flatbuffer; "
                            f"LiteRT says: {_first_line(exc)}") from None


def _allocate(interpreter: litert.Interpreter, path: Path) -> None:
    try:
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelRejected(f"{path.name}: LiteRT could not allocate the model's tensors: {_first_line(exc)}") from None


def _open_with_own_ops(path: Path) -> tuple[litert.Interpreter, list[dict[str, Any]]]:
    """Open a .tflite as the default runtime runs it, and list the model's own ops.

    Only the default resolver (AUTO; BUILTIN is the same one) runs ops that XNNPACK alone provides, such as
    MediaPipe's custom Convolution2DTransposeBias: without default delegates such models do not allocate.
    Delegates are applied at the first allocation and only append DELEGATE nodes after the model's own, so
    the op list is read before it (and DELEGATE nodes are dropped should a runtime apply them earlier).
    """
    interpreter = _open(path, 1, litert.OpResolverType.AUTO)
    listed = interpreter._get_ops_details()  # noqa: SLF001 - LiteRT's only op listing
    ops = [op for op in listed if op["op_name"] != "DELEGATE"]
    _allocate(interpreter, path)
    return interpreter, ops


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _tensor_summary(detail: dict[str, Any]) -> dict[str, Any]:
    signature = detail.get("shape_signature")
    shape = [int(d) for d in (signature if signature is not None and len(signature) else detail["shape"])]
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {
        "name": detail["name"],
        "shape": [None if d < 0 else d for d in shape],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def describe(path: Path, signature: str | None = None) -> dict[str, Any]:
    """Inputs and outputs (named as the signature names them, when the file has one), op list, signatures and
    constant-parameter count of a .tflite file; ``signature`` picks one of several (None: the default)."""
    interpreter, ops = _open_with_own_ops(path)
    available = sorted(interpreter.get_signature_list())
    if signature is not None and signature not in available:
        raise ModelRejected(f"{path.name}: expected a signature named {signature!r}; found {available or 'none'}")
    tensors = interpreter.get_tensor_details()
    produced = {int(i) for op in ops for i in op["outputs"]}
    consumed = {int(i) for op in ops for i in op["inputs"] if int(i) >= 0}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    constants = consumed - produced - graph_inputs
    by_index = {t["index"]: t for t in tensors}
    parameters = sum(int(np.prod(by_index[i]["shape"])) for i in constants if i in by_index)
    model_io = ModelIO.open(interpreter, signature)
    return {
        "inputs": [_tensor_summary({**d, "name": n}) for n, d in model_io.inputs.items()],
        "outputs": [_tensor_summary({**d, "name": n}) for n, d in model_io.outputs.items()],
        "parameter_count": parameters,
        "layers": [{"name": f"{op['index']}", "type": op["op_name"]} for op in ops],
        "signature": model_io.key,
        "signatures": available,
    }


@dataclass
class ModelIO:
    """A loaded file's inputs and outputs by name: its signature's (the default one, or the only one), else
    the graph's own tensor names. ``runner`` is the signature runner, None without a signature."""

    key: str | None
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    runner: Any = None

    @classmethod
    def open(cls, interpreter: litert.Interpreter, key: str | None = None) -> ModelIO:
        signatures = interpreter.get_signature_list()
        if not signatures:
            return cls(None, {d["name"]: d for d in interpreter.get_input_details()},
                       {d["name"]: d for d in interpreter.get_output_details()})
        if key is None or key not in signatures:
            key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
        runner = interpreter.get_signature_runner(key)
        return cls(key, dict(runner.get_input_details()), dict(runner.get_output_details()), runner)

    def bind(self, input_names: list[str], output_names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """{model name: this file's name} for the inputs and the outputs (see :func:`optimizer.tensors.bind`)."""
        return (bind(input_names, list(self.inputs), "inputs"), bind(output_names, list(self.outputs), "outputs"))

    def fixed_batch(self) -> int | None:
        """The batch size every input is fixed to, or None when the batch dimension can vary."""
        sizes = set()
        for detail in self.inputs.values():
            signature = detail.get("shape_signature")
            if signature is None or not len(signature) or int(signature[0]) != -1:
                sizes.add(int(detail["shape"][0]) if len(detail["shape"]) else 1)
        return min(sizes) if sizes else None


@dataclass(frozen=True)
class OpAudit:
    op_counts: dict[str, int]
    float_compute_ops: list[str]
    activation_dtypes: list[str]
    weight_dtypes: list[str]
    input_dtypes: list[str]
    output_dtypes: list[str]

    @property
    def integer_only(self) -> bool:
        return not self.float_compute_ops

    def to_dict(self) -> dict[str, Any]:
        return {
            "op_counts": self.op_counts,
            "float_compute_ops": self.float_compute_ops,
            "activation_dtypes": self.activation_dtypes,
            "weight_dtypes": self.weight_dtypes,
            "input_dtypes": self.input_dtypes,
            "output_dtypes": self.output_dtypes,
            "integer_only": self.integer_only,
        }


def audit_ops(path: Path) -> OpAudit:
    """List every op with the dtypes it computes in; an op other than QUANTIZE/DEQUANTIZE that reads or
    writes a float activation is float compute, whatever the converter was asked for."""
    interpreter, ops = _open_with_own_ops(path)
    dtype_of = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    produced = {int(i) for op in ops for i in op["outputs"]}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    activations = produced | graph_inputs
    counts: Counter[str] = Counter()
    float_ops: list[str] = []
    activation_dtypes: set[str] = set()
    weight_dtypes: set[str] = set()
    for op in ops:
        name = op["op_name"]
        counts[name] += 1
        used = [int(i) for i in list(op["inputs"]) + list(op["outputs"]) if int(i) >= 0]
        act = {dtype_of[i] for i in used if i in activations and i in dtype_of}
        constants = [int(i) for i in op["inputs"] if int(i) >= 0 and int(i) not in activations]
        weights = {dtype_of[i] for i in constants if i in dtype_of}
        activation_dtypes |= act
        weight_dtypes |= weights
        if name not in _BOUNDARY_OPS and act & _FLOAT_DTYPES:
            float_ops.append(f"{name}#{op['index']}")
    return OpAudit(
        op_counts=dict(sorted(counts.items())),
        float_compute_ops=float_ops,
        activation_dtypes=sorted(activation_dtypes),
        weight_dtypes=sorted(weight_dtypes),
        input_dtypes=[np.dtype(d["dtype"]).name for d in interpreter.get_input_details()],
        output_dtypes=[np.dtype(d["dtype"]).name for d in interpreter.get_output_details()],
    )


def quantize_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float data -> the input tensor's dtype, using its (scale, zero_point) when it is quantized."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    scaled = x / scale + zero_point if scale else x
    codes: np.ndarray = np.clip(np.rint(scaled), info.min, info.max)  # numpy's stubs give Any for ufunc results
    return codes.astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Output tensor -> float32; quantized codes are compared only after dequantization."""
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind != "f" and scale:
        dequantized: np.ndarray = (y.astype(np.float32) - zero_point) * scale  # Any: the detail dict is untyped
        return dequantized.astype(np.float32)
    return y.astype(np.float32, copy=False)


def positional_order(path: Path, input_names: list[str]) -> list[str]:
    """The model's input names in the order the file's graph lists its inputs (for tools that feed by
    position, such as TensorFlow's quantization debugger)."""
    interpreter = load_interpreter(path, xnnpack=False)
    model_io = ModelIO.open(interpreter)
    bound = bind(input_names, list(model_io.inputs), "inputs")
    index_of = {name: model_io.inputs[bound[name]]["index"] for name in input_names}
    position = {detail["index"]: i for i, detail in enumerate(interpreter.get_input_details())}
    return sorted(input_names, key=lambda name: position[index_of[name]])


def predict(path: Path, inputs: Mapping[str, np.ndarray], input_names: list[str], output_names: list[str],
            threads: int = 1, batch_size: int = 64) -> Arrays:
    """Run a model over ``inputs`` (by the model's input names) in batches, 64 at a time where the batch size
    can vary; returns each output by the model's output name, dequantized to float32."""
    interpreter = load_interpreter(path, threads)
    model_io = ModelIO.open(interpreter)
    input_bound, output_bound = model_io.bind(input_names, output_names)
    step = model_io.fixed_batch() or batch_size
    results: dict[str, list[np.ndarray]] = {name: [] for name in output_names}
    for start in range(0, sample_count(inputs), step):
        chunk = take(inputs, start, start + step)
        found = _invoke(interpreter, model_io, {input_bound[n]: chunk[n] for n in input_names})
        for name in output_names:
            results[name].append(dequantize_output(found[output_bound[name]], model_io.outputs[output_bound[name]]))
    return {name: np.concatenate(parts, axis=0) for name, parts in results.items()}


def _invoke(interpreter: litert.Interpreter, model_io: ModelIO, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One invocation with ``feed`` (by this file's input names), quantized where the inputs are quantized."""
    quantized = {name: quantize_input(array, model_io.inputs[name]) for name, array in feed.items()}
    if model_io.runner is not None:
        return dict(model_io.runner(**quantized))
    for name, array in quantized.items():
        detail = model_io.inputs[name]
        if list(detail["shape"]) != list(array.shape):
            interpreter.resize_tensor_input(detail["index"], list(array.shape))
    interpreter.allocate_tensors()
    current = {d["name"]: d for d in interpreter.get_input_details()}
    for name, array in quantized.items():
        interpreter.set_tensor(current[name]["index"], array)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


_KERNEL_OPS = {"CONV_2D": 1, "FULLY_CONNECTED": 1, "DEPTHWISE_CONV_2D": 1}


def weight_stats(path: Path) -> list[dict[str, Any]]:
    """Per-kernel facts read from the final file: zero fraction (pruning), distinct values (clustering) and
    how many groups of 4 along the input channels hold exactly / at least 2 zeros (2:4 pruning).

    TFLite stores CONV_2D kernels as (out, h, w, in) and FULLY_CONNECTED as (out, in): the last axis is the
    input channels, the axis 2:4 groups run along. int8 weights are symmetric, so a zero weight is code 0.
    """
    interpreter, ops = _open_with_own_ops(path)
    produced = {int(i) for op in ops for i in op["outputs"]}
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    stats = []
    for op in ops:
        if op["op_name"] not in _KERNEL_OPS or len(op["inputs"]) < 2:
            continue
        index = int(op["inputs"][_KERNEL_OPS[op["op_name"]]])
        if index < 0 or index in produced:  # e.g. float16 weights behind a DEQUANTIZE op
            continue
        kernel = np.asarray(interpreter.get_tensor(index))
        zeros = kernel == 0
        entry: dict[str, Any] = {
            "op": f"{op['op_name']}#{op['index']}", "tensor": details[index]["name"],
            "shape": [int(d) for d in kernel.shape], "dtype": kernel.dtype.name,
            "zero_fraction": float(zeros.mean()), "unique_values": int(np.unique(kernel).size),
        }
        if kernel.shape[-1] % 4 == 0:
            per_group = zeros.reshape(-1, 4).sum(axis=1)
            entry["groups_2x4_exact"] = float(np.mean(per_group == 2))
            entry["groups_2x4_at_least"] = float(np.mean(per_group >= 2))
        stats.append(entry)
    return stats
