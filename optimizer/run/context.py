"""What the steps of one run share (folders, data, options, the result rows being filled) and the measuring
of one variant: sizes, op audit, accuracy and fidelity in a LiteRT worker, then latency and memory."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.errors import OptimizerError, TargetError
from optimizer.measure.benchmark import file_sizes, latency_stats
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
from optimizer.targets.base import AgentSession, Connection, TargetSpec, connect
from optimizer.targets.rounds import RoundsPolicy, RoundsResult, VariantTiming, run_rounds
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

    def benchmark_targets(self, specs: list[VariantSpec]) -> list[dict[str, Any]]:
        """Latency and memory of every variant on every target of the run (local first), in interleaved
        rounds; returns the manifest's ``targets`` entries. The local figures are each row's own columns;
        every target's also go to ``row["targets"][label]``. A target that fails fails only its groups (local:
        the rows, as a variant that cannot be benchmarked always has); a variant failing on a target, only
        that variant's group there."""
        for spec in specs:
            self.report(ProgressEvent(Stage.BENCHMARKING, spec.name))
        files = {spec.name: self.rows[spec.name].file(self.layout.root) for spec in specs}
        samples = first_samples(self.data.evaluation, self.layout.work_dir / "targets")
        entries = []
        for target in self.options.target_specs():
            measured = TargetBenchmark(target, self.layout.work_dir / "targets", self.options,
                                       self.cancel).run(files, samples)
            for spec in specs:
                try:
                    self._record_target(spec, target, measured)
                except Exception as exc:  # noqa: BLE001 - an error nobody planned for fails this variant only
                    self.fail_unexpectedly(spec, "benchmarking", exc)
            entries.append(measured.entry)
        for spec in specs:
            row = self.rows[spec.name]
            for point in row.analysis.get("search", {}).get("curve", []):
                self._benchmark_curve_point(point)
            self.report(ProgressEvent(Stage.MEASURED, spec.name, status=row.status))
        return entries

    def _record_target(self, spec: VariantSpec, target: TargetSpec, measured: TargetMeasurement) -> None:
        row = self.rows[spec.name]
        group = measured.groups.get(spec.name) or {"error": measured.entry.get("error") or "not measured"}
        if target.is_local:
            if group.get("error"):
                row.fail(f"benchmark failed: {group['error']}")
                return
            row.record_benchmark({k: v for k, v in group.items() if k != "error"})
            group = {k: v for k, v in group.items() if k not in ("timings_ms", "op_profile", "round_medians_ms")}
        targets = dict(row.to_dict().get("targets") or {})
        targets[target.label] = group
        row.record_benchmark({"targets": targets})

    def _benchmark_payload(self, model_path: str) -> dict[str, Any]:
        return BenchmarkPayload(model_path=model_path, samples=self.data.evaluation,
                                input_names=self.model.input_names, threads=self.options.threads,
                                warmup_runs=self.options.warmup_runs, timed_runs=self.options.timed_runs).to_dict()

    def _benchmark_curve_point(self, point: dict[str, Any]) -> None:
        """Latency of one candidate of the selective search, measured locally with the same protocol (in one
        fresh worker per candidate, not in rounds: the curve compares candidates of one search)."""
        try:
            measured = run_task("benchmark", self._benchmark_payload(point["path"]), workdir=self.layout.work_dir,
                                limits=self.options.limits, cancel=self.cancel)
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

    def __init__(self, context: RunContext, threads: int = 2, reference_ready: bool = False) -> None:
        self.context = context
        self._pending: list[tuple[VariantSpec, dict[str, Any]]] = []
        self._closed = False
        self._reference_done = reference_ready  # float32's outputs exist already (taken from the variant store)
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


def first_samples(evaluation: dict[str, str], folder: Path) -> dict[str, Path] | None:
    """The first evaluation sample of each input as its own small .npy (what every target is sent); None
    without data (the agent then feeds random stand-ins)."""
    if not evaluation:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    samples = {}
    for index, (name, path) in enumerate(evaluation.items()):
        samples[name] = folder / f"sample-{index}.npy"
        np.save(samples[name], np.asarray(np.load(path, allow_pickle=False, mmap_mode="r")[:1]))
    return samples


@dataclass
class TargetMeasurement:
    """One target's manifest entry and each variant's figure group there (``error`` set when it failed)."""

    entry: dict[str, Any]
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


