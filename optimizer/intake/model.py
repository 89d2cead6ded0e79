"""Model intake: decide the format, check the file before parsing, and summarise it (runs in a worker).

Keras files are only ever loaded with Keras 3 in safe mode; SavedModels are audited (asset paths, file ops)
from their protobuf before TensorFlow loads them; .tflite files are opened by LiteRT only.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Any

from optimizer.errors import ModelRejected
from optimizer.intake.archive import check_zip, safe_extract
from optimizer.variants import SourceFormat


class ModelFormat(StrEnum):
    KERAS = "keras"
    H5 = "h5"
    SAVED_MODEL_ZIP = "saved_model_zip"
    TFLITE = "tflite"


_SUFFIXES = {".keras": ModelFormat.KERAS, ".h5": ModelFormat.H5, ".hdf5": ModelFormat.H5,
             ".zip": ModelFormat.SAVED_MODEL_ZIP, ".tflite": ModelFormat.TFLITE}
# Graph ops that touch the file system or run code when a signature is called (calibration, export).
_FORBIDDEN_OPS = {"ReadFile", "WriteFile", "MatchingFiles", "DeleteFile", "Save", "SaveV2", "SaveSlices",
                  "MergeV2Checkpoints", "PyFunc", "EagerPyFunc", "PyFuncStateless", "ImmutableConst",
                  "RecursiveCreateDir", "DebugIdentityV2", "PrintV2"}
_TFLITE_MAGIC = b"TFL3"


def model_format(path: Path) -> ModelFormat:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ModelRejected(
            f"{path.name}: expected a .keras, .h5, SavedModel .zip or .tflite file; found suffix {path.suffix!r}"
        )
    return fmt


def source_of(fmt: ModelFormat) -> SourceFormat:
    return SourceFormat.TFLITE if fmt is ModelFormat.TFLITE else SourceFormat.TENSORFLOW


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_model_file(path: Path) -> ModelFormat:
    """Cheap checks that need no TensorFlow: known suffix, not empty, magic bytes, safe archive."""
    fmt = model_format(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ModelRejected(f"{path.name}: expected a non-empty model file; found an empty or missing file")
    head = path.read_bytes()[:8]
    if fmt is ModelFormat.TFLITE and head[4:8] != _TFLITE_MAGIC:
        raise ModelRejected(f"{path.name}: expected a TensorFlow Lite flatbuffer (TFL3); found other bytes")
    if fmt is ModelFormat.H5 and not head.startswith(b"\x89HDF"):
        raise ModelRejected(f"{path.name}: expected an HDF5 file; found other bytes")
    if fmt in (ModelFormat.KERAS, ModelFormat.SAVED_MODEL_ZIP):
        check_zip(path)
    return fmt


def _find_saved_model_dir(root: Path) -> Path:
    candidates = sorted(p.parent for p in root.rglob("saved_model.pb"))
    if not candidates:
        raise ModelRejected("SavedModel .zip: expected a saved_model.pb inside; found none")
    if len(candidates) > 1:
        raise ModelRejected(f"SavedModel .zip: expected one saved_model.pb; found {len(candidates)}")
    return candidates[0]


def _function_names(node: Any) -> set[str]:
    """Function names a node calls through its attributes (PartitionedCall, If, While, ...)."""
    names = set()
    for value in node.attr.values():
        if value.HasField("func"):
            names.add(value.func.name)
        names.update(f.name for f in value.list.func)
    return names


def signature_ops(graph: Any) -> set[str]:
    """Every op reachable from the graph's signatures, following calls into library functions.

    The saver/restore ops every SavedModel carries are not reachable from a signature, so they do not
    count; a ReadFile hidden in a serving function does.
    """
    by_name = {node.name: node for node in graph.graph_def.node}
    library = {f.signature.name: f for f in graph.graph_def.library.function}
    pending = [info.name.split(":")[0].lstrip("^")
               for signature in graph.signature_def.values() for info in signature.outputs.values()]
    seen_nodes: set[str] = set()
    seen_functions: set[str] = set()
    ops: set[str] = set()
    functions: list[str] = []
    while pending:
        name = pending.pop()
        if name in seen_nodes or name not in by_name:
            continue
        seen_nodes.add(name)
        node = by_name[name]
        ops.add(node.op)
        functions.extend(_function_names(node))
        pending.extend(i.split(":")[0].lstrip("^") for i in node.input)
    while functions:
        fname = functions.pop()
        if fname in seen_functions or fname not in library:
            continue
        seen_functions.add(fname)
        for node in library[fname].node_def:
            ops.add(node.op)
            functions.extend(_function_names(node))
            if node.op in library:  # a direct call to a library function
                functions.append(node.op)
    return ops


def audit_saved_model(directory: Path) -> None:
    """Refuse SavedModels whose assets point outside their folder or whose signatures touch files or run Python."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((directory / "saved_model.pb").read_bytes())
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError types
        raise ModelRejected("SavedModel .zip: expected a valid saved_model.pb; found unparsable data") from None
    for graph in proto.meta_graphs:
        for asset in graph.asset_file_def:
            name = asset.filename
            if name.startswith("/") or ".." in Path(name).parts:
                raise ModelRejected(f"SavedModel .zip: asset paths must stay in the model folder; found {name!r}")
        bad = sorted(signature_ops(graph) & _FORBIDDEN_OPS)
        if bad:
            raise ModelRejected(
                f"SavedModel .zip: expected a pure inference graph; its signatures run file/Python ops {', '.join(bad)}"
            )


