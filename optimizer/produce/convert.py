"""Model -> .tflite bytes, one function per variant kind, chosen from a table (runs in a worker).

The TensorFlow model is exported to a SavedModel once and every variant is converted from that export
(tracing and freezing dominate conversion time). Float .tflite uploads go through ai-edge-quantizer.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from optimizer import tensors
from optimizer.errors import VariantFailed
from optimizer.intake.model import ModelFormat, load_checked
from optimizer.produce.calibration import Dataset, representative_dataset, representative_samples
from optimizer.produce.outcomes import Produced, produce_each
from optimizer.records import InspectPayload, ProducePayload
from optimizer.tensors import Arrays, bind, sample_count
from optimizer.variants import KINDS, VariantKind, VariantSpec


@functools.cache
def _loaded_converter(saved_model_dir: str, signature: str | None) -> Any:
    import tensorflow as tf

    keys = [signature] if signature else None
    return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=keys)


def saved_model_converter(saved_model_dir: Path | str, signature: str | None = None) -> Any:
    """A converter for one variant, of the SavedModel's ``signature`` (None: serving_default). Loading the
    SavedModel costs ~1.5 s on MobileNetV2, so it is loaded once per worker and each variant gets a shallow copy
    with its own target_spec (the only mutable setting a configurator changes in place); the bytes are
    identical to a fresh converter's (checked on all six kinds)."""
    converter = copy.copy(_loaded_converter(str(saved_model_dir), signature))
    converter.target_spec = copy.deepcopy(converter.target_spec)
    return converter


class _Memo:
    """Results of a pure function of its arguments, found by equality (protos and bytes compare by value)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.entries: list[tuple[tuple[Any, ...], dict[str, Any], Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for seen_args, seen_kwargs, result in self.entries:
            try:
                same = bool(seen_args == args and seen_kwargs == kwargs)
            except (TypeError, ValueError):  # e.g. arrays, whose == is elementwise: never reuse then
                same = False
            if same:
                return result
        result = self.function(*args, **kwargs)
        self.entries.append((args, kwargs, result))
        return result


@contextlib.contextmanager
def _converter_steps_done_once() -> Iterator[None]:
    """``TFLiteConverter.convert()`` repeats three costly steps that depend only on their inputs: it reloads
    the whole SavedModel with ``tf.saved_model.load`` (about 2 s on MobileNetV2) just to read its debug info,
    converts the graph to a float flatbuffer (int8 and int8 I/O ask for exactly the same one), and calibrates
    that flatbuffer (again the same for both). Within one conversion worker each is done once per distinct
    input and reused; the bytes are a fresh converter's (every kind checked in
    tests/integration/test_post_training.py)."""
    from tensorflow.lite.python import lite
    from tensorflow.lite.python.optimize import calibrator

    if not (hasattr(lite, "_load") and hasattr(lite, "_convert_saved_model") and hasattr(calibrator, "Calibrator")):
        yield  # another TensorFlow version: convert without the reuse
        return
    originals = {"load": lite._load, "convert": lite._convert_saved_model,  # noqa: SLF001
                 "calibrate": calibrator.Calibrator.calibrate}
    load, convert_saved_model = _Memo(originals["load"]), _Memo(originals["convert"])
    calibrated = _Memo(lambda model, dataset_gen: originals["calibrate"](calibrator.Calibrator(model), dataset_gen))

    def calibrate(self: Any, dataset_gen: Any) -> Any:
        return calibrated(bytes(self._model_content), dataset_gen)  # noqa: SLF001

    lite._load, lite._convert_saved_model = load, convert_saved_model  # noqa: SLF001
    calibrator.Calibrator.calibrate = calibrate
    try:
        yield
    finally:
        lite._load, lite._convert_saved_model = originals["load"], originals["convert"]  # noqa: SLF001
        calibrator.Calibrator.calibrate = originals["calibrate"]


def _aeq_recipe(kind: str) -> Any:
    from ai_edge_quantizer import recipe

    name = KINDS[kind].aeq_recipe
    if name is None:
        raise VariantFailed(f"kind {kind} has no ai-edge-quantizer recipe")
    return getattr(recipe, name)()


def quantize_tflite(float_model: Path, kind: str, samples: Arrays | None,
                    validation: Arrays | None = None) -> tuple[bytes, list[dict[str, Any]]]:
    """Apply an ai-edge-quantizer recipe to a float .tflite (no TensorFlow involved), then compare every
    tensor of the result with the float model on ``validation`` inputs (MSE and SNR per tensor). Samples are
    fed by input name to the file's signature."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer.utils.validation_utils import ValidationErrorMetric

    from optimizer.measure.runtime import ModelIO, load_interpreter

    engine = quantizer.Quantizer(str(float_model))
    engine.load_quantization_recipe(_aeq_recipe(kind))
    model_io = ModelIO.open(load_interpreter(float_model))
    key = model_io.key or "serving_default"

    def feeds(arrays: Arrays, count: int) -> list[dict[str, np.ndarray]]:
        bound = bind(list(arrays), list(model_io.inputs), "inputs")
        return [{bound[name]: array[i:i + 1] for name, array in arrays.items()}
                for i in range(min(count, sample_count(arrays)))]

    calibration = None
    if engine.need_calibration:
        assert samples is not None
        calibration = engine.calibrate({key: feeds(samples, sample_count(samples))})
    result = engine.quantize(calibration)
    if result.quantized_model is None:
        raise VariantFailed("ai-edge-quantizer returned no model")
    per_tensor: list[dict[str, Any]] = []
    if validation:
        compared = engine.validate({key: feeds(validation, 8)},
                                   error_metrics=[ValidationErrorMetric.MSE, ValidationErrorMetric.SNR],
                                   num_threads=1).get_signature_comparison_result(key)
        for group in ("intermediate_tensors", "output_tensors", "constant_tensors"):
            for name, metrics in getattr(compared, group).items():
                per_tensor.append({"tensor": name, "kind": group.removesuffix("_tensors"),
                                   **{str(k): float(v) for k, v in metrics.items()}})
        per_tensor.sort(key=lambda row: row.get("snr", float("inf")))
        for rank, row in enumerate(per_tensor, start=1):
            row["sensitivity_rank"] = rank
    return bytes(result.quantized_model), per_tensor


