"""The one verb that runs a comparison: intake -> data -> conversions -> measurements -> result rows.

Every step that touches the uploaded model runs in a worker (:mod:`optimizer.isolation`). A failed variant
becomes a row with its reason; only a refused model or refused data stops the run before anything ran.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.data import prepare_data
from optimizer.errors import InvalidOption, OptimizerError, WorkerFailed
from optimizer.evaluate import Task, infer_task
from optimizer.intake import check_model_file
from optimizer.isolation import DEFAULT_LIMITS, WorkerLimits, run_task
from optimizer.measure import cpu_name, file_sizes
from optimizer.results import package_versions, save_results, to_frame
from optimizer.variants import KINDS, SourceFormat, VariantKind, VariantSpec, default_kinds

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunOptions:
    threads: int = 1
    warmup_runs: int = 10
    timed_runs: int = 50
    task: Task | None = None
    seed: int = 0
    eval_fraction: float = 0.5
    label_column: str = "label"
    limits: WorkerLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 64:
            raise InvalidOption(f"threads: expected 1..64; found {self.threads}")
        if self.timed_runs < 50:
            raise InvalidOption(f"timed_runs: expected at least 50 for stable percentiles; found {self.timed_runs}")
        if self.warmup_runs < 0:
            raise InvalidOption(f"warmup_runs: expected 0 or more; found {self.warmup_runs}")


@dataclass
class RunResult:
    rows: list[dict[str, Any]]
    manifest: dict[str, Any]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return to_frame(self.rows)


def inspect(model_path: Path, workdir: Path, limits: WorkerLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Model summary from a worker; raises ModelRejected for a refused file, WorkerFailed for a crash."""
    check_model_file(model_path)
    return run_task("inspect", {"model_path": str(model_path.resolve()), "workdir": str(workdir.resolve())},
                    workdir=workdir, limits=limits)


def _convert_all(specs: list[VariantSpec], payload: dict[str, Any], workdir: Path, limits: WorkerLimits,
                 progress: ProgressCallback, cancel: threading.Event | None) -> dict[str, dict[str, Any]]:
    """Convert in one worker (one export); if it dies, the variant it was on fails and a new worker
    carries on with the rest."""
    outcomes: dict[str, dict[str, Any]] = {}
    remaining = list(specs)
    while remaining:
        current: dict[str, str] = {}

        def on_event(event: dict[str, Any], current: dict[str, str] = current) -> None:
            if event.get("stage") == "converted":
                outcome = event["outcome"]
                outcomes[outcome["name"]] = outcome
            elif event.get("stage") == "converting":
                current["name"] = event["variant"]
            progress(event)

        try:
            run_task("convert", {**payload, "specs": [s.to_dict() for s in remaining]}, workdir=workdir,
                     limits=limits, on_progress=on_event, cancel=cancel)
        except OptimizerError as exc:
            if cancel is not None and cancel.is_set():
                for spec in remaining:
                    outcomes.setdefault(spec.name, {"name": spec.name, "status": "failed", "error": "cancelled"})
                break
            culprit = current.get("name") or remaining[0].name
            if culprit in outcomes:  # died after its last report: nothing to blame, stop retrying
                culprit = next((s.name for s in remaining if s.name not in outcomes), culprit)
            outcomes[culprit] = {"name": culprit, "status": "failed", "error": str(exc)}
            if not isinstance(exc, WorkerFailed):  # a refusal (e.g. export failed) fails them all
                for spec in remaining:
                    outcomes.setdefault(spec.name, {"name": spec.name, "status": "failed", "error": str(exc)})
        remaining = [s for s in remaining if s.name not in outcomes]
    return outcomes


