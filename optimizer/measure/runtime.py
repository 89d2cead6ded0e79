"""The only module that imports the LiteRT interpreter: load, run with correct int8 I/O, describe, audit ops.

Never imports TensorFlow, so benchmark and evaluation children stay light (~0.1 s, ~36 MB to import).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import interpreter as litert

from optimizer.errors import ModelRejected

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
    try:
        interpreter = litert.Interpreter(
            model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelRejected(f"{path.name}: expected a valid TensorFlow Lite flatbuffer; "
                            f"LiteRT says: {_first_line(exc)}") from None
    try:
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelRejected(f"{path.name}: LiteRT could not allocate the model's tensors: {_first_line(exc)}") from None
    return interpreter


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


def describe(path: Path) -> dict[str, Any]:
    """Inputs, outputs, op list and constant-parameter count of a .tflite file."""
    interpreter = load_interpreter(path, xnnpack=False)  # with XNNPACK the ops collapse into DELEGATE nodes
    ops = interpreter._get_ops_details()  # noqa: SLF001 - LiteRT's only op listing
    tensors = interpreter.get_tensor_details()
    produced = {int(i) for op in ops for i in op["outputs"]}
    consumed = {int(i) for op in ops for i in op["inputs"] if int(i) >= 0}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    constants = consumed - produced - graph_inputs
    by_index = {t["index"]: t for t in tensors}
    parameters = sum(int(np.prod(by_index[i]["shape"])) for i in constants if i in by_index)
    return {
        "inputs": [_tensor_summary(d) for d in interpreter.get_input_details()],
        "outputs": [_tensor_summary(d) for d in interpreter.get_output_details()],
        "parameter_count": parameters,
        "layers": [{"name": f"{op['index']}", "type": op["op_name"]} for op in ops],
    }


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
    interpreter = load_interpreter(path, xnnpack=False)  # the model's own ops, not DELEGATE nodes
    ops = interpreter._get_ops_details()  # noqa: SLF001
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


def predict(path: Path, x: np.ndarray, threads: int = 1, batch_size: int = 64) -> np.ndarray:
    """Run a single-input, single-output model over ``x`` in batches where the model allows a dynamic batch."""
    interpreter = load_interpreter(path, threads)
    input_detail = interpreter.get_input_details()[0]
    signature = input_detail.get("shape_signature")
    dynamic_batch = signature is not None and len(signature) and int(signature[0]) == -1
    step = batch_size if dynamic_batch else int(input_detail["shape"][0])
    results: list[np.ndarray] = []
    current = None
    for start in range(0, len(x), step):
        chunk = x[start:start + step]
        if dynamic_batch and current != len(chunk):
            interpreter.resize_tensor_input(input_detail["index"], [len(chunk), *input_detail["shape"][1:]])
            interpreter.allocate_tensors()
            current = len(chunk)
            input_detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(input_detail["index"], quantize_input(chunk, input_detail))
        interpreter.invoke()
        output_detail = interpreter.get_output_details()[0]
        results.append(dequantize_output(interpreter.get_tensor(output_detail["index"]), output_detail))
    return np.concatenate(results, axis=0)


_KERNEL_OPS = {"CONV_2D": 1, "FULLY_CONNECTED": 1, "DEPTHWISE_CONV_2D": 1}


def weight_stats(path: Path) -> list[dict[str, Any]]:
    """Per-kernel facts read from the final file: zero fraction (pruning), distinct values (clustering) and
    how many groups of 4 along the input channels hold exactly / at least 2 zeros (2:4 pruning).

    TFLite stores CONV_2D kernels as (out, h, w, in) and FULLY_CONNECTED as (out, in): the last axis is the
    input channels, the axis 2:4 groups run along. int8 weights are symmetric, so a zero weight is code 0.
    """
    interpreter = load_interpreter(path, xnnpack=False)
    ops = interpreter._get_ops_details()  # noqa: SLF001
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
