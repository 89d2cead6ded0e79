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

from optimizer.errors import VariantFailed
from optimizer.intake import ModelFormat, load_checked
from optimizer.outcomes import Produced, produce_each
from optimizer.variants import VariantKind, VariantSpec


def representative_samples(calibration: np.ndarray | None, count: int) -> np.ndarray:
    if calibration is None or len(calibration) == 0:
        raise VariantFailed("needs calibration data; none was given (provide --data or --calib)")
    return calibration[:count].astype(np.float32, copy=False)


def _representative_dataset(samples: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    def generator() -> Iterator[list[np.ndarray]]:
        for i in range(len(samples)):
            yield [samples[i:i + 1]]  # each sample with its batch dimension, float32

    return generator


@functools.cache
def _loaded_converter(saved_model_dir: str) -> Any:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)


def _tf_converter(saved_model_dir: Path) -> Any:
    """A converter for one variant. Loading the SavedModel costs ~1.5 s on MobileNetV2, so it is loaded once
    per worker and each variant gets a shallow copy with its own target_spec (the only mutable setting a
    configurator changes in place); the bytes are identical to a fresh converter's (checked on all six kinds)."""
    converter = copy.copy(_loaded_converter(str(saved_model_dir)))
    converter.target_spec = copy.deepcopy(converter.target_spec)
    return converter


@contextlib.contextmanager
def _saved_model_loaded_once() -> Iterator[None]:
    """``TFLiteConverter.convert()`` reloads the whole SavedModel with ``tf.saved_model.load`` on every call
    (about 2 s on MobileNetV2) only to read its graph debug info. Within one conversion worker the export
    never changes, so it is loaded once for all its variants; the bytes are those of a fresh converter per
    variant (checked for every kind in tests/integration/test_post_training.py)."""
    from tensorflow.lite.python import lite

    original = lite._load  # noqa: SLF001
    loaded: dict[tuple[str, tuple[str, ...]], Any] = {}

    def load_once(export_dir: Any, tags: Any = None) -> Any:
        key = (str(export_dir), tuple(sorted(tags or ())))
        if key not in loaded:
            loaded[key] = original(export_dir, tags)
        return loaded[key]

    lite._load = load_once  # noqa: SLF001
    try:
        yield
    finally:
        lite._load = original  # noqa: SLF001


def _float32(conv: Any, samples: np.ndarray | None) -> None:
    pass


def _float16(conv: Any, samples: np.ndarray | None) -> None:
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]


def _dynamic_range(conv: Any, samples: np.ndarray | None) -> None:
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(conv: Any, samples: np.ndarray | None) -> None:
    import tensorflow as tf

    assert samples is not None
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = _representative_dataset(samples)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _int8_io(conv: Any, samples: np.ndarray | None) -> None:
    import tensorflow as tf

    _int8(conv, samples)
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8


def _int16x8(conv: Any, samples: np.ndarray | None) -> None:
    import tensorflow as tf

    assert samples is not None
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = _representative_dataset(samples)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    # With the default (MLIR) quantizer on, TF 2.21 calibrates once for it and then calibrates again in the
    # quantizer int16x8 actually uses; switching it off skips the first pass. Same bytes, ~2.5 s less on
    # MobileNetV2 (checked in tests/integration/test_post_training.py).
    conv.experimental_new_quantizer = False


TF_CONFIGURATORS: dict[VariantKind, Callable[[Any, np.ndarray | None], None]] = {
    VariantKind.FLOAT32: _float32,
    VariantKind.FLOAT16: _float16,
    VariantKind.DYNAMIC_RANGE: _dynamic_range,
    VariantKind.INT8: _int8,
    VariantKind.INT8_IO: _int8_io,
    VariantKind.INT16X8: _int16x8,
}


def _aeq_recipe(kind: VariantKind) -> Any:
    from ai_edge_quantizer import recipe

    return {
        VariantKind.AEQ_DYNAMIC_INT8: recipe.dynamic_wi8_afp32,
        VariantKind.AEQ_WEIGHT_ONLY_INT8: recipe.weight_only_wi8_afp32,
        VariantKind.AEQ_STATIC_INT8: recipe.static_wi8_ai8,
    }[kind]()


