"""Where int8 loses accuracy, and what to do about it (runs in a worker; imports TensorFlow).

- Per-layer error of full-int8 quantization on the calibration data with TensorFlow Lite's quantization
  debugger: RMSE, RMSE divided by the quantization scale, mean error and range, ranked by sensitivity.
- Selective quantization: keep the k most sensitive layers in float (the debugger's deny-list) and int8
  elsewhere; k grows until the accuracy drop against float32 is within the budget or the cap is reached.
- Calibration study: full-int8 accuracy against the calibration set's size and seed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from optimizer import tensors
from optimizer.errors import VariantFailed
from optimizer.measure.evaluate import accuracy
from optimizer.produce.calibration import representative_dataset as _dataset
from optimizer.records import ProducePayload
from optimizer.tensors import Arrays, pick, sample_count, take
from optimizer.variants import INT8, VariantSpec

# Uniform quantization noise has RMSE = scale / sqrt(12); layers far above that are flagged.
NOISE_RMSE_PER_SCALE = 1 / np.sqrt(12)
FLAG_FACTOR = 2.0
DEBUG_SAMPLES = 64
STUDY_SIZES = (8, 32, 128)
STUDY_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Scoring:
    """How a candidate is judged: the exported model (and signature) to convert, the evaluation inputs by name,
    the model's tensor names, and the labels of the output the accuracy budget applies to."""

    export_dir: str
    signature: str | None
    x_eval: Arrays
    input_names: list[str]
    output_names: list[str]
    output: str
    y_eval: np.ndarray
    debug_order: tuple[str, ...] = ()  # input names in the float file's input order: the debugger feeds by position

    def debug_dataset(self, samples: Arrays) -> Callable[[], Iterator[list[np.ndarray]]]:
        """The debugger's dataset: one sample at a time, as a list in the file's input order."""
        order = self.debug_order or tuple(samples)

        def generator() -> Iterator[list[np.ndarray]]:
            for i in range(sample_count(samples)):
                yield [samples[name][i:i + 1] for name in order]

        return generator

    def accuracy(self, content: bytes, path: Path) -> float:
        from optimizer.measure.runtime import predict

        path.write_bytes(content)
        outputs = predict(path, self.x_eval, self.input_names, self.output_names)
        return accuracy(outputs[self.output], self.y_eval)


def _float_converter(scoring: Scoring) -> Any:
    """A fresh converter of the export (the debugger changes the converter it is given)."""
    import tensorflow as tf

    keys = [scoring.signature] if scoring.signature else None
    return tf.lite.TFLiteConverter.from_saved_model(scoring.export_dir, signature_keys=keys)


def _int8_converter(scoring: Scoring, samples: Arrays) -> Any:
    converter = _float_converter(scoring)
    INT8.apply(converter, _dataset(samples))
    return converter


def layer_errors(scoring: Scoring, samples: Arrays) -> list[dict[str, Any]]:
    """One row per quantized layer, in graph order, from the quantization debugger."""
    import pandas as pd
    import tensorflow as tf

    debug = take(samples, 0, DEBUG_SAMPLES)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=_int8_converter(scoring, debug),
                                                         debug_dataset=scoring.debug_dataset(debug))
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    table = pd.read_csv(io.StringIO(buffer.getvalue()))
    table["range"] = 255.0 * table["scale"]
    table["rmse"] = np.sqrt(table["mean_squared_error"])
    table["rmse_per_scale"] = table["rmse"] / table["scale"]
    table["flagged"] = table["rmse_per_scale"] > FLAG_FACTOR * NOISE_RMSE_PER_SCALE
    table["graph_order"] = range(len(table))
    columns = ["graph_order", "op_name", "tensor_name", "rmse", "rmse_per_scale", "mean_error", "range",
               "scale", "zero_point", "num_elements", "flagged"]
    table = table[[c for c in columns if c in table.columns]]
    order = table["rmse_per_scale"].rank(ascending=False, method="first").astype(int)
    table.insert(1, "sensitivity_rank", order)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in table.to_dict("records")]


def selective_model(scoring: Scoring, samples: Arrays, float_layers: list[str]) -> bytes:
    """int8 everywhere except the named layers (tensor names from the debugger), which stay float."""
    import tensorflow as tf

    debug = take(samples, 0, DEBUG_SAMPLES)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_layers)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=_int8_converter(scoring, samples),
                                                         debug_dataset=scoring.debug_dataset(debug),
                                                         debug_options=options)
    return bytes(debugger.get_nondebug_quantized_model())


