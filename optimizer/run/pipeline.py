"""The one verb that runs a comparison: intake -> data -> conversions -> measurements -> result rows.

Every step that touches the uploaded model runs in a worker (:mod:`optimizer.run.isolation`). A failed variant
becomes a row with its reason; only a refused model or refused data stops the run before anything ran.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
from optimizer.measure.benchmark import cpu_name, file_sizes
from optimizer.measure.evaluate import Task, infer_task
from optimizer.report.results import package_versions, save_results, to_frame
from optimizer.run.isolation import DEFAULT_LIMITS, Spares, Worker, WorkerLimits, run_task
from optimizer.run.options import RunOptions
from optimizer.variants import KINDS, SourceFormat, VariantKind, VariantSpec, default_kinds

ProgressCallback = Callable[[dict[str, Any]], None]


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


def inspect(model_path: Path, workdir: Path, limits: WorkerLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Model summary from a worker; raises ModelRejected for a refused file, WorkerFailed for a crash."""
    check_model_file(model_path)
    return run_task("inspect", {"model_path": str(model_path.resolve()), "workdir": str(workdir.resolve())},
                    workdir=workdir, limits=limits)


def _base_row(spec: VariantSpec) -> dict[str, Any]:
    return {"variant": spec.name, "kind": str(spec.kind), "label": spec.info.label, "status": "ok",
            "error": None, "expected_integer_only": spec.info.expect_integer_only}


class _Evaluator:
    """Evaluates converted variants on background threads (one LiteRT worker each) while conversions go
    on; float32 first, because every other variant's fidelity is measured against its outputs."""

    def __init__(self, context: _RunContext, threads: int = 2) -> None:
        self.context = context
        self._pending: list[tuple[VariantSpec, dict[str, Any]]] = []
        self._closed = False
        self._reference_done = False
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
                        return item
                if self._closed:
                    if not self._pending:
                        return None
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
                        self._reference_done = True
                        self._condition.notify_all()