def _base_row(spec: VariantSpec) -> dict[str, Any]:
    return {"variant": spec.name, "kind": spec.kind.value, "label": spec.info.label, "status": "ok",
            "error": None, "expected_integer_only": spec.info.expect_integer_only}


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
) -> RunResult:
    """Produce and measure every variant of one model; writes the .tflite files and the results to out_dir."""
    progress = on_progress or (lambda event: None)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    wall_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = out_dir / "work"
    input_dir = out_dir / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    local_model = input_dir / model_path.name
    if model_path.resolve() != local_model.resolve():
        shutil.copyfile(model_path, local_model)

    progress({"stage": "inspecting"})
    summary = inspect(local_model, workdir, options.limits)
    source = SourceFormat(summary["source"])
    input_shape = summary["inputs"][0]["shape"]
    output_shape = summary["outputs"][0]["shape"]

    progress({"stage": "checking data"})
    data_report = prepare_data(workdir, input_shape, output_shape, data=data, labels=labels, calib=calib,
                               eval_data=eval_data, label_column=options.label_column,
                               eval_fraction=options.eval_fraction, seed=options.seed)
    labels_path = data_report["eval_labels_path"]
    task = options.task
    if task is None and labels_path:
        import numpy as np

        task = infer_task(np.load(labels_path, allow_pickle=False), output_shape)

    specs = specs or [VariantSpec(kind) for kind in default_kinds(source)]
    if VariantKind.FLOAT32 not in {s.kind for s in specs}:
        specs = [VariantSpec(VariantKind.FLOAT32), *specs]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InvalidOption(f"variant names must be unique; found {names}")
    specs = sorted(specs, key=lambda s: s.kind is not VariantKind.FLOAT32)  # the reference first

    rows: dict[str, dict[str, Any]] = {s.name: _base_row(s) for s in specs}
    to_convert = []
    for spec in specs:
        if source not in spec.info.sources:
            rows[spec.name].update(status="skipped", error=f"cannot be made from a {source.value} model")
        elif spec.info.needs_calibration and not data_report["calibration_path"]:
            rows[spec.name].update(status="skipped", error="needs calibration data; none was given")
        else:
            to_convert.append(spec)

    variants_dir = out_dir / "variants"
    payload = {"model_path": str(local_model.resolve()), "format": summary["format"],
               "workdir": str(workdir.resolve()), "out_dir": str(variants_dir.resolve()),
               "calibration_path": data_report["calibration_path"]}
    outcomes = _convert_all(to_convert, payload, workdir, options.limits, progress, cancel)

    outputs_dir = workdir / "outputs"
    outputs_dir.mkdir(parents=True, exist_ok=True)
    reference_path: str | None = None
    total = len(to_convert)
    for index, spec in enumerate(to_convert, start=1):
        row = rows[spec.name]
        outcome = outcomes.get(spec.name, {"status": "failed", "error": "not converted"})
        if outcome["status"] != "ok":
            row.update(status="failed", error=outcome.get("error"))
            continue
        path = Path(outcome["path"])
        row.update(path=str(path.relative_to(out_dir.resolve())) if path.is_relative_to(out_dir.resolve())
                   else str(path), conversion_s=outcome.get("conversion_s"), **file_sizes(path))
        if cancel is not None and cancel.is_set():
            row.update(status="failed", error="cancelled")
            continue
        try:
            progress({"stage": "evaluating", "variant": spec.name, "index": index, "total": total})
            outputs_path = outputs_dir / f"{spec.name}.npy"
            evaluation = run_task("evaluate", {
                "model_path": str(path), "inputs_path": data_report["eval_path"],
                "outputs_path": str(outputs_path), "threads": options.threads,
                "labels_path": labels_path if task else None, "task": task.value if task else None,
                "reference_path": reference_path if spec.kind is not VariantKind.FLOAT32 else None,
            }, workdir=workdir, limits=options.limits, cancel=cancel)
            audit = evaluation.pop("audit")
            row.update(evaluation)
            row.update(integer_only=audit["integer_only"], float_compute_ops=audit["float_compute_ops"],
                       input_dtypes=audit["input_dtypes"], output_dtypes=audit["output_dtypes"],
                       op_counts=audit["op_counts"], audit=audit)
            row["fidelity_inputs"] = "synthetic" if data_report["source"] == "synthetic" else "evaluation"
            row["metric"] = "accuracy" if "accuracy" in evaluation else "mae" if "mae" in evaluation else None
            if spec.kind is VariantKind.FLOAT32:
                reference_path = str(outputs_path)
            if spec.info.expect_integer_only and not audit["integer_only"]:
                row["error"] = (f"sold as integer-only but computes in float: "
                                f"{', '.join(audit['float_compute_ops'][:8])}")
            progress({"stage": "benchmarking", "variant": spec.name, "index": index, "total": total})
            row.update(run_task("benchmark", {
                "model_path": str(path), "sample_path": data_report["eval_path"], "threads": options.threads,
                "warmup_runs": options.warmup_runs, "timed_runs": options.timed_runs,
            }, workdir=workdir, limits=options.limits, cancel=cancel))
        except OptimizerError as exc:
            row.update(status="failed", error=str(exc))
        progress({"stage": "measured", "variant": spec.name, "index": index, "total": total,
                  "status": row["status"]})

    ordered = [rows[s.name] for s in specs]
    _add_relative_columns(ordered)
    manifest = {
        "created_at": started_at,
        "wall_time_s": round(time.perf_counter() - wall_start, 3),
        "model": {k: summary[k] for k in ("file_name", "format", "source", "file_size_bytes", "sha256",
                                          "parameter_count", "inputs", "outputs")},
        "data": {k: v for k, v in data_report.items() if not k.endswith("_path")},
        "task": task.value if task else None,
        "options": {**asdict(options), "task": task.value if task else None,
                    "limits": asdict(options.limits)},
        "variants": [s.to_dict() for s in specs],
        "export_s": next((o.get("export_s") for o in outcomes.values() if "export_s" in o), None),
        "versions": package_versions(),
        "cpu": cpu_name(),
        "threads": options.threads,
        "seeds": {"split": options.seed, "synthetic_inputs": options.seed},
        "kinds": {k.value: KINDS[k].summary for k in {s.kind for s in specs}},
    }
    files = save_results(ordered, manifest, out_dir)
    progress({"stage": "done"})
    return RunResult(rows=ordered, manifest=manifest, out_dir=out_dir, files=files)


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