class TargetBenchmark:
    """Every variant on one target: connect, identity, per variant put + one agent + load, the interleaved
    rounds across them, then memory and the per-op profile of each; the connection is closed on every way out."""

    LOAD_TIMEOUT_S = 300.0
    PROFILE_RUNS = 10

    def __init__(self, target: TargetSpec, workdir: Path, options: RunOptions,
                 cancel: threading.Event | None = None) -> None:
        self.target, self.workdir, self.options, self.cancel = target, workdir, options, cancel
        self.policy = RoundsPolicy(min_runs=options.timed_runs, precision=options.latency_precision,
                                   time_cap_s=options.latency_time_cap_s)

    def run(self, files: dict[str, Path], samples: dict[str, Path] | None) -> TargetMeasurement:
        measured = TargetMeasurement({"label": self.target.label, "uri": self.target.uri, "identity": None,
                                      "loadavg_before": None, "loadavg_after": None, "rounds": 0,
                                      "precision_met": False, "resolution_pct": None, "error": None})
        try:
            connection = connect(self.target, self.workdir, limits=self.options.limits)
        except TargetError as exc:
            measured.entry["error"] = str(exc)
            return measured
        try:
            self._measure(connection, files, samples, measured)
        except Exception as exc:  # noqa: BLE001 - a target's failure is its own; the run goes on
            measured.entry["error"] = str(exc) if isinstance(exc, TargetError) else \
                f"unexpected error on {self.target.label}: {type(exc).__name__}: {exc}"[:500]
            measured.groups = {name: g for name, g in measured.groups.items() if "latency_ms_p50" in g}
        finally:
            with contextlib.suppress(Exception):
                connection.close()
        return measured

    def _measure(self, connection: Connection, files: dict[str, Path], samples: dict[str, Path] | None,
                 measured: TargetMeasurement) -> None:
        identity = measured.entry["identity"] = connection.identity()
        remote = {name: connection.put(path) for name, path in samples.items()} if samples else None
        sessions: dict[str, AgentSession] = {}
        try:
            for name, path in files.items():
                try:
                    sessions[name], loaded = self._load(connection, path, remote)
                    measured.groups[name] = {**loaded, "identity": identity, "error": None}
                except TargetError as exc:
                    measured.groups[name] = {"identity": identity, "error": str(exc)}
            if not sessions:
                return
            before = sessions[next(iter(sessions))].request({"cmd": "hello"}, 60).get("loadavg")
            slowest_s = max(float(measured.groups[n].get("latency_ms_first") or 0) for n in sessions) / 1e3
            policy = replace(self.policy, request_timeout_s=max(self.policy.request_timeout_s,
                                                                 10 * self.policy.block_runs * slowest_s))
            result = run_rounds(sessions, policy, loadavg_before=before,
                                cancelled=lambda: self.cancel is not None and self.cancel.is_set())
            measured.entry.update(result.summary())
            for name, session in sessions.items():
                self._finish(session, result, result.variants[name], measured.groups[name])
        finally:
            for session in sessions.values():
                session.close()

    def _load(self, connection: Connection, path: Path,
              samples: dict[str, str] | None) -> tuple[AgentSession, dict[str, Any]]:
        session = connection.start_agent()
        try:
            loaded = session.request({"cmd": "load", "model": connection.put(path), "inputs": samples,
                                      "threads": self.options.threads, "warmup_runs": self.options.warmup_runs},
                                     self.LOAD_TIMEOUT_S)
        except TargetError:
            session.close(kill=True)
            raise
        loaded.pop("ok", None)
        return session, loaded

    def _finish(self, session: AgentSession, result: RoundsResult, timing: VariantTiming,
                group: dict[str, Any]) -> None:
        """The variant's figures from the rounds, then its peak memory and its per-op profile."""
        if timing.error is not None or not timing.timings_ms:
            group["error"] = timing.error or "no timings"
            return
        group.update(latency_stats(timing.timings_ms), **timing.figures(), timings_ms=list(timing.timings_ms),
                     latency_resolution_pct=result.resolution_pct, cpu=(group.get("identity") or {}).get("cpu"))
        try:
            group["memory_peak_bytes"] = session.request({"cmd": "memory"}, 60)["memory_peak_bytes"]
        except TargetError as exc:
            group["memory_error"] = str(exc)
        try:
            group["op_profile"] = session.request({"cmd": "profile", "runs": self.PROFILE_RUNS},
                                                  self.LOAD_TIMEOUT_S)["profile"]
        except TargetError as exc:
            group["op_profile"] = {"error": str(exc)}