@dataclass
class _RunContext:
    """What the stages of one run share: folders, data, options and the result rows being filled."""

    out_dir: Path
    workdir: Path
    options: RunOptions
    data_report: dict[str, Any]
    task: Task | None
    rows: dict[str, dict[str, Any]]
    progress: ProgressCallback
    cancel: threading.Event | None
    model_file: str = ""
    model_format: str = ""
    reference_path: str | None = None
    saved_model_dir: str | None = None
    spares: dict[str, Spares] = field(default_factory=dict)  # evaluate / benchmark workers started ahead

    def start_spares(self, task: str, expected: int, ahead: int) -> None:
        self.spares[task] = Spares(task, workdir=self.workdir, limits=self.options.limits, cancel=self.cancel,
                                   expected=expected, ahead=ahead, quiet=task == "benchmark")

    def run_worker(self, task: str, payload: dict[str, Any]) -> Any:
        if task in self.spares:
            return self.spares[task].run(payload)
        return run_task(task, payload, workdir=self.workdir, limits=self.options.limits, cancel=self.cancel)

    def close_spares(self) -> None:
        for spares in self.spares.values():
            spares.close()

    def fail_unexpectedly(self, spec: VariantSpec, step: str, error: BaseException) -> None:
        """An error nobody planned for, while working on one variant: that variant is a failed row with the
        reason, and the other variants go on."""
        self.rows[spec.name].update(status="failed",
                                    error=f"unexpected error while {step}: {type(error).__name__}: {error}"[:500])
        with contextlib.suppress(Exception):
            self.progress({"stage": "measured", "variant": spec.name, "status": "failed"})

    def write_recipe(self, spec: VariantSpec, path: Path, outcome: dict[str, Any]) -> str | None:
        """The script that reproduces this variant, next to its .tflite (see optimizer.produce.recipes)."""
        from optimizer.produce.recipes import recipe_for

        analysis = (outcome.get("extra") or {}).get("analysis") or {}
        text = recipe_for(spec, model_file=self.model_file, model_format=self.model_format,
                          saved_model_dir=self.saved_model_dir, task=self.task.value if self.task else None,
                          seed=self.options.seed, float_layers=analysis.get("float_layers"))
        recipe = path.with_suffix(".py")
        recipe.write_text(text)
        return str(recipe.relative_to(self.out_dir.resolve())) if recipe.is_relative_to(self.out_dir.resolve()) \
            else str(recipe)

    def evaluate(self, spec: VariantSpec, outcome: dict[str, Any]) -> None:
        """Sizes, the op audit, accuracy and fidelity of one converted variant (in a LiteRT-only worker)."""
        row = self.rows[spec.name]
        if outcome.get("status") != "ok":
            row.update(status="failed", error=outcome.get("error") or "not converted")
            return
        path = Path(outcome["path"])
        out_root = self.out_dir.resolve()
        row.update(path=str(path.relative_to(out_root)) if path.is_relative_to(out_root) else str(path),
                   conversion_s=outcome.get("conversion_s"), **file_sizes(path), **outcome.get("extra", {}))
        row["recipe_path"] = self.write_recipe(spec, path, outcome)
        outputs_path = self.workdir / "outputs" / f"{spec.name}.npy"
        outputs_path.parent.mkdir(parents=True, exist_ok=True)
        self.progress({"stage": "evaluating", "variant": spec.name})
        try:
            evaluation = self.run_worker("evaluate", {
                "model_path": str(path), "inputs_path": self.data_report["eval_path"],
                "outputs_path": str(outputs_path), "threads": self.options.threads,
                "labels_path": self.data_report["eval_labels_path"] if self.task else None,
                "task": self.task.value if self.task else None,
                "reference_path": self.reference_path if spec.kind is not VariantKind.FLOAT32 else None,
            })
        except OptimizerError as exc:
            row.update(status="failed", error=str(exc))
            return
        audit = evaluation.pop("audit")
        row.update(evaluation)
        row.update(integer_only=audit["integer_only"], float_compute_ops=audit["float_compute_ops"],
                   input_dtypes=audit["input_dtypes"], output_dtypes=audit["output_dtypes"],
                   op_counts=audit["op_counts"], audit=audit,
                   fidelity_inputs="synthetic" if self.data_report["source"] == "synthetic" else "evaluation",
                   metric="accuracy" if "accuracy" in evaluation else "mae" if "mae" in evaluation else None)
        if spec.kind is VariantKind.FLOAT32:
            self.reference_path = str(outputs_path)
        if spec.info.expect_integer_only and not audit["integer_only"]:
            row["error"] = f"sold as integer-only but computes in float: {', '.join(audit['float_compute_ops'][:8])}"

    def benchmark(self, spec: VariantSpec) -> None:
        """Latency and memory in a fresh LiteRT-only worker, run while nothing else of ours runs."""
        row = self.rows[spec.name]
        self.progress({"stage": "benchmarking", "variant": spec.name})
        try:
            row.update(self.run_worker("benchmark", {
                "model_path": str(self.out_dir / row["path"]), "sample_path": self.data_report["eval_path"],
                "threads": self.options.threads, "warmup_runs": self.options.warmup_runs,
                "timed_runs": self.options.timed_runs,
            }))
        except OptimizerError as exc:
            row.update(status="failed", error=str(exc))
        for point in (row.get("analysis") or {}).get("search", {}).get("curve", []):
            self._benchmark_curve_point(point)
        self.progress({"stage": "measured", "variant": spec.name, "status": row["status"]})

    def _benchmark_curve_point(self, point: dict[str, Any]) -> None:
        """Latency of one candidate of the selective search, measured like every variant."""
        try:
            measured = self.run_worker("benchmark", {
                "model_path": point["path"], "sample_path": self.data_report["eval_path"],
                "threads": self.options.threads, "warmup_runs": self.options.warmup_runs,
                "timed_runs": self.options.timed_runs})
            point.update(latency_ms_p50=measured["latency_ms_p50"], latency_ms_p95=measured["latency_ms_p95"])
        except OptimizerError as exc:
            point["latency_error"] = str(exc)