# Layers whose export with a variable batch size the converter may refuse (TensorListReserve needs a static
# element shape): a model with one is checked once and exported with a fixed batch of 1 if it must.
_RECURRENT = {"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}


def _layer_types(model: Any) -> set[str]:
    """The class names of every layer, nested models included."""
    found: set[str] = set()
    for layer in getattr(model, "layers", []):
        found.add(type(layer).__name__)
        found |= _layer_types(layer)
    return found


def _export(model: Any, export_dir: Path, fixed_batch: int | None) -> None:
    import tensorflow as tf

    shutil.rmtree(export_dir, ignore_errors=True)
    kwargs: dict[str, Any] = {}
    if fixed_batch is not None:
        specs = [tf.TensorSpec((fixed_batch, *t.shape[1:]), t.dtype, name=t.name) for t in model.inputs]
        kwargs["input_signature"] = specs if len(specs) == 1 else [specs]
    try:
        model.export(str(export_dir), format="tf_saved_model", verbose=False, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise VariantFailed(f"exporting the model for conversion failed: {str(exc).splitlines()[0][:300]}") from None


def export_model(model: Any, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """Export a loaded Keras model once to a SavedModel; every variant is converted from it. A recurrent model
    whose variable-batch export does not convert is exported with a fixed batch of 1 (and the facts say so)."""
    export_dir = workdir / "export"
    _export(model, export_dir, None)
    if not _layer_types(model) & _RECURRENT:
        return export_dir, {"export_batch": "variable"}
    try:
        _loaded_converter.cache_clear()
        saved_model_converter(export_dir).convert()
        return export_dir, {"export_batch": "variable"}
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; the reason is recorded
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    _export(model, export_dir, 1)
    _loaded_converter.cache_clear()
    return export_dir, {"export_batch": 1, "export_note": "exported with a fixed batch of 1: the converter refused "
                                                          f"the variable batch size of this recurrent model ({reason})"}


def prepare_task(payload: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Load and summarise a TensorFlow model and report the summary at once (the caller checks the data
    meanwhile), export it, then convert the share of variants the caller sends as a second message on
    stdin (none if it closes the channel). One TensorFlow import serves inspection, export and conversion."""
    job = InspectPayload.from_dict(payload)
    model_path, workdir = Path(job.model_path), Path(job.workdir)
    summary, loaded = load_checked(model_path, workdir, job.signature)
    report({"stage": "inspected", "summary": summary})
    report({"stage": "exporting"})
    started = time.perf_counter()
    export_dir, facts = (loaded, {}) if isinstance(loaded, Path) else export_model(loaded, workdir)
    export_s = round(time.perf_counter() - started, 3)
    report({"stage": "exported", "export_dir": str(export_dir), "export_s": export_s, "export": facts})
    line = sys.stdin.readline()
    outcomes = convert_task({**json.loads(line), "export_dir": str(export_dir)}, report) if line.strip() else []
    return {"summary": summary, "export_dir": str(export_dir), "export_s": export_s, "outcomes": outcomes}


def convert_one(spec: VariantSpec, job: ProducePayload, calibration: Arrays | None,
                datasets: dict[int, Dataset]) -> tuple[bytes, dict[str, Any]]:
    """The variant's bytes, and extra facts for its row (ai-edge-quantizer's per-tensor comparison).
    ``datasets`` keeps one representative-dataset generator per sample count, so variants calibrated on the
    same samples hand the converter the same generator and share its calibration."""
    samples, dataset = None, None
    if spec.info.needs_calibration:
        count = int(spec.options["calibration_samples"])
        samples = representative_samples(calibration, count)
        dataset = datasets.setdefault(count, representative_dataset(samples))
    model_path = Path(job.model_path)
    if ModelFormat(job.format) is ModelFormat.TFLITE:
        if spec.kind is VariantKind.FLOAT32:
            return model_path.read_bytes(), {}
        content, per_tensor = quantize_tflite(model_path, spec.kind, samples, calibration)
        return content, ({"analysis": {"per_tensor": per_tensor}} if per_tensor else {})
    assert job.export_dir is not None
    settings = spec.info.converter
    if settings is None:
        raise VariantFailed(f"kind {spec.kind} has no converter settings")
    converter = saved_model_converter(job.export_dir, job.signature if job.format == "saved_model_zip" else None)
    settings.apply(converter, dataset)
    return bytes(converter.convert()), {}


def convert_task(payload: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """Convert each requested variant from the export (or the float .tflite)."""
    job = ProducePayload.from_dict(payload)
    calibration = tensors.load(job.calibration) or None
    datasets: dict[int, Dataset] = {}

    def produce(spec: VariantSpec) -> Produced:
        content, extra = convert_one(spec, job, calibration, datasets)
        return content, extra, None

    with _converter_steps_done_once() if job.export_dir is not None else contextlib.nullcontext():
        return produce_each((VariantSpec.from_dict(d) for d in job.specs), Path(job.out_dir), produce, report,
                            "converter error")