def prepare_saved_model(path: Path, workdir: Path) -> Path:
    """Extract (checked) and audit an uploaded SavedModel zip; returns the folder holding saved_model.pb."""
    target = workdir / "saved_model_upload"
    if not target.exists():
        safe_extract(path, target)
    directory = _find_saved_model_dir(target)
    audit_saved_model(directory)
    return directory


def load_keras(path: Path) -> Any:
    """Keras 3, safe mode only: Lambda bytecode and unknown classes are refused, never executed."""
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Lambda" in first or "arbitrary code" in first:
            raise ModelRejected(
                f"{path.name}: expected layers without Python code; found a Lambda layer (refused in safe mode)"
            ) from None
        raise ModelRejected(f"{path.name}: expected a Keras 3 model file; Keras says: {first[:300]}") from None


def _keras_summary(model: Any) -> dict[str, Any]:
    def tensor(t: Any) -> dict[str, Any]:
        return {"name": str(getattr(t, "name", "")), "shape": list(t.shape), "dtype": str(t.dtype)}

    return {
        "inputs": [tensor(t) for t in model.inputs],
        "outputs": [tensor(t) for t in model.outputs],
        "parameter_count": int(model.count_params()),
        "layers": [{"name": layer.name, "type": type(layer).__name__} for layer in model.layers],
        "model_class": type(model).__name__,
    }


def _saved_model_summary(directory: Path) -> dict[str, Any]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    signatures = dict(loaded.signatures)
    if "serving_default" not in signatures:
        raise ModelRejected(
            f"SavedModel .zip: expected a 'serving_default' signature; found {sorted(signatures) or 'none'}"
        )
    function = signatures["serving_default"]
    inputs = [{"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}
              for name, spec in function.structured_input_signature[1].items()]
    outputs = [{"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}
               for name, spec in function.structured_outputs.items()]
    parameters = sum(int(v.shape.num_elements() or 0) for v in getattr(loaded, "variables", []))
    return {"inputs": inputs, "outputs": outputs, "parameter_count": parameters,
            "layers": [{"name": "serving_default", "type": "signature"}]}


def load_checked(path: Path, workdir: Path) -> tuple[dict[str, Any], Any]:
    """Check, load (safely) and summarise an upload; returns the summary and what conversion starts from:
    the Keras model, the audited SavedModel folder, or ``None`` for a .tflite."""
    fmt = check_model_file(path)
    loaded: Any = None
    if fmt is ModelFormat.TFLITE:
        from optimizer.measure.runtime import describe

        summary = describe(path)
    elif fmt is ModelFormat.SAVED_MODEL_ZIP:
        loaded = prepare_saved_model(path, workdir)
        summary = _saved_model_summary(loaded)
    else:
        loaded = load_keras(path)
        summary = _keras_summary(loaded)
    if len(summary["inputs"]) != 1 or len(summary["outputs"]) != 1:
        raise ModelRejected(
            f"{path.name}: expected a model with one input and one output; found "
            f"{len(summary['inputs'])} input(s) and {len(summary['outputs'])} output(s)"
        )
    summary = {"file_name": path.name, "format": fmt.value, "source": source_of(fmt).value,
               "file_size_bytes": path.stat().st_size, "sha256": file_sha256(path), **summary}
    return summary, loaded


def inspect_model(path: Path, workdir: Path) -> dict[str, Any]:
    """Summary of an upload: format, inputs/outputs, parameters, layers or ops, file size and hash."""
    return load_checked(path, workdir)[0]


def inspect_task(payload: dict[str, Any], report: Any) -> dict[str, Any]:
    """Worker task: the summary of one upload (see :class:`optimizer.records.InspectPayload`)."""
    from optimizer.records import InspectPayload

    job = InspectPayload.from_dict(payload)
    return inspect_model(Path(job.model_path), Path(job.workdir))