def search(scoring: Scoring, calibration: Arrays, float_accuracy: float, ranked: list[dict[str, Any]], budget: float,
           cap: int, scratch: Path, report: Callable[[dict[str, Any]], None], name: str) -> dict[str, Any]:
    """Grow the float set by sensitivity until accuracy is within ``budget`` of float32 or ``cap`` is hit."""
    order = [row["tensor_name"] for row in sorted(ranked, key=lambda r: r["sensitivity_rank"])]
    curve: list[dict[str, Any]] = []
    chosen = None
    for k in range(0, min(cap, len(order)) + 1):
        report({"stage": "searching", "variant": name, "epoch": k, "epochs": min(cap, len(order))})
        content = selective_model(scoring, calibration, order[:k])
        path = scratch / f"{name}-k{k}.tflite"
        candidate_accuracy = scoring.accuracy(content, path)
        curve.append({"float_layers": k, "layers": order[:k], "accuracy": candidate_accuracy,
                      "accuracy_drop": float_accuracy - candidate_accuracy, "size_bytes": len(content),
                      "path": str(path)})
        if float_accuracy - candidate_accuracy <= budget:
            chosen = curve[-1]
            break
    best_drop = min(float(c["accuracy_drop"]) for c in curve) * 100
    reason = None if chosen else (f"no choice of up to {min(cap, len(order))} float layers brings the drop within "
                                  f"{budget * 100:.2f} points (best drop {best_drop:.2f})")
    return {"curve": curve, "chosen": chosen, "reason": reason, "budget": budget, "cap": cap,
            "output": scoring.output}


def calibration_study(scoring: Scoring, calibration: Arrays, scratch: Path, report: Callable[[dict[str, Any]], None],
                      name: str) -> list[dict[str, Any]]:
    """Full-int8 accuracy for calibration sets of 8, 32, 128 and all samples, each size with three seeds."""
    count = sample_count(calibration)
    sizes = [s for s in STUDY_SIZES if s < count] + [count]
    points: list[dict[str, Any]] = []
    for size in sizes:
        for seed in (STUDY_SEEDS if size < count else (0,)):
            report({"stage": "calibration study", "variant": name, "epoch": len(points) + 1})
            picked = pick(calibration, np.random.default_rng(seed).permutation(count)[:size])
            content = bytes(_int8_converter(scoring, picked).convert())
            points.append({"calibration_samples": size, "seed": seed,
                           "accuracy": scoring.accuracy(content, scratch / f"study-{size}-{seed}.tflite")})
    return points


def _scoring(job: ProducePayload, export_dir: str) -> Scoring:
    """What the search judges candidates by: the accuracy of the run's accuracy output (a classification
    output with labels), by name."""
    from optimizer.intake.model import load_checked

    output = job.accuracy_output
    if not job.calibration or not job.evaluation or output is None or output not in job.evaluation_labels:
        raise VariantFailed("the selective search needs calibration data and labelled evaluation data; found none")
    if job.tasks.get(output) != "classification":
        raise VariantFailed(f"the selective search needs a classification output; output {output!r} is "
                            f"{job.tasks.get(output)}")
    summary, _ = load_checked(Path(job.model_path), Path(job.workdir), job.signature)
    return Scoring(export_dir=export_dir, signature=job.signature if job.format == "saved_model_zip" else None,
                   x_eval=tensors.load(job.evaluation), input_names=[t["name"] for t in summary["inputs"]],
                   output_names=[t["name"] for t in summary["outputs"]], output=output,
                   y_eval=np.load(job.evaluation_labels[output], allow_pickle=False))


def _export_dir(job: ProducePayload, scratch: Path) -> str:
    if job.export_dir:
        return job.export_dir
    from optimizer.intake.model import load_checked
    from optimizer.produce.convert import export_model

    _, loaded = load_checked(Path(job.model_path), Path(job.workdir), job.signature)
    return str(loaded if isinstance(loaded, Path) else export_model(loaded, scratch)[0])


def diagnose_task(payload: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """Worker task for the mixed-precision kind: per-layer errors, the search, the calibration study."""
    from optimizer.measure.runtime import positional_order
    from optimizer.produce.outcomes import Produced, produce_each

    job = ProducePayload.from_dict(payload)
    scratch = Path(job.workdir) / "diagnosis"
    scratch.mkdir(parents=True, exist_ok=True)

    def produce(spec: VariantSpec) -> Produced:
        scoring = _scoring(job, _export_dir(job, scratch))
        all_calibration = tensors.load(job.calibration)
        calibration = take(all_calibration, 0, int(spec.options["calibration_samples"]))
        float_content = bytes(_float_converter(scoring).convert())
        float_accuracy = scoring.accuracy(float_content, scratch / "float32.tflite")
        scoring = replace(scoring, debug_order=tuple(positional_order(scratch / "float32.tflite",
                                                                      scoring.input_names)))
        layers = layer_errors(scoring, calibration)
        found = search(scoring, calibration, float_accuracy, layers, float(spec.options["accuracy_budget"]) / 100,
                       int(spec.options["max_float_layers"]), scratch, report, spec.name)
        study = (calibration_study(scoring, all_calibration, scratch, report, spec.name)
                 if spec.options["calibration_study"] else [])
        best = found["chosen"] or min(found["curve"], key=lambda c: c["accuracy_drop"])
        analysis = {"float_accuracy": float_accuracy, "layers": layers, "search": found,
                    "calibration_study": study, "float_layers": best["layers"], "output": scoring.output}
        extra = {"analysis": analysis, "float_layers": len(best["layers"]),
                 "search_met_budget": found["chosen"] is not None}
        return Path(best["path"]).read_bytes(), extra, None

    return produce_each((VariantSpec.from_dict(d) for d in job.specs), Path(job.out_dir), produce, report,
                        "diagnosis error")

