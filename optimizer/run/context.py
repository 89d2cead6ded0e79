"""What the steps of one run share (folders, data, options, the result rows being filled) and the measuring
of one variant: sizes, op audit, accuracy and fidelity in a LiteRT worker, then latency and memory."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.errors import OptimizerError
from optimizer.measure.benchmark import file_sizes
from optimizer.measure.evaluate import Task
from optimizer.records import (
    BenchmarkPayload,
    DataReport,
    EvaluatePayload,
    ModelSummary,
    ProgressEvent,
    RunLayout,
    Stage,
)
from optimizer.run.isolation import Spares, run_task
from optimizer.run.options import RunOptions
from optimizer.run.rows import VariantRow
from optimizer.variants import VariantKind, VariantSpec

ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class RunContext:
    """What the stages of one run share: folders, data, options and the result rows being filled."""

    layout: RunLayout
    options: RunOptions
    model: ModelSummary
    data: DataReport
    tasks: dict[str, Task]  # labelled output name -> its task
    rows: dict[str, VariantRow]
    progress: ProgressCallback
    cancel: threading.Event | None
    model_file: str = ""
    model_format: str = ""
    reference_path: str | None = None
    saved_model_dir: str | None = None
    spares: dict[str, Spares] = field(default_factory=dict)  # evaluate / benchmark workers started ahead
    accuracy_output: str | None = None  # the labelled output whose metric is each row's accuracy

    @property
    def headline_output(self) -> str:
        """The output whose metrics and fidelity are each row's headline columns (accuracy, mae, fidelity_*)."""
        return self.accuracy_output or self.model.output_names[0]

    def report(self, event: ProgressEvent | dict[str, Any]) -> None:
        """Pass a progress event on, typed (workers send theirs as JSON dicts)."""
        self.progress(event if isinstance(event, ProgressEvent) else ProgressEvent.from_dict(event))

    def start_spares(self, task: str, expected: int, ahead: int) -> None:
        self.spares[task] = Spares(task, workdir=self.layout.work_dir, limits=self.options.limits, cancel=self.cancel,
                                   expected=expected, ahead=ahead, quiet=task == "benchmark")

    def run_worker(self, task: str, payload: dict[str, Any]) -> Any:
        if task in self.spares:
            return self.spares[task].run(payload)
        return run_task(task, payload, workdir=self.layout.work_dir, limits=self.options.limits, cancel=self.cancel)

    def close_spares(self) -> None:
        for spares in self.spares.values():
            spares.close()

    def fail_unexpectedly(self, spec: VariantSpec, step: str, error: BaseException) -> None:
        """An error nobody planned for, while working on one variant: that variant is a failed row with the
        reason, and the other variants go on."""
        self.rows[spec.name].fail(f"unexpected error while {step}: {type(error).__name__}: {error}"[:500])
        with contextlib.suppress(Exception):
            self.report(ProgressEvent(Stage.MEASURED, spec.name, status="failed"))

    def write_recipe(self, spec: VariantSpec, path: Path, outcome: dict[str, Any]) -> str | None:
        """The script that reproduces this variant, next to its .tflite (see optimizer.produce.recipes)."""
        from optimizer.produce.recipes import RecipeInputs, recipe_for

        analysis = (outcome.get("extra") or {}).get("analysis") or {}
        relative = self.layout.relative
        inputs = RecipeInputs(model_file=self.model_file, model_format=self.model_format,
                              saved_model_dir=self.saved_model_dir, signature=self.options.signature,
                              calibration={n: relative(Path(f)) for n, f in self.data.calibration.items()},
                              labels={n: relative(Path(f)) for n, f in self.data.calibration_labels.items()},
                              tasks={n: str(t) for n, t in self.tasks.items()}, seed=self.options.seed)
        recipe = path.with_suffix(".py")
        recipe.write_text(recipe_for(spec, inputs, float_layers=analysis.get("float_layers")))
        return self.layout.relative(recipe)

    def evaluate(self, spec: VariantSpec, outcome: dict[str, Any]) -> None:
        """Sizes, the op audit, accuracy and fidelity of one converted variant (in a LiteRT-only worker)."""
        row = self.rows[spec.name]
        if outcome.get("status") != "ok":
            row.fail(outcome.get("error") or "not converted")
            return
        path = Path(outcome["path"])
        sizes = file_sizes(path)
        row.record_conversion(self.layout.relative(path), outcome.get("conversion_s"), sizes,
                              outcome.get("extra", {}), self.write_recipe(spec, path, outcome))
        outputs_path = self.layout.outputs_of(spec.name)
        outputs_path.parent.mkdir(parents=True, exist_ok=True)
        self.report(ProgressEvent(Stage.EVALUATING, spec.name))
        try:
            evaluation = self.run_worker("evaluate", EvaluatePayload(
                model_path=str(path), inputs=self.data.evaluation, input_names=self.model.input_names,
                output_names=self.model.output_names, outputs_path=str(outputs_path), threads=self.options.threads,
                labels={n: f for n, f in self.data.evaluation_labels.items() if n in self.tasks},
                tasks={n: str(t) for n, t in self.tasks.items()},
                reference_path=self.reference_path if spec.kind is not VariantKind.FLOAT32 else None,
            ).to_dict())
        except OptimizerError as exc:
            row.fail(str(exc))
            return
        self._record_evaluation(spec, row, evaluation)
        if spec.kind is VariantKind.FLOAT32:
            self.reference_path = str(outputs_path)

    def _record_evaluation(self, spec: VariantSpec, row: VariantRow, evaluation: dict[str, Any]) -> None:
        """The evaluation in the row: every output's figures under ``per_output``, the headline output's as
        the row's own columns, the op audit, and what the figures warn about."""
        audit, per_output = evaluation.pop("audit"), evaluation.pop("per_output")
        row.record_evaluation({
            **evaluation, **headline_figures(per_output.get(self.headline_output) or {}),
            "per_output": per_output, "headline_output": self.headline_output,
            "integer_only": audit["integer_only"], "float_compute_ops": audit["float_compute_ops"],
            "input_dtypes": audit["input_dtypes"], "output_dtypes": audit["output_dtypes"],
            "op_counts": audit["op_counts"], "audit": audit,
            "fidelity_inputs": "synthetic" if self.data.synthetic else "evaluation"})
        if spec.info.expect_integer_only and not audit["integer_only"]:
            row.note(f"sold as integer-only but computes in float: {', '.join(audit['float_compute_ops'][:8])}")
        for name, figures in per_output.items():
            if (figures.get("clipped_fraction") or 0) > CLIPPED_WARNING:
                row.warn(f"output {name} clipped: {figures['clipped_fraction']:.1%} of the float model's values lie "
                         "beyond every value this variant produced (its output range, learned from the calibration "
                         "data, is narrower than the evaluation data needs)")
        constant = [name for name, figures in per_output.items() if figures.get("constant_output")]
        if constant and spec.kind is VariantKind.FLOAT32:
            row.warn(f"output(s) {', '.join(constant)} of the float model are the same for every evaluation input: "
                     "the model may ignore its input (untrained, or fed data it does not expect)")

    def benchmark(self, spec: VariantSpec) -> None:
        """Latency and memory in a fresh LiteRT-only worker, run while nothing else of ours runs."""
        row = self.rows[spec.name]
        self.report(ProgressEvent(Stage.BENCHMARKING, spec.name))
        try:
            row.record_benchmark(self.run_worker("benchmark", self._benchmark_payload(str(row.file(self.layout.root)))))
        except OptimizerError as exc:
            row.fail(str(exc))
        for point in row.analysis.get("search", {}).get("curve", []):
            self._benchmark_curve_point(point)
        self.report(ProgressEvent(Stage.MEASURED, spec.name, status=row.status))

    def _benchmark_payload(self, model_path: str) -> dict[str, Any]:
        return BenchmarkPayload(model_path=model_path, samples=self.data.evaluation,
                                input_names=self.model.input_names, threads=self.options.threads,
                                warmup_runs=self.options.warmup_runs, timed_runs=self.options.timed_runs).to_dict()

    def _benchmark_curve_point(self, point: dict[str, Any]) -> None:
        """Latency of one candidate of the selective search, measured like every variant."""
        try:
            measured = self.run_worker("benchmark", self._benchmark_payload(point["path"]))
            point.update(latency_ms_p50=measured["latency_ms_p50"], latency_ms_p95=measured["latency_ms_p95"])
        except OptimizerError as exc:
            point["latency_error"] = str(exc)


