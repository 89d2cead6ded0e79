"""A job from submit to its final state: the request, its publication in the store, and the runner process
(``python -m optimizer.jobs.runner RUNS_DIR RUN_ID``, or ``RUNS_DIR --standby SERVER_PID`` for a runner
started before its job: it starts its TensorFlow workers at once and reads the run id from stdin).

The app (or any caller) only submits and reads; the heavy work happens in the runner and its workers, so
the caller stays responsive, survives a crashed job, and finds the job again after a page reload. The
scheduler (:mod:`optimizer.jobs.scheduler`) decides when a runner starts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optimizer.distributed import cluster_address, run_points
from optimizer.errors import InvalidOption, OptimizerError, folder_problem, user_message
from optimizer.intake.model import file_sha256, model_format, source_of
from optimizer.jobs.store import HEARTBEAT_S, RunStore, new_run_id, unwritable
from optimizer.paths import default_cache_dir
from optimizer.records import ProgressEvent, Stage, check_known_fields
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import RunInputs, WarmWorkers, run_comparison
from optimizer.search import SearchRequest, run_search
from optimizer.variants import VariantSpec


@dataclass(frozen=True)
class JobRequest:
    """What to run: the input files (copied into the job folder on submit), the variants and the run's
    options, the same :class:`RunOptions` the command line builds."""

    model: str
    data: str | None = None
    labels: str | None = None
    calib: str | None = None
    eval_data: str | None = None
    variants: list[dict[str, Any]] = field(default_factory=list)
    options: RunOptions = field(default_factory=RunOptions)
    search: dict[str, Any] | None = None  # a budget-driven search (SearchRequest.to_dict) instead of the variants

    def specs(self) -> list[VariantSpec] | None:
        return [VariantSpec.from_dict(v) for v in self.variants] or None

    def to_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in _INPUT_FIELDS}, "variants": list(self.variants),
                "options": self.options.to_dict(), **({"search": self.search} if self.search else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        """From a stored request; one queued before RunOptions were nested (threads, seed, ... at the top
        level) is read too."""
        flat = {k: data[k] for k in _LEGACY_OPTION_FIELDS if k in data}
        data = {k: v for k, v in data.items() if k not in flat}
        check_known_fields(cls, data, "job request")
        options = RunOptions.from_dict({**flat, **(data.get("options") or {})})
        return cls(**{**data, "options": options})


_LEGACY_OPTION_FIELDS = ("threads", "timed_runs", "warmup_runs", "task", "seed", "label_column", "eval_fraction")
_INPUT_FIELDS = ("model", "data", "labels", "calib", "eval_data")


def _request_key(request: JobRequest, inputs: dict[str, dict[str, Any]]) -> str:
    """Same input contents and same options: the same run (file paths do not matter)."""
    options = {k: v for k, v in request.to_dict().items() if k not in _INPUT_FIELDS}
    contents = {name: entry["sha256"] for name, entry in inputs.items()}
    return hashlib.sha256(json.dumps([contents, options], sort_keys=True, default=str).encode()).hexdigest()


def submit(store: RunStore, request: JobRequest, session: str | None = None) -> str:
    """Validate the request, copy its inputs into a new job folder, then publish it as queued in one insert
    (a runner never sees a run whose files are not written yet). Returns the run id; while a run of the same
    inputs and options is queued or running, returns that run's id instead of queuing a duplicate.

    Raises InvalidOption for a bad request and StoreUnavailable when the runs folder cannot be written."""
    request.specs()  # validates variant specs (the options validated themselves)
    if request.search is not None:
        SearchRequest.from_dict(request.search)
    sources = {name: getattr(request, name) for name in _INPUT_FIELDS if getattr(request, name)}
    for name, value in sources.items():
        if not Path(value).is_file():
            raise InvalidOption(f"{name}: expected a file; found nothing at {value}")
    inputs = {name: {"name": Path(value).name, "sha256": file_sha256(Path(value)),
                     "size_bytes": Path(value).stat().st_size} for name, value in sources.items()}
    key = _request_key(request, inputs)
    existing = store.find_active(key)
    if existing is not None:
        return existing
    run_id = new_run_id()
    folder = store.job_dir(run_id)
    local: dict[str, str] = {}
    try:
        input_dir = folder / "input"
        input_dir.mkdir(parents=True)
        for name, value in sources.items():
            target = input_dir / f"{name}-{Path(value).name}" if name != "model" else input_dir / Path(value).name
            shutil.copyfile(value, target)
            local[name] = str(target)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise unwritable(store.root, exc) from exc
    try:
        published = store.create(Path(request.model).name, inputs, request.to_dict(), session=session,
                                 run_id=run_id, manifest={"request": {**request.to_dict(), **local}},
                                 request_key=key)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if published != run_id:  # an identical run was published meanwhile
        shutil.rmtree(folder, ignore_errors=True)
    return published


class _ProgressRecorder:
    """Folds worker events into one progress document per run, written at most a few times a second."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.state: dict[str, Any] = {"stage": "starting", "variants": {}, "log": []}
        self._last_write = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        stage, variant = str(event.stage), event.variant
        if variant:
            entry = self.state["variants"].setdefault(variant, {})
            entry["stage"] = stage
            outcome = event.details.get("outcome") or {}
            if event.stage is Stage.CONVERTED and outcome.get("status") != "ok":
                entry.update(stage=str(Stage.FAILED), error=outcome.get("error"))
            entry.update({k: v for k, v in (("status", event.status), ("epoch", event.epoch),
                                            ("epochs", event.epochs)) if v is not None})
        else:
            self.state["stage"] = stage
        self.state["log"] = (self.state["log"] + [f"{time.strftime('%H:%M:%S')} {stage} {variant or ''}".strip()])[-50:]
        now = time.monotonic()
        if now - self._last_write > 0.3 or event.stage in (Stage.DONE, Stage.MEASURED, Stage.CONVERTED):
            self.flush()
            self._last_write = now

    def trial(self, event: dict[str, Any], trials: int) -> None:
        """One finished trial of a search (its outcome, the count of the total)."""
        search = self.state.setdefault("search", {"trials": trials, "done": []})
        search["done"] = [*search["done"], event][-200:]
        self.flush()

    def flush(self) -> None:
        self.store.update(self.run_id, progress=self.state)