class _Conversions:
    """Tracks which variants are converted across workers; a worker that crashes fails only the variant
    it was on, and whatever it left undone is retried in fresh workers."""

    def __init__(self, context: _RunContext, payload: dict[str, Any], task: str,
                 on_converted: Callable[[VariantSpec, dict[str, Any]], None]) -> None:
        self.context = context
        self.payload = payload
        self.task = task
        self.on_converted = on_converted
        self.specs: dict[str, VariantSpec] = {}
        self.done: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _finish(self, spec: VariantSpec, outcome: dict[str, Any]) -> None:
        with self._lock:
            if spec.name in self.done:
                return
            self.done.add(spec.name)
        self.on_converted(spec, outcome)

    def track(self, event: dict[str, Any], current: dict[str, str]) -> None:
        """Handle a worker's converting/converted events (``current`` remembers what it is on)."""
        if event.get("stage") == "converting":
            current["name"] = event["variant"]
        elif event.get("stage") == "converted":
            outcome = event["outcome"]
            self._finish(self.specs[outcome["name"]], outcome)

    def fail_unfinished(self, share: list[VariantSpec], error: OptimizerError, current: dict[str, str]) -> None:
        cancelled = self.context.cancel is not None and self.context.cancel.is_set()
        culprits = [s for s in share if s.name not in self.done]
        if isinstance(error, WorkerFailed) and not cancelled:  # a crash: only the variant it died on
            culprits = [s for s in culprits if s.name == current.get("name")] or culprits[:1]
        for spec in culprits:
            self._finish(spec, {"name": spec.name, "status": "failed",
                                "error": "cancelled" if cancelled else str(error)})

    def run_share(self, worker: Worker, share: list[VariantSpec], export_dir: str | None) -> None:
        self.specs.update({s.name: s for s in share})
        current: dict[str, str] = {}
        worker.send({**self.payload, "export_dir": export_dir, "specs": [s.to_dict() for s in share]})

        def on_event(event: dict[str, Any]) -> None:
            self.track(event, current)
            self.context.progress(event)

        try:
            worker.wait(on_event)
        except OptimizerError as exc:
            self.fail_unfinished(share, exc, current)

    def start_share(self, worker: Worker, share: list[VariantSpec], export_dir: str | None) -> None:
        if not share:
            worker.abort()
            return
        thread = threading.Thread(target=self.run_share, args=(worker, share, export_dir), name="convert")
        thread.start()
        self._threads.append(thread)

    def finish(self, specs: list[VariantSpec], export_dir: str | None) -> None:
        """Wait for the running shares, then convert what is left in fresh workers, one at a time."""
        self.specs.update({s.name: s for s in specs})
        while True:
            for thread in self._threads:
                thread.join()
            self._threads.clear()
            remaining = [s for s in specs if s.name not in self.done]
            if not remaining:
                return
            kind_task = remaining[0].info.worker_task
            task = self.task if kind_task == "convert" else kind_task
            batch = [s for s in remaining if s.info.worker_task == kind_task]
            worker = Worker(task, workdir=self.context.workdir, limits=self.context.options.limits,
                            cancel=self.context.cancel)
            self.run_share(worker, batch, export_dir)


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

    Conversions run in workers started at once (TensorFlow loads while the model is inspected), the data
    is checked while the model exports, evaluations overlap conversions, and latency is measured last,
    one variant at a time, with nothing else of ours running. ``warm`` workers, started earlier, replace
    the two TensorFlow workers a run starts (a .tflite source, other limits or a dead worker: they stop and
    the run starts its own).
    """
    progress = on_progress or (lambda event: None)
    # The statistics at the end need scipy (about 1 s to import): load it while the workers do the work.
    threading.Thread(target=importlib.import_module, args=("optimizer.measure.stats",), daemon=True).start()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    wall_start = time.perf_counter()
    workdir = out_dir / "work"
    input_dir = out_dir / "input"
    local_model = input_dir / model_path.name
    if not model_path.is_file():
        raise ModelRejected(f"model: expected a file; found nothing at {model_path}")
    try:
        input_dir.mkdir(parents=True, exist_ok=True)
        if model_path.resolve() != local_model.resolve():
            shutil.copyfile(model_path, local_model)
    except OSError as exc:
        raise folder_unwritable(out_dir, exc, "results", "choose another output folder") from exc
    fmt = check_model_file(local_model)
    limits = options.limits

    tflite_source = fmt is ModelFormat.TFLITE
    helper_task = "convert_tflite" if tflite_source else "convert"
    warm_start = warm is not None and not tflite_source and warm.limits == limits and warm.alive()
    if warm is not None and not warm_start:
        warm.abort()
    preparer: Worker | None = None
    if tflite_source:
        helper = Worker(helper_task, workdir=workdir, limits=limits, cancel=cancel, log_name="worker-convert-helper")
    else:  # without warm workers, started now: TensorFlow loads while the model is inspected
        pair = warm if warm is not None and warm_start else WarmWorkers.start(workdir, limits)
        preparer, helper = pair.adopt(workdir, cancel)
    state: dict[str, Any] = {}

    def plan(summary: dict[str, Any]) -> None:
        """Check the data against the model, decide the variants, and build the run's context."""
        progress({"stage": "checking data"})
        data_report = prepare_data(
            workdir, summary["inputs"][0]["shape"], summary["outputs"][0]["shape"], data=data, labels=labels,
            calib=calib, eval_data=eval_data, label_column=options.label_column,
            eval_fraction=options.eval_fraction, seed=options.seed)
        chosen = _choose_variants(specs, SourceFormat(summary["source"]))
        task = options.task
        if task is None and data_report["eval_labels_path"]:
            labels_array = np.load(data_report["eval_labels_path"], allow_pickle=False)
            task = infer_task(labels_array, summary["outputs"][0]["shape"])
        rows = {s.name: _base_row(s) for s in chosen}
        to_convert = []
        for spec in chosen:
            if SourceFormat(summary["source"]) not in spec.info.sources:
                rows[spec.name].update(status="skipped", error=f"cannot be made from a {summary['source']} model")
            elif spec.info.needs_training and fmt not in (ModelFormat.KERAS, ModelFormat.H5):
                rows[spec.name].update(status="skipped", error=f"training needs a Keras model (.keras or .h5); "
                                                               f"found a {fmt.value}")
            elif spec.info.needs_training and not data_report["calibration_labels_path"]:
                rows[spec.name].update(status="failed", error="training needs labelled training data: expected labels "
                                       "for the calibration split (y, or y_calib); found none")
            elif spec.info.needs_calibration and not data_report["calibration_path"]:
                rows[spec.name].update(status="skipped", error="needs calibration data; none was given")
            elif spec.kind is VariantKind.MIXED_INT8 and task is not Task.CLASSIFICATION:
                rows[spec.name].update(status="failed", error="the selective search needs labelled classification "
                                       "data for evaluation; found none")
            else:
                to_convert.append(spec)
        context = _RunContext(out_dir=out_dir, workdir=workdir, options=options, data_report=data_report,
                              task=task, rows=rows, progress=progress, cancel=cancel, model_file=local_model.name,
                              model_format=fmt.value)
        context.start_spares("evaluate", expected=len(to_convert), ahead=2)
        # Benchmark workers start now too, so they have their imports before the first measurement.
        context.start_spares("benchmark", expected=len(to_convert), ahead=min(len(to_convert), 8))
        evaluator = _Evaluator(context)
        payload = {"model_path": str(local_model.resolve()), "format": fmt.value, "workdir": str(workdir.resolve()),
                   "out_dir": str((out_dir / "variants").resolve()), "seed": options.seed,
                   "calibration_path": data_report["calibration_path"],
                   "calibration_labels_path": data_report["calibration_labels_path"],
                   "eval_path": data_report["eval_path"], "eval_labels_path": data_report["eval_labels_path"],
                   "task": task.value if task else None}
        conversions = _Conversions(context, payload, helper_task, evaluator.submit)
        training = [s for s in to_convert if s.info.worker_task == "train"]
        if training:  # fine-tunes run in their own worker, beside the conversions
            conversions.start_share(Worker("train", workdir=workdir, limits=limits, cancel=cancel), training, None)
        diagnosis = [s for s in to_convert if s.info.worker_task == "diagnose"]
        # The diagnosis converts from the export: its worker loads TensorFlow now and starts once exported.
        diagnoser = Worker("diagnose", workdir=workdir, limits=limits, cancel=cancel) if diagnosis else None
        state.update(summary=summary, data_report=data_report, chosen=chosen, task=task, context=context,
                     to_convert=to_convert, evaluator=evaluator, conversions=conversions,
                     post_training=[s for s in to_convert if s.info.worker_task == "convert"],
                     after_export=[(diagnoser, diagnosis)] if diagnoser else [])

    export_dir: str | None = None
    export_s = 0.0
    progress({"stage": "inspecting"})
    try:
        if tflite_source:
            plan(inspect(local_model, workdir, limits))
            state["conversions"].start_share(helper, state["post_training"], None)
        else:
            assert preparer is not None
            preparer.send({"model_path": str(local_model.resolve()), "workdir": str(workdir.resolve())}, more=True)
            current: dict[str, str] = {}

            def on_prepare(event: dict[str, Any]) -> None:
                nonlocal export_dir, export_s
                stage = event.get("stage")
                if stage == "inspected":
                    plan(event["summary"])  # the child exports meanwhile
                    state["shares"] = _split_conversions(state["post_training"])
                    own_share = state["shares"][0]
                    state["conversions"].specs.update({s.name: s for s in own_share})
                    preparer.send_more({**state["conversions"].payload, "specs": [s.to_dict() for s in own_share]})
                    return
                if stage == "exported":
                    export_dir, export_s = event["export_dir"], event["export_s"]
                    if fmt is ModelFormat.SAVED_MODEL_ZIP:
                        state["context"].saved_model_dir = str(Path(export_dir).relative_to(out_dir.resolve()))
                    state["conversions"].start_share(helper, state["shares"][1], export_dir)
                    for worker, share in state["after_export"]:
                        state["conversions"].start_share(worker, share, export_dir)
                elif "conversions" in state:
                    state["conversions"].track(event, current)
                progress(event)

            try:
                preparer.wait(on_prepare)
            except OptimizerError as exc:
                if "conversions" not in state:
                    raise  # the model or the data was refused: nothing ran
                if export_dir is None:  # no export: no post-training variant can be converted
                    helper.abort()
                    for worker, _ in state["after_export"]:
                        worker.abort()
                    state["conversions"].fail_unfinished(state["post_training"], exc if not isinstance(
                        exc, WorkerFailed) else VariantFailed(f"export failed: {exc}"), {})
                else:
                    state["conversions"].fail_unfinished(state["shares"][0], exc, current)
    except BaseException:
        helper.abort()
        if preparer is not None:
            preparer.abort()
        if "evaluator" in state:
            state["evaluator"].close_and_wait()
            state["context"].close_spares()
        raise
    context, rows, chosen = state["context"], state["context"].rows, state["chosen"]
    summary, data_report, task = state["summary"], state["data_report"], state["task"]
    try:
        try:
            state["conversions"].finish(state["to_convert"], export_dir)
        finally:
            state["evaluator"].close_and_wait()
        for spec in state["to_convert"]:
            if rows[spec.name]["status"] == "ok":
                try:
                    context.benchmark(spec)
                except Exception as exc:  # noqa: BLE001 - any error fails this variant only
                    context.fail_unexpectedly(spec, "benchmarking", exc)
    finally:
        context.close_spares()

    ordered = [rows[s.name] for s in chosen]
    _add_relative_columns(ordered)
    _flag_collapsed_training(ordered)
    _add_statistics(ordered, context)
    manifest = {
        "created_at": started_at,
        "wall_time_s": round(time.perf_counter() - wall_start, 3),
        "model": {k: summary[k] for k in ("file_name", "format", "source", "file_size_bytes", "sha256",
                                          "parameter_count", "inputs", "outputs")},
        "data": {k: v for k, v in data_report.items() if not k.endswith("_path")},
        "task": task.value if task else None,
        "options": {**asdict(options), "task": task.value if task else None, "limits": asdict(options.limits)},
        "variants": [s.to_dict() for s in chosen],
        "export_s": export_s,
        "conversion_workers": 1 if tflite_source or len(state["post_training"]) < 2 else 2,
        "warm_start": warm_start,  # TensorFlow workers started before the run (a server's standby)
        "versions": package_versions(),
        "cpu": cpu_name(),
        "threads": options.threads,
        "seeds": {"split": options.seed, "synthetic_inputs": options.seed},
        "kinds": {str(k): KINDS[k].summary for k in {s.kind for s in chosen}},
    }
    files = save_results(ordered, manifest, out_dir)
    progress({"stage": "done"})
    return RunResult(rows=ordered, manifest=manifest, out_dir=out_dir, files=files)


