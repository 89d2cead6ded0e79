"""Model intake: decide the format, check the file before parsing, and summarise it (runs in a worker).

Keras files are only ever loaded with Keras 3 in safe mode; SavedModels are audited (asset paths, file ops)
from their protobuf before TensorFlow loads them; .tflite files are opened by LiteRT only.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from optimizer.errors import ModelRejected, UnsafeArchive
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
DEFAULT_SIGNATURE = "serving_default"
# The only packages Keras 3 imports a class from by its config's "module"; anything else must be registered.
_KERAS_PACKAGES = {"keras", "keras_hub", "keras_cv", "keras_nlp"}
# Where Keras looks up a function saved by bare name (module "builtins").
_KERAS_FUNCTION_MODULES = ("activations", "constraints", "initializers", "losses", "metrics", "regularizers")
_KERAS_CONFIG_MAX_BYTES = 64 * 1024**2
# Keras's own words for a class it cannot find (.keras and legacy .h5 loaders).
_UNKNOWN_CLASS_PATTERNS = (re.compile(r"Could not locate (?:class|function) '([^']+)'"),
                           re.compile(r"Unknown (?:layer|object|class|function)[^:']*: '?([\w.>]+)'?"))


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
        raise _keras_refusal(path, exc) from None


def _keras_refusal(path: Path, exc: BaseException) -> ModelRejected:
    """Keras's failure in the user's terms. A class from the uploader's own code is named: Keras's first line
    names only the outer model ("Functional could not be deserialized")."""
    text = str(exc).strip()
    custom = custom_keras_classes(path) or sorted(
        {match.group(1) for pattern in _UNKNOWN_CLASS_PATTERNS for match in pattern.finditer(text)})
    if custom:
        more = f" and {len(custom) - 5} more" if len(custom) > 5 else ""
        shown = ", ".join(repr(name) for name in custom[:5]) + more
        return ModelRejected(
            f"{path.name}: expected only Keras's built-in layers and functions; found custom {shown}, defined in "
            "the uploader's own code. This tool never imports code from an upload (importing runs it), so it "
            "cannot rebuild them: upload a SavedModel export (model.export) or a .tflite, which keep the "
            "computation without the Python code"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    if "Lambda" in first or "arbitrary code" in first:
        return ModelRejected(
            f"{path.name}: expected layers without Python code; found a Lambda layer (refused in safe mode)"
        )
    return ModelRejected(f"{path.name}: expected a Keras 3 model file; Keras says: {first[:300]}")


def custom_keras_classes(path: Path) -> list[str]:
    """Classes and functions named in a .keras file's config.json that Keras could only find in code it never
    imports (the uploader's own registered names or modules). Read from the checked archive; nothing runs."""
    config = _keras_config(path)
    if config is None:
        return []
    import keras

    registered = keras.saving.get_custom_objects()
    return sorted({name for name, module in _object_references(config)
                   if not _keras_can_find(keras, registered, name, module)})


def _keras_config(path: Path) -> Any:
    """The parsed config.json of a .keras archive, or None (not a safe zip, no config, over 64 MiB, not JSON)."""
    try:
        info = next((m for m in check_zip(path) if m.orig_filename == "config.json"), None)
        if info is None or info.file_size > _KERAS_CONFIG_MAX_BYTES:
            return None
        with zipfile.ZipFile(path) as archive, archive.open(info) as handle:
            raw = handle.read(_KERAS_CONFIG_MAX_BYTES + 1)  # the header's size may lie
        return json.loads(raw) if len(raw) <= _KERAS_CONFIG_MAX_BYTES else None
    except (UnsafeArchive, zipfile.BadZipFile, OSError, ValueError, RecursionError):
        return None


def _object_references(config: Any) -> Iterator[tuple[str, str | None]]:
    """(name, module) of every class or function a Keras 3 config refers to: the registered name when there
    is one, a function's own name, else the class name. Tensors, lambdas and other ``__special__`` entries are
    not references to code."""
    pending = [config]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
        if not isinstance(value, dict):
            continue
        pending.extend(value.values())
        class_name, module = value.get("class_name"), value.get("module")
        if not isinstance(class_name, str) or "config" not in value or "module" not in value:
            continue
        module = module if isinstance(module, str) else None
        if class_name == "function" and isinstance(value["config"], str):
            yield value["config"], module
        elif class_name != "function" and not class_name.startswith("__"):
            registered = value.get("registered_name")
            yield (registered if isinstance(registered, str) and registered else class_name), module


def _keras_can_find(keras: Any, registered: dict[str, Any], name: str, module: str | None) -> bool:
    """Whether Keras resolves a reference without importing the uploader's code (mirrors its lookup order)."""
    if name in registered:
        return True
    if module is None:  # registered in the saving process only
        return False
    if module == "builtins":  # a function saved by bare name: Keras searches its own modules
        return any(hasattr(getattr(keras, part), name) for part in _KERAS_FUNCTION_MODULES)
    return module.split(".", 1)[0] in _KERAS_PACKAGES


def _keras_summary(model: Any) -> dict[str, Any]:
    def tensor(t: Any) -> dict[str, Any]:
        return {"name": str(getattr(t, "name", "")), "shape": list(t.shape), "dtype": str(t.dtype)}

    # Outputs are named after their layers (Keras names the tensors keras_tensor_N); the exported signature
    # keys them output_0, output_1, ... in this order, which optimizer.tensors.bind maps back.
    # A model built with a dict of outputs is exported (and flattened, in sorted key order) by those keys.
    structure = getattr(model, "_outputs_struct", None)
    names = (sorted(structure) if isinstance(structure, dict)
             else [t._keras_history.operation.name for t in model.outputs])  # noqa: SLF001 - the output layer
    return {
        "inputs": [tensor(t) for t in model.inputs],
        "outputs": [{**tensor(t), "name": name} for t, name in zip(model.outputs, names, strict=True)],
        "parameter_count": int(model.count_params()),
        "layers": [{"name": layer.name, "type": type(layer).__name__} for layer in model.layers],
        "model_class": type(model).__name__,
    }


def choose_signature(available: Sequence[str], requested: str | None, where: str) -> str:
    """The signature a model is used through: the one asked for, else serving_default, else the only one.
    Several without a serving_default are refused rather than guessed."""
    names = sorted(available)
    if requested is not None:
        if requested not in names:
            raise ModelRejected(f"{where}: expected a signature named {requested!r}; found {names or 'none'}")
        return requested
    if DEFAULT_SIGNATURE in names:
        return DEFAULT_SIGNATURE
    if len(names) == 1:
        return names[0]
    raise ModelRejected(f"{where}: expected a {DEFAULT_SIGNATURE!r} signature or a single one; found {names or 'none'} "
                        "(name the one to use with the signature option)")


def _variable_count(loaded: Any) -> int:
    """Total size of a loaded SavedModel's variables, each counted once. A Keras export lists them in
    ``variables`` (its object graph holds each twice, also under ``_all_variables``); a plain tf.Module keeps
    no such list, so its object graph is walked."""
    import tensorflow as tf

    listed = getattr(loaded, "variables", None)
    found = listed if isinstance(listed, Sequence) and listed else tf.train.TrackableView(loaded).descendants()
    unique = {id(v): v for v in found if isinstance(v, tf.Variable)}
    return sum(int(v.shape.num_elements() or 0) for v in unique.values())


def _saved_model_summary(directory: Path, signature: str | None = None) -> dict[str, Any]:
    """The chosen signature's inputs and outputs (by its keys), every signature's name, and the variables' size."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    signatures = dict(loaded.signatures)
    chosen = choose_signature(list(signatures), signature, "SavedModel .zip")
    function = signatures[chosen]
    inputs = [{"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}
              for name, spec in function.structured_input_signature[1].items()]
    outputs = [{"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}
               for name, spec in function.structured_outputs.items()]
    return {"inputs": inputs, "outputs": outputs, "parameter_count": _variable_count(loaded),
            "layers": [{"name": chosen, "type": "signature"}], "signature": chosen, "signatures": sorted(signatures)}


def load_checked(path: Path, workdir: Path, signature: str | None = None) -> tuple[dict[str, Any], Any]:
    """Check, load (safely) and summarise an upload (of ``signature``, for a SavedModel with several); returns
    the summary and what conversion starts from: the Keras model, the audited SavedModel folder, or ``None``
    for a .tflite."""
    fmt = check_model_file(path)
    loaded: Any = None
    if fmt is ModelFormat.TFLITE:
        from optimizer.measure.runtime import describe

        summary = describe(path, signature)
    elif fmt is ModelFormat.SAVED_MODEL_ZIP:
        loaded = prepare_saved_model(path, workdir)
        summary = _saved_model_summary(loaded, signature)
    else:
        if signature is not None:
            raise ModelRejected(f"{path.name}: expected no signature for a Keras model (signatures belong to "
                                f"SavedModels and .tflite files); found signature {signature!r}")
        loaded = load_keras(path)
        summary = _keras_summary(loaded)
    if not summary["inputs"] or not summary["outputs"]:
        raise ModelRejected(f"{path.name}: expected a model with at least one input and one output; found "
                            f"{len(summary['inputs'])} input(s) and {len(summary['outputs'])} output(s)")
    groups = [[t["name"] for t in summary[group]] for group in ("inputs", "outputs")]
    repeated = sorted({n for names in groups for n in names if names.count(n) > 1})
    if repeated:
        raise ModelRejected(f"{path.name}: expected distinct input and output names (data is matched by name); "
                            f"found {repeated} more than once")
    summary = {"file_name": path.name, "format": fmt.value, "source": source_of(fmt).value,
               "file_size_bytes": path.stat().st_size, "sha256": file_sha256(path), **summary}
    return summary, loaded


def inspect_model(path: Path, workdir: Path, signature: str | None = None) -> dict[str, Any]:
    """Summary of an upload: format, inputs/outputs, parameters, layers or ops, file size and hash."""
    return load_checked(path, workdir, signature)[0]


def inspect_task(payload: dict[str, Any], report: Any) -> dict[str, Any]:
    """Worker task: the summary of one upload (see :class:`optimizer.records.InspectPayload`)."""
    from optimizer.records import InspectPayload

    job = InspectPayload.from_dict(payload)
    return inspect_model(Path(job.model_path), Path(job.workdir), job.signature)