def _startable(store: RunStore, run_id: str) -> tuple[JobRequest, dict[str, str]] | None:
    """The claimed run's request and local input paths, or None after failing it with the reason."""
    record = store.get(run_id)
    if record is None:
        print(f"run {run_id}: not in the store; nothing to run", file=sys.stderr)
        return None
    if record["status"] != "running":
        print(f"run {run_id}: {record['status']}, not claimed for running; nothing to run", file=sys.stderr)
        return None
    local = (record["manifest"] or {}).get("request")
    try:
        request = JobRequest.from_dict(record["options"] or {})
        if not isinstance(local, dict) or not local.get("model"):
            raise InvalidOption("its request names no model file in the job folder")
        missing = [f"{name} ({Path(local[name]).name})" for name in _INPUT_FIELDS
                   if local.get(name) and not Path(local[name]).is_file()]
        if missing:
            raise InvalidOption(f"its input files are missing from the job folder: {', '.join(missing)}")
    except (InvalidOption, TypeError, ValueError) as exc:
        store.finish_if_active(run_id, "failed", f"the run could not start: {exc}")
        return None
    return request, local


def _keep_alive(store: RunStore, run_id: str, cancel: threading.Event, stop: threading.Event) -> None:
    """Heartbeat (so no server takes this live run for dead) and the user's cancel request; a run that is no
    longer running in the store (marked interrupted while this runner was stalled) is stopped too, so it never
    computes beside the job that took its place."""
    last_beat = 0.0
    while not stop.wait(0.5):
        with contextlib.suppress(Exception):  # a busy or full database must not end the watch
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_S:
                store.heartbeat(run_id, os.getpid())
                last_beat = now
            current = store.get(run_id)
            if current is None or current["cancel_requested"] or current["status"] != "running":
                cancel.set()


def run_job(store: RunStore, run_id: str, warm: WarmWorkers | None = None) -> None:
    """Run one claimed job to its end; every outcome is written to the store (raises only when the store
    itself cannot be written). A final status is written once: a run already final (e.g. interrupted) is
    never flipped back."""
    startable = _startable(store, run_id)
    if startable is None:
        if warm is not None:
            warm.abort()
        return
    request, local = startable
    print(f"runner {os.getpid()} starts run {run_id}", flush=True)
    cancel, stop_watch = threading.Event(), threading.Event()
    recorder = _ProgressRecorder(store, run_id)
    job_dir = store.job_dir(run_id)
    try:
        store.heartbeat(run_id, os.getpid())
        threading.Thread(target=_keep_alive, args=(store, run_id, cancel, stop_watch), daemon=True).start()
        options = request.options
        if options.cache_dir is None and (store_dir := default_cache_dir(store.root)) is not None:
            options = replace(options, cache_dir=str(store_dir))  # the runs folder's variant store
        inputs = RunInputs(Path(local["model"]), *(_path(local.get(name)) for name in _INPUT_FIELDS[1:]))
        if request.search is not None:
            rows, manifest = _search(inputs, SearchRequest.from_dict(request.search), options, job_dir, recorder,
                                     cancel, warm)
        elif (address := cluster_address(None)) is not None and request.variants:
            if warm is not None:
                warm.abort()
            result = run_points(inputs, options, address, request.specs() or [], job_dir, recorder, cancel)
            rows, manifest = result.rows, result.manifest
        else:
            result = run_comparison(inputs.model, job_dir, request.specs(), data=inputs.data, labels=inputs.labels,
                                    calib=inputs.calib, eval_data=inputs.eval_data, options=options,
                                    on_progress=recorder, cancel=cancel, warm=warm)
            rows, manifest = result.rows, result.manifest
        recorder.flush()
        manifest = {**manifest, "request": local}
        status = "cancelled" if cancel.is_set() else "done"
        store.update(run_id, rows=rows, manifest=manifest, status=status,
                     error="cancelled by the user" if cancel.is_set() else None)
    except OptimizerError as exc:
        _fail(store, run_id, recorder, "cancelled" if cancel.is_set() else "failed", user_message(exc))
    except OSError as exc:
        if not _folder_full_or_read_only(exc, job_dir):
            _fail(store, run_id, recorder, "failed", f"Unexpected error ({type(exc).__name__}): {exc}"[:500])
            return
        _discard_partial_results(job_dir)
        _fail(store, run_id, recorder, "failed", user_message(unwritable(store.root, exc)))
    except Exception as exc:  # noqa: BLE001 - the job fails with a reason; the runner never leaves it running
        _fail(store, run_id, recorder, "failed", f"Unexpected error ({type(exc).__name__}): {exc}"[:500])
    finally:
        stop_watch.set()