def _split_conversions(specs: list[VariantSpec]) -> tuple[list[VariantSpec], list[VariantSpec]]:
    """Two shares of about equal work for the two conversion workers. float32 goes first in the first share
    (every fidelity figure waits for its outputs); a conversion family stays whole, so its members share one
    float conversion and calibration; the rest is balanced largest first, counting a conversion as 1, a
    calibration as 1 more and each further family member as 0.3; kinds slow to evaluate go early."""
    units: list[list[VariantSpec]] = []
    families: dict[tuple[str, str], list[VariantSpec]] = {}
    for spec in specs:
        key = (spec.info.conversion_family, json.dumps(spec.options, sort_keys=True))
        if key[0] and key in families:
            families[key].append(spec)
        else:
            units.append(families.setdefault(key, [spec]) if key[0] else [spec])

    def cost(unit: list[VariantSpec]) -> float:
        return 1 + unit[0].info.needs_calibration + 0.3 * (len(unit) - 1)

    shares: list[list[VariantSpec]] = [[], []]
    loads = [0.0, 0.0]
    for unit in sorted(units, key=lambda u: (u[0].kind is not VariantKind.FLOAT32, -cost(u))):
        target = 0 if unit[0].kind is VariantKind.FLOAT32 else loads.index(min(loads))
        shares[target].extend(unit)
        loads[target] += cost(unit)
    order = {spec.name: index for index, spec in enumerate(specs)}
    for share in shares:
        share.sort(key=lambda s: (s.kind is not VariantKind.FLOAT32, not s.info.slow_to_run, order[s.name]))
    return shares[0], shares[1]