# A variant cutting off more than 5% of the reference's output values is warned about (a few tail values beyond
# a small calibration set are normal).
CLIPPED_WARNING = 0.05
HEADLINE_FIGURES = ("metric", "accuracy", "top5_accuracy", "exact_match", "mae", "rmse", "per_class_accuracy",
                    "fidelity_top1_agreement", "fidelity_rmse", "fidelity_snr_db")


def headline_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """One output's figures as a row's own columns (``metric`` None when the output has no labels)."""
    return {"metric": None, **{k: figures[k] for k in HEADLINE_FIGURES if k in figures}}


class Evaluator:
    """Evaluates converted variants on background threads (one LiteRT worker each) while conversions go
    on; float32 first, because every other variant's fidelity is measured against its outputs."""

    def __init__(self, context: RunContext, threads: int = 2) -> None:
        self.context = context
        self._pending: list[tuple[VariantSpec, dict[str, Any]]] = []
        self._closed = False
        self._reference_done = False
        self._reference_in_flight = False  # float32 is being evaluated: the others wait for its outputs
        self._condition = threading.Condition()
        self._threads = [threading.Thread(target=self._loop, name=f"evaluator-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, spec: VariantSpec, outcome: dict[str, Any]) -> None:
        with self._condition:
            self._pending.append((spec, outcome))
            self._condition.notify_all()

    def close_and_wait(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()

    def _next(self) -> tuple[VariantSpec, dict[str, Any]] | None:
        with self._condition:
            while True:
                for item in self._pending:
                    if self._reference_done or item[0].kind is VariantKind.FLOAT32:
                        self._pending.remove(item)
                        self._reference_in_flight |= item[0].kind is VariantKind.FLOAT32
                        return item
                if self._closed and not self._pending:
                    return None
                if self._closed and not self._reference_in_flight:
                    self._reference_done = True  # float32 never came: evaluate the rest without it
                    continue
                self._condition.wait()

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            spec, outcome = item
            try:
                self.context.evaluate(spec, outcome)
            except Exception as exc:  # noqa: BLE001 - any error fails this variant only; the run goes on
                self.context.fail_unexpectedly(spec, "evaluating", exc)
            finally:
                if spec.kind is VariantKind.FLOAT32:
                    with self._condition:
                        self._reference_done, self._reference_in_flight = True, False
                        self._condition.notify_all()