def _search(inputs: RunInputs, request: SearchRequest, options: RunOptions, job_dir: Path,
            recorder: _ProgressRecorder, cancel: threading.Event,
            warm: WarmWorkers | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A budget-driven search as a job: each batch of proposals is a run under ``job_dir/search`` (on the Ray
    cluster of $STUDIO_RAY_ADDRESS when set), each trial goes into the progress; the rows are every distinct
    measured variant (their files' paths made relative to the job folder), the manifest the last batch's plus
    the search's outcome."""
    if warm is not None:
        warm.abort()  # one warm start cannot serve several batches; each batch starts its own workers
    address, last = cluster_address(None), dict[str, Any]()

    def run_batch(specs: list[VariantSpec], folder: Path) -> list[dict[str, Any]]:
        result = run_points(inputs, options, address, specs, folder, recorder, cancel)
        last.update(result.manifest)
        prefix = folder.relative_to(job_dir)
        return [{**row, **{key: str(prefix / row[key]) for key in ("path", "recipe_path") if row.get(key)}}
                for row in result.rows]

    def on_trial(event: dict[str, Any]) -> None:
        recorder.trial(event, request.trials)

    found = run_search(request, source_of(model_format(inputs.model)), job_dir / "search", run_batch, on_trial, cancel)
    outcome = {"request": request.to_dict(), "trials": found.trials, "pareto": found.pareto,
               "pareto_within_budget": found.pareto_within_budget, "recommendation": found.recommendation.name,
               "reason": found.recommendation.reason, "shortfall": found.shortfall, "ray": address}
    return found.rows, {**last, "search": outcome}


def _folder_full_or_read_only(error: OSError, job_dir: Path) -> bool:
    """Did writing fail because the runs folder is full, over quota or read-only (not any other OSError)?"""
    return error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) or folder_problem(job_dir) is not None


def _discard_partial_results(job_dir: Path) -> None:
    """The files of a run that could not be finished for want of space: freed, so nothing looks complete."""
    for partial in ("variants", "work"):
        shutil.rmtree(job_dir / partial, ignore_errors=True)
    for partial_file in ("results.csv", "results.json", "manifest.json", "report.html"):
        with contextlib.suppress(OSError):
            (job_dir / partial_file).unlink()


def _fail(store: RunStore, run_id: str, recorder: _ProgressRecorder, status: str, error: str) -> None:
    with contextlib.suppress(Exception):
        recorder.flush()
    store.update(run_id, status=status, error=error)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


STANDBY_READY_TIMEOUT_S = 300.0


def standby_dir(store: RunStore, pid: int) -> Path:
    return store.root / "standby" / str(pid)


def _parent_death_signal(signal_number: int) -> None:
    """Linux: the signal this process gets when the thread that started it ends (0: none)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal_number)  # PR_SET_PDEATHSIG


def standby(store: RunStore, server_pid: int | None = None) -> int:
    """Start the TensorFlow workers and the statistics imports now, mark the folder ready once they are
    loaded, then run the job whose id arrives on stdin (nothing arriving: stop, having run nothing).

    While it waits, the standby dies with its server (parent-death signal); once it has a job it is a runner
    like any other and finishes that job even if the server stops."""
    import importlib

    _parent_death_signal(signal.SIGKILL)
    if server_pid is not None and os.getppid() != server_pid:
        return 0  # the server died before the signal was armed
    folder = standby_dir(store, os.getpid())
    warm = WarmWorkers.start(folder)

    def mark_ready() -> None:
        importlib.import_module("optimizer.measure.stats")  # the statistics at the end of a run
        if warm.wait_ready(STANDBY_READY_TIMEOUT_S):
            (folder / "ready").touch()

    threading.Thread(target=mark_ready, daemon=True).start()
    run_id = sys.stdin.readline().strip()
    try:
        if not run_id:
            warm.abort()
            return 0
        _parent_death_signal(0)
        log = os.open(store.job_dir(run_id) / "runner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)  # from here on this runner's output belongs to the job
        os.dup2(log, 2)
        run_job(store, run_id, warm)
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    try:
        store = RunStore(Path(argv[0]))
        if argv[1] == "--standby":
            return standby(store, int(argv[2]) if len(argv) > 2 else None)
        run_job(store, argv[1])
    except OptimizerError as exc:  # e.g. the runs folder became unwritable: one sentence in the log
        print(user_message(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