def _choose_variants(specs: list[VariantSpec] | None, source: SourceFormat) -> list[VariantSpec]:
    """The requested variants (default: every kind for the source), float32 first as the reference."""
    chosen = list(specs or [VariantSpec(kind) for kind in default_kinds(source)])
    if VariantKind.FLOAT32 not in {s.kind for s in chosen}:
        chosen.insert(0, VariantSpec(VariantKind.FLOAT32))
    names = [s.name for s in chosen]
    if len(set(names)) != len(names):
        raise InvalidOption(f"variant names must be unique; found {names}")
    return sorted(chosen, key=lambda s: s.kind is not VariantKind.FLOAT32)


def _add_statistics(rows: list[dict[str, Any]], context: _RunContext) -> None:
    """Against float32: is the accuracy change real (McNemar, bootstrap), is the latency change real (median
    intervals), and which evaluation samples flipped class."""
    outputs_dir = context.workdir / "outputs"
    reference = next((r for r in rows if r["kind"] == VariantKind.FLOAT32.value and r["status"] == "ok"), None)
    labels_path = context.data_report.get("eval_labels_path")
    labels = np.load(labels_path, allow_pickle=False) if labels_path and context.task is Task.CLASSIFICATION else None
    reference_outputs = None
    if reference is not None and (outputs_dir / f"{reference['variant']}.npy").exists():
        reference_outputs = np.load(outputs_dir / f"{reference['variant']}.npy", allow_pickle=False)
    for row in rows:
        if row["status"] != "ok":
            continue
        try:
            _row_statistics(row, reference, reference_outputs, labels, outputs_dir, context.options.seed)
        except Exception as exc:  # noqa: BLE001 - the variant stays measured; its statistics say why not
            row["statistics_error"] = f"{type(exc).__name__}: {exc}"[:300]


