"""The one verb that runs a comparison, as named steps: prepare -> convert (and evaluate) -> benchmark ->
finalize -> save.

Every step that touches the uploaded model runs in a worker (:mod:`optimizer.run.isolation`). A failed variant
becomes a row with its reason; only a refused model or refused data stops the run before anything ran.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import (
    InvalidOption,
    ModelRejected,
    OptimizerError,
    VariantFailed,
    WorkerFailed,
    folder_unwritable,
)
from optimizer.intake.data import prepare_data
from optimizer.intake.model import ModelFormat, check_model_file
from optimizer.measure.benchmark import cpu_name
from optimizer.measure.evaluate import Task, infer_task
from optimizer.records import (
    DataReport,
    InspectPayload,
    ModelSummary,
    ProducePayload,
    ProgressEvent,
    RunLayout,
    Stage,
)
from optimizer.report.results import package_versions, save_results, to_frame
from optimizer.run.cache import RunCache
from optimizer.run.context import Evaluator, ProgressCallback, RunContext
from optimizer.run.conversions import Conversions
from optimizer.run.finalize import add_relative_columns, add_statistics, flag_collapsed_training
from optimizer.run.isolation import DEFAULT_LIMITS, Worker, WorkerLimits, run_task
from optimizer.run.options import RunOptions
from optimizer.run.plan import PlanFacts, RunPlan, plan_run
from optimizer.run.rows import VariantRow
from optimizer.variants import KINDS, SourceFormat, VariantKind, VariantSpec


@dataclass
class RunResult:
    rows: list[dict[str, Any]]
    manifest: dict[str, Any]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return to_frame(self.rows)


@dataclass
class WarmWorkers:
    """A run's two TensorFlow workers (the preparer and the conversion helper), started before the run is
    known: a server keeps one pair warm, so a run does not wait for TensorFlow to import (about 5 s). Each
    still serves one run only, in its own processes with the run's limits."""

    preparer: Worker
    helper: Worker
    limits: WorkerLimits

    @classmethod
    def start(cls, folder: Path, limits: WorkerLimits = DEFAULT_LIMITS) -> WarmWorkers:
        return cls(Worker("prepare", workdir=folder, limits=limits),
                   Worker("convert", workdir=folder, limits=limits, log_name="worker-convert-helper"), limits)

    def wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(w.wait_ready(max(0.0, deadline - time.monotonic())) for w in (self.preparer, self.helper))

    def alive(self) -> bool:
        return self.preparer.alive() and self.helper.alive()

    def adopt(self, workdir: Path, cancel: threading.Event | None) -> tuple[Worker, Worker]:
        for worker in (self.preparer, self.helper):
            worker.move_log(workdir)
            worker.cancel = cancel
        return self.preparer, self.helper

    def abort(self) -> None:
        self.preparer.abort()
        self.helper.abort()


def inspect(model_path: Path, workdir: Path, limits: WorkerLimits = DEFAULT_LIMITS,
            signature: str | None = None) -> dict[str, Any]:
    """Model summary from a worker (of ``signature``, for a SavedModel with several); raises ModelRejected for a
    refused file, WorkerFailed for a crash."""
    check_model_file(model_path)
    payload = InspectPayload(str(model_path.resolve()), str(workdir.resolve()), signature).to_dict()
    summary: dict[str, Any] = run_task("inspect", payload, workdir=workdir, limits=limits)
    return summary


class Step(StrEnum):
    """The named steps of a run, in order. Evaluation runs during CONVERT, as each variant arrives."""

    PREPARE = "prepare"  # copy the model in, start the workers, inspect, check the data, plan, export
    CONVERT = "convert"  # every variant produced (conversion, training, diagnosis) and evaluated
    BENCHMARK = "benchmark"  # latency and memory, one variant at a time, nothing else of ours running
    FINALIZE = "finalize"  # against float32: ratios, statistics, collapsed training flagged
    SAVE = "save"  # results.csv, results.json and manifest.json


@dataclass(frozen=True)
class RunInputs:
    """The files of one run (the model, and its data as one file or a calibration/evaluation pair)."""

    model: Path
    data: Path | None = None
    labels: Path | None = None
    calib: Path | None = None
    eval_data: Path | None = None