def quantize_tflite(float_model: Path, kind: VariantKind, samples: np.ndarray | None,
                    validation: np.ndarray | None = None) -> tuple[bytes, list[dict[str, Any]]]:
    """Apply an ai-edge-quantizer recipe to a float .tflite (no TensorFlow involved), then compare every
    tensor of the result with the float model on ``validation`` inputs (MSE and SNR per tensor)."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer.utils.validation_utils import ValidationErrorMetric

    from optimizer.runtime import load_interpreter

    engine = quantizer.Quantizer(str(float_model))
    engine.load_quantization_recipe(_aeq_recipe(kind))
    input_name = next(iter(load_interpreter(float_model).get_signature_list()["serving_default"]["inputs"]))
    calibration = None
    if engine.need_calibration:
        assert samples is not None
        data = [{input_name: samples[i:i + 1]} for i in range(len(samples))]
        calibration = engine.calibrate({"serving_default": data})
    result = engine.quantize(calibration)
    if result.quantized_model is None:
        raise VariantFailed("ai-edge-quantizer returned no model")
    per_tensor: list[dict[str, Any]] = []
    if validation is not None and len(validation):
        test = {"serving_default": [{input_name: validation[i:i + 1]} for i in range(min(8, len(validation)))]}
        compared = engine.validate(test, error_metrics=[ValidationErrorMetric.MSE, ValidationErrorMetric.SNR],
                                   num_threads=1).get_signature_comparison_result("serving_default")
        for group in ("intermediate_tensors", "output_tensors", "constant_tensors"):
            for name, metrics in getattr(compared, group).items():
                per_tensor.append({"tensor": name, "kind": group.removesuffix("_tensors"),
                                   **{str(k): float(v) for k, v in metrics.items()}})
        per_tensor.sort(key=lambda row: row.get("snr", float("inf")))
        for rank, row in enumerate(per_tensor, start=1):
            row["sensitivity_rank"] = rank
    return bytes(result.quantized_model), per_tensor


def export_model(model: Any, workdir: Path) -> Path:
    """Export a loaded Keras model once to a SavedModel; every variant is converted from it."""
    export_dir = workdir / "export"
    shutil.rmtree(export_dir, ignore_errors=True)
    try:
        model.export(str(export_dir), format="tf_saved_model", verbose=False)
    except Exception as exc:  # noqa: BLE001
        raise VariantFailed(f"exporting the model for conversion failed: {str(exc).splitlines()[0][:300]}") from None
    return export_dir


def prepare_task(payload: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Load and summarise a TensorFlow model and report the summary at once (the caller checks the data
    meanwhile), export it, then convert the share of variants the caller sends as a second message on
    stdin (none if it closes the channel). One TensorFlow import serves inspection, export and conversion."""
    model_path, workdir = Path(payload["model_path"]), Path(payload["workdir"])
    summary, loaded = load_checked(model_path, workdir)
    report({"stage": "inspected", "summary": summary})
    report({"stage": "exporting"})
    started = time.perf_counter()
    export_dir = loaded if isinstance(loaded, Path) else export_model(loaded, workdir)
    export_s = round(time.perf_counter() - started, 3)
    report({"stage": "exported", "export_dir": str(export_dir), "export_s": export_s})
    line = sys.stdin.readline()
    outcomes = convert_task({**json.loads(line), "export_dir": str(export_dir)}, report) if line.strip() else []
    return {"summary": summary, "export_dir": str(export_dir), "export_s": export_s, "outcomes": outcomes}


def convert_one(spec: VariantSpec, fmt: ModelFormat, model_path: Path, export_dir: Path | None,
                calibration: np.ndarray | None) -> tuple[bytes, dict[str, Any]]:
    """The variant's bytes, and extra facts for its row (ai-edge-quantizer's per-tensor comparison)."""
    samples = None
    if spec.info.needs_calibration:
        samples = representative_samples(calibration, int(spec.options["calibration_samples"]))
    if fmt is ModelFormat.TFLITE:
        if spec.kind is VariantKind.FLOAT32:
            return model_path.read_bytes(), {}
        content, per_tensor = quantize_tflite(model_path, spec.kind, samples, calibration)
        return content, ({"analysis": {"per_tensor": per_tensor}} if per_tensor else {})
    assert export_dir is not None
    converter = _tf_converter(export_dir)
    TF_CONFIGURATORS[spec.kind](converter, samples)
    return bytes(converter.convert()), {}


def convert_task(payload: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """Convert each requested variant from the export (or the float .tflite)."""
    model_path = Path(payload["model_path"])
    fmt = ModelFormat(payload["format"])
    export_dir = Path(payload["export_dir"]) if payload.get("export_dir") else None
    calib_path = payload.get("calibration_path")
    calibration = np.load(calib_path, allow_pickle=False) if calib_path else None

    def produce(spec: VariantSpec) -> Produced:
        content, extra = convert_one(spec, fmt, model_path, export_dir, calibration)
        return content, extra, None

    with _saved_model_loaded_once() if export_dir is not None else contextlib.nullcontext():
        return produce_each((VariantSpec.from_dict(d) for d in payload["specs"]), Path(payload["out_dir"]),
                            produce, report, "converter error")