def _row_statistics(row: dict[str, Any], reference: dict[str, Any] | None, reference_outputs: np.ndarray | None,
                    labels: np.ndarray | None, outputs_dir: Path, seed: int) -> None:
    """One variant's latency intervals and verdict, prediction flips and accuracy significance."""
    from optimizer.measure.evaluate import predicted_classes
    from optimizer.measure.stats import accuracy_significance, compare_latency, median_interval, prediction_flips

    if row.get("timings_ms"):
        low, high = median_interval(row["timings_ms"])
        row.update(latency_ms_p50_ci_low=low, latency_ms_p50_ci_high=high)
        if reference is not None and row is not reference and reference.get("timings_ms"):
            row["latency_verdict"] = compare_latency(reference["timings_ms"], row["timings_ms"])
    path = outputs_dir / f"{row['variant']}.npy"
    if row is reference or reference_outputs is None or not path.exists():
        return
    outputs = np.load(path, allow_pickle=False)
    if reference_outputs.reshape(len(reference_outputs), -1).shape[1] < 2:
        return
    reference_predicted, predicted = predicted_classes(reference_outputs), predicted_classes(outputs)
    flips = prediction_flips(reference_predicted, predicted, labels)
    row.update(flips=flips.count, flips_by_class=flips.by_true_class, flip_indices=flips.indices)
    if labels is not None:
        row.update(accuracy_significance(reference_predicted == labels, predicted == labels, seed=seed))