class _Run:
    """One comparison run, as the sequence of :class:`Step` methods ``run_comparison`` calls."""

    def __init__(self, inputs: RunInputs, layout: RunLayout, specs: list[VariantSpec] | None, options: RunOptions,
                 progress: ProgressCallback, cancel: threading.Event | None, warm: WarmWorkers | None) -> None:
        self.inputs, self.layout, self.specs, self.options = inputs, layout, specs, options
        self.progress, self.cancel, self.warm = progress, cancel, warm
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.wall_start = time.perf_counter()
        self.local_model = layout.input_dir / inputs.model.name
        self.fmt = ModelFormat.KERAS
        self.warm_start = False
        self.preparer: Worker | None = None
        self.helper: Worker | None = None
        self.export_dir: str | None = None
        self.export_s = 0.0
        self.export_facts: dict[str, Any] = {}  # e.g. a recurrent model exported with a fixed batch of 1
        self.summary: ModelSummary | None = None
        self.plan: RunPlan | None = None
        self.context: RunContext | None = None
        self.evaluator: Evaluator | None = None
        self.conversions: Conversions | None = None
        self.shares: tuple[list[VariantSpec], list[VariantSpec]] = ([], [])
        self.after_export: list[tuple[Worker, list[VariantSpec]]] = []
        self.step_seconds: dict[str, float] = {}
        self.targets: list[dict[str, Any]] = []  # the manifest's entry of each target (local first)
        self.cache: RunCache | None = None  # the variant store, when the options name one

    @contextlib.contextmanager
    def step(self, step: Step) -> Iterator[None]:
        """Time one step; the manifest records how long each took (``step_s``)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.step_seconds[str(step)] = round(time.perf_counter() - started, 3)

    # -- Step.PREPARE ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Copy the model in and check it, start the workers, inspect it (checking the data and planning
        while it exports), and start every producing worker; on any failure, stop what was started."""
        self._copy_model()
        self.progress(ProgressEvent(Stage.INSPECTING))
        if self._plan_from_store() and not self._plan_().produced:
            return  # every variant is in the store: no worker starts, no TensorFlow loads
        self._start_workers()
        try:
            if self.fmt is ModelFormat.TFLITE:
                self._plan(inspect(self.local_model, self.layout.work_dir, self.options.limits,
                                   self.options.signature))
                self._conversions().start_share(self._helper(), self._plan_().by_worker("convert"), None)
            else:
                self._inspect_and_export()
        except BaseException:
            self.abort()
            raise

    def _copy_model(self) -> None:
        model = self.inputs.model
        if not model.is_file():
            raise ModelRejected(f"model: expected a file; found nothing at {model}")
        try:
            self.layout.input_dir.mkdir(parents=True, exist_ok=True)
            if model.resolve() != self.local_model.resolve():
                shutil.copyfile(model, self.local_model)
        except OSError as exc:
            raise folder_unwritable(self.layout.root, exc, "results", "choose another output folder") from exc
        self.fmt = check_model_file(self.local_model)

    def _plan_from_store(self) -> bool:
        """With a variant store: open it, and when it knows this model file already, plan the run now (the data
        is checked here, without a worker) and take every variant it holds. True when the run is planned."""
        if self.options.cache_dir is None:
            return False
        from optimizer.intake.model import file_sha256

        self.cache = RunCache(Path(self.options.cache_dir), file_sha256(self.local_model), self.options)
        found = self.cache.summary()
        if found is None:
            return False
        self._plan_only(found)
        return True

    def _start_workers(self) -> None:
        """A .tflite needs one conversion worker without TensorFlow; a TensorFlow model the preparer and the
        helper, warm ones when the server has them (TensorFlow loads while the model is inspected)."""
        limits, workdir = self.options.limits, self.layout.work_dir
        tflite = self.fmt is ModelFormat.TFLITE
        warm = self.warm
        self.warm_start = warm is not None and not tflite and warm.limits == limits and warm.alive()
        if warm is not None and not self.warm_start:
            warm.abort()
        if tflite:
            self.helper = Worker("convert_tflite", workdir=workdir, limits=limits, cancel=self.cancel,
                                 log_name="worker-convert-helper")
            return
        pair = warm if warm is not None and self.warm_start else WarmWorkers.start(workdir, limits)
        self.preparer, self.helper = pair.adopt(workdir, self.cancel)

    def _plan(self, found: dict[str, Any]) -> None:
        """Plan the run (unless the variant store let it plan already) and start the workers that do not wait
        for the export (training)."""
        if self.plan is None:
            self._plan_only(found)
        self._start_producers(self._plan_())

    def _plan_only(self, found: dict[str, Any]) -> None:
        """Check the data against the model, plan the variants, build the run's context, and take from the
        variant store every variant it holds."""
        self.summary = summary = ModelSummary.from_dict(found)
        self.progress(ProgressEvent(Stage.CHECKING_DATA))
        inputs, options = self.inputs, self.options
        report = DataReport.from_prepared(prepare_data(
            self.layout.work_dir, summary.inputs, summary.outputs, data=inputs.data, labels=inputs.labels,
            calib=inputs.calib, eval_data=inputs.eval_data, label_column=options.label_column,
            eval_fraction=options.eval_fraction, seed=options.seed))
        tasks = output_tasks(summary, report, options)
        accuracy_output = choose_accuracy_output(summary, tasks, options.accuracy_output)
        plan = plan_run(self.specs, PlanFacts(
            source=SourceFormat(summary.source), trainable=self.fmt in (ModelFormat.KERAS, ModelFormat.H5),
            model_format=self.fmt.value, has_calibration=bool(report.calibration),
            has_calibration_labels=bool(report.calibration_labels),
            classification=accuracy_output is not None and tasks[accuracy_output] is Task.CLASSIFICATION))
        rows = {s.name: VariantRow(s) for s in plan.variants}
        for name, refused in plan.refused.items():
            rows[name].refuse(refused.status, refused.reason)
        self.context = RunContext(layout=self.layout, options=options, model=summary, data=report, tasks=tasks,
                                  rows=rows, progress=self.progress, cancel=self.cancel,
                                  model_file=self.local_model.name, model_format=self.fmt.value,
                                  accuracy_output=accuracy_output)
        if self.cache is not None:
            plan = self._take_from_store(plan, report, found)
        self.plan, self.shares = plan, plan.conversion_shares()

    def _take_from_store(self, plan: RunPlan, report: DataReport, found: dict[str, Any]) -> RunPlan:
        cache, context = self.cache, self._context()
        assert cache is not None
        cache.put_summary(found)
        cache.dataset_sha256 = report.facts.get("dataset_sha256")
        hits = frozenset(s.name for s in plan.made if cache.restore(s, context.rows[s.name], self.layout))
        reference = next((s for s in plan.made if s.kind is VariantKind.FLOAT32 and s.name in hits), None)
        if reference is not None:  # every other variant's fidelity is measured against its stored outputs
            context.reference_path = str(self.layout.outputs_of(reference.name))
        return replace(plan, cached=hits)

    def _start_producers(self, plan: RunPlan) -> None:
        context, limits, workdir = self._context(), self.options.limits, self.layout.work_dir
        produced = plan.produced
        context.start_spares("evaluate", expected=len(produced), ahead=2)
        self.evaluator = Evaluator(context, reference_ready=context.reference_path is not None)
        self.conversions = Conversions(context, self._payload(), "convert_tflite" if self.fmt is ModelFormat.TFLITE
                                       else "convert", self.evaluator.submit)
        if training := plan.by_worker("train"):  # fine-tunes run in their own worker, beside the conversions
            self.conversions.start_share(Worker("train", workdir=workdir, limits=limits, cancel=self.cancel),
                                         training, None)
        if diagnosis := plan.by_worker("diagnose"):  # loads TensorFlow now, starts once the model is exported
            self.after_export.append((Worker("diagnose", workdir=workdir, limits=limits, cancel=self.cancel),
                                      diagnosis))

    def _payload(self) -> ProducePayload:
        """What every producing worker is sent (the specs and the export folder are added per share)."""
        context = self._context()
        data = context.data
        return ProducePayload(
            model_path=str(self.local_model.resolve()), format=self.fmt.value,
            workdir=str(self.layout.work_dir.resolve()), out_dir=str(self.layout.variants_dir.resolve()),
            seed=self.options.seed, signature=self.options.signature, calibration=data.calibration,
            calibration_labels={n: f for n, f in data.calibration_labels.items() if n in context.tasks},
            evaluation=data.evaluation, evaluation_labels=data.evaluation_labels,
            tasks={n: str(t) for n, t in context.tasks.items()}, accuracy_output=context.accuracy_output)

    def _inspect_and_export(self) -> None:
        """The preparer inspects the model (then the data is checked and the run planned while it exports),
        exports it, and converts its own share; the other workers start once the export exists."""
        preparer = self.preparer
        assert preparer is not None
        preparer.send(InspectPayload(str(self.local_model.resolve()), str(self.layout.work_dir.resolve()),
                                     self.options.signature).to_dict(), more=True)
        current: dict[str, str] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event.get("stage") == Stage.INSPECTED:
                self._plan(event["summary"])
                own = self.shares[0]
                self._conversions().specs.update({s.name: s for s in own})
                preparer.send_more(self._conversions().payload.share(own, None).to_dict())
                return
            if event.get("stage") == Stage.EXPORTED:
                self._exported(event["export_dir"], event["export_s"], event.get("export") or {})
            elif self.conversions is not None:
                self.conversions.track(event, current)
            self._context().report(event)

        try:
            preparer.wait(on_event)
        except OptimizerError as exc:
            if self.conversions is None:
                raise  # the model or the data was refused: nothing ran
            self._preparer_failed(exc, current)

    def _exported(self, export_dir: str, export_s: float, facts: dict[str, Any]) -> None:
        self.export_dir, self.export_s, self.export_facts = export_dir, export_s, facts
        context, conversions = self._context(), self._conversions()
        if self.fmt is ModelFormat.SAVED_MODEL_ZIP:
            context.saved_model_dir = self.layout.relative(Path(export_dir))
        conversions.start_share(self._helper(), self.shares[1], export_dir)
        for worker, share in self.after_export:
            conversions.start_share(worker, share, export_dir)

    def _preparer_failed(self, error: OptimizerError, current: dict[str, str]) -> None:
        """Without an export no post-training variant can be made; after it, only the preparer's share."""
        conversions = self._conversions()
        if self.export_dir is not None:
            conversions.fail_unfinished(self.shares[0], error, current)
            return
        self._helper().abort()
        for worker, _ in self.after_export:
            worker.abort()
        reason = VariantFailed(f"export failed: {error}") if isinstance(error, WorkerFailed) else error
        conversions.fail_unfinished(self._plan_().by_worker("convert"), reason, {})

    def abort(self) -> None:
        """Stop every worker this run started (a refused input, a cancel, an error in a step)."""
        for worker in (self.helper, self.preparer, *(w for w, _ in self.after_export)):
            if worker is not None:
                worker.abort()
        if self.conversions is not None:
            self.conversions.abort()
        if self.evaluator is not None:
            self.evaluator.close_and_wait()
        if self.context is not None:
            self.context.close_spares()

    # -- Step.CONVERT and Step.BENCHMARK ----------------------------------------------------------------
    def convert(self) -> None:
        """Wait for every producing worker (retrying what a crashed one left); evaluations finish meanwhile."""
        if self.conversions is None:
            return  # everything came from the variant store
        try:
            self._conversions().finish(self._plan_().produced, self.export_dir)
        finally:
            self._evaluator().close_and_wait()

    def benchmark(self) -> None:
        """Latency and memory of every produced variant on every target (local first), in interleaved rounds
        (:meth:`RunContext.benchmark_targets`); a failure fails only that target's or that variant's figures."""
        context = self._context()
        context.close_spares()  # the evaluations are done: no idle worker of ours sits beside the timings
        specs = [spec for spec in self._plan_().made if context.rows[spec.name].ok
                 and "latency_ms_p50" not in context.rows[spec.name].to_dict()]  # not timed in the store already
        if not specs or not self.options.measure_latency:
            return
        try:
            self.targets = context.benchmark_targets(specs)
        except Exception as exc:  # noqa: BLE001 - any error fails the variants it left unmeasured, not the run
            for spec in specs:
                if "latency_ms_p50" not in context.rows[spec.name].to_dict():
                    context.fail_unexpectedly(spec, "benchmarking", exc)

    # -- Step.FINALIZE and Step.SAVE ----------------------------------------------------------------------
    def finalize(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        context, plan = self._context(), self._plan_()
        rows = [context.rows[s.name].to_dict() for s in plan.variants]  # every thread is done: plain rows now
        add_relative_columns(rows)
        flag_collapsed_training(rows)
        add_statistics(rows, context)
        if self.cache is not None:
            self.cache.store_rows(rows, {s.name: s for s in plan.variants}, self.layout)
        return rows, self._manifest(plan, context)

    def _manifest(self, plan: RunPlan, context: RunContext) -> dict[str, Any]:
        """How the numbers were made: inputs, options, versions, machine, threads, seeds, timings."""
        tasks = {name: str(task) for name, task in context.tasks.items()}
        task = next(iter(tasks.values())) if len(context.model.outputs) == 1 and tasks else None
        summary, options = self.summary, self.options
        assert summary is not None
        return {
            "created_at": self.started_at,
            "wall_time_s": round(time.perf_counter() - self.wall_start, 3),
            "model": summary.manifest(),
            "data": context.data.facts,
            "task": task,  # the one output's task (models with several outputs: see tasks)
            "tasks": tasks,
            "accuracy_output": context.accuracy_output,
            "options": {**options.to_dict(), "task": options.task or task},
            "variants": [s.to_dict() for s in plan.variants],
            "export_s": self.export_s,
            "export": dict(self.export_facts),
            "step_s": dict(self.step_seconds),  # prepare, convert (with evaluation) and benchmark
            "conversion_workers": 1 if self.fmt is ModelFormat.TFLITE or len(plan.by_worker("convert")) < 2 else 2,
            "warm_start": self.warm_start,  # TensorFlow workers started before the run (a server's standby)
            "versions": package_versions(),
            "cpu": cpu_name(),
            "targets": self.targets,  # identity, load average, rounds, precision, resolution, error per target
            "cache": self.cache.manifest() if self.cache is not None else None,  # which rows came from the store
            "threads": options.threads,
            "seeds": {"split": options.seed, "synthetic_inputs": options.seed},
            "kinds": {str(k): KINDS[k].summary for k in {s.kind for s in plan.variants}},
        }

    def save(self, rows: list[dict[str, Any]], manifest: dict[str, Any]) -> RunResult:
        files = save_results(rows, manifest, self.layout.root)
        self.progress(ProgressEvent(Stage.DONE))
        return RunResult(rows=rows, manifest=manifest, out_dir=self.layout.root, files=files)

    # -- what the steps share -----------------------------------------------------------------------------
    def _context(self) -> RunContext:
        assert self.context is not None, "the run is not planned yet"
        return self.context

    def _plan_(self) -> RunPlan:
        assert self.plan is not None, "the run is not planned yet"
        return self.plan

    def _conversions(self) -> Conversions:
        assert self.conversions is not None, "the run is not planned yet"
        return self.conversions

    def _evaluator(self) -> Evaluator:
        assert self.evaluator is not None, "the run is not planned yet"
        return self.evaluator

    def _helper(self) -> Worker:
        assert self.helper is not None
        return self.helper


def output_tasks(summary: ModelSummary, data: DataReport, options: RunOptions) -> dict[str, Task]:
    """The task of each labelled output: the user's override (``--task``), else inferred from its labels."""
    overrides = options.tasks_for(summary.output_names)
    tasks: dict[str, Task] = {}
    for name, path in data.evaluation_labels.items():
        output = summary.output_named(name)
        inferred = infer_task(np.load(path, allow_pickle=False), list(output.shape))
        task = overrides.get(name) or inferred
        if task is not None:
            tasks[name] = task
    return tasks


def choose_accuracy_output(summary: ModelSummary, tasks: dict[str, Task], wanted: str | None) -> str | None:
    """The labelled output whose metric is the run's accuracy: the one asked for, else the first classification
    output, else the first labelled one; None without labels."""
    if wanted is not None:
        summary.output_named(wanted)  # refuses a name the model does not have
        if wanted not in tasks:
            raise InvalidOption(f"accuracy_output: output {wanted!r} has no labels; labelled: {sorted(tasks)}")
        return wanted
    ordered = [name for name in summary.output_names if name in tasks]
    return next((n for n in ordered if tasks[n] is Task.CLASSIFICATION), ordered[0] if ordered else None)


def run_comparison(
    model_path: Path,
    out_dir: Path,
    specs: list[VariantSpec] | None = None,
    *,
    data: Path | None = None,
    labels: Path | None = None,
    calib: Path | None = None,
    eval_data: Path | None = None,
    options: RunOptions = RunOptions(),
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    warm: WarmWorkers | None = None,
) -> RunResult:
    """Produce and measure every variant of one model; writes the .tflite files and the results to out_dir.

    The steps (:class:`Step`): PREPARE (workers start at once, so TensorFlow loads while the model is
    inspected; the data is checked while the model exports), CONVERT (evaluations overlap conversions),
    BENCHMARK (one variant at a time, with nothing else of ours running), FINALIZE, SAVE. ``warm`` workers,
    started earlier, replace the two TensorFlow workers a run starts (a .tflite source, other limits or a dead
    worker: they stop and the run starts its own).

    Raises ModelRejected / DataRejected / InvalidOption / StoreUnavailable before anything ran; a failure while
    producing or measuring one variant is that variant's row with ``status`` and ``error``. What can still
    escape later is an error of the run itself (its folder full or unwritable, a cancel), after every worker
    it started has been stopped.
    """
    run = _Run(RunInputs(model_path, data, labels, calib, eval_data), RunLayout(out_dir), specs, options,
               on_progress or (lambda event: None), cancel, warm)
    with run.step(Step.PREPARE):
        run.prepare()
    try:
        with run.step(Step.CONVERT):
            run.convert()
        with run.step(Step.BENCHMARK):
            run.benchmark()
    except BaseException:
        run.abort()
        raise
    rows, manifest = run.finalize()  # the manifest it builds carries the step timings above
    return run.save(rows, manifest)