def _add_relative_columns(rows: list[dict[str, Any]]) -> None:
    """Size ratio and accuracy delta against the float32 row, when it succeeded."""
    reference = next((r for r in rows if r["kind"] == VariantKind.FLOAT32.value and r["status"] == "ok"), None)
    if reference is None:
        return
    for row in rows:
        if row.get("size_bytes") and reference.get("size_bytes"):
            row["size_ratio"] = row["size_bytes"] / reference["size_bytes"]
        if row.get("accuracy") is not None and reference.get("accuracy") is not None:
            row["accuracy_delta"] = row["accuracy"] - reference["accuracy"]


COLLAPSE_POINTS = 10.0  # a training variant more accuracy points than this below its reference is flagged


def _flag_collapsed_training(rows: list[dict[str, Any]], points: float = COLLAPSE_POINTS) -> None:
    """A training variant whose accuracy falls more than ``points`` below the fine-tune control's (without a
    control, float32's) is never shown as a plain ok: like a false integer-only claim, its status stays ok
    and its error holds the sentence."""
    measured = [r for r in rows if r.get("status") == "ok" and r.get("accuracy") is not None]
    control = next((r for r in measured if r["kind"] == VariantKind.FINETUNE_CONTROL.value), None)
    reference = control or next((r for r in measured if r["kind"] == VariantKind.FLOAT32.value), None)
    if reference is None:
        return
    against = "the fine-tune control" if reference is control else "float32"
    for row in measured:
        if row is reference or row["kind"] not in {k for k, info in KINDS.items() if info.needs_training}:
            continue
        if (reference["accuracy"] - row["accuracy"]) * 100 > points:
            sentence = f"accuracy collapsed: {row['accuracy']:.1%} vs {reference['accuracy']:.1%} for {against}"
            row["error"] = f"{row['error']}; {sentence}" if row.get("error") else sentence
