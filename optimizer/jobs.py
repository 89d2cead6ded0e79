"""Background jobs: a queue in the run store, a scheduler that starts one runner process per job, and the
runner itself (``python -m optimizer.jobs RUNS_DIR RUN_ID``, or ``RUNS_DIR --standby`` for a runner started
before its job: it starts its TensorFlow workers at once and reads the run id from stdin).

The app (or any caller) only submits and reads; the heavy work happens in the runner and its workers, so
the caller stays responsive, survives a crashed job, and finds the job again after a page reload. At most
``max_running`` jobs run at once (default one: a benchmark wants the CPU to itself); the rest wait in order.
With ``warm=True`` the scheduler keeps one standby runner, started only while no job runs (its imports must
not disturb a measurement), which takes the next job without waiting for TensorFlow to import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optimizer.errors import InvalidOption, OptimizerError, user_message
from optimizer.evaluate import Task
from optimizer.intake import file_sha256
from optimizer.pipeline import RunOptions, WarmWorkers, run_comparison
from optimizer.store import RunStore
from optimizer.variants import VariantSpec


@dataclass(frozen=True)
class JobRequest:
    """What to run: input files (copied into the job folder on submit), variants and options."""

    model: str
    data: str | None = None
    labels: str | None = None
    calib: str | None = None
    eval_data: str | None = None
    variants: list[dict[str, Any]] = field(default_factory=list)
    threads: int = 1
    timed_runs: int = 50
    warmup_runs: int = 10
    task: str | None = None
    seed: int = 0

    def options(self) -> RunOptions:
        return RunOptions(threads=self.threads, timed_runs=self.timed_runs, warmup_runs=self.warmup_runs,
                          task=Task(self.task) if self.task else None, seed=self.seed)

    def specs(self) -> list[VariantSpec] | None:
        return [VariantSpec.from_dict(v) for v in self.variants] or None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        return cls(**data)


_INPUT_FIELDS = ("model", "data", "labels", "calib", "eval_data")


def submit(store: RunStore, request: JobRequest, session: str | None = None) -> str:
    """Validate the request, copy its inputs into a new job folder and queue it; returns the run id."""
    request.options()  # validates threads/runs
    request.specs()  # validates variant specs
    sources = {name: getattr(request, name) for name in _INPUT_FIELDS if getattr(request, name)}
    for name, value in sources.items():
        if not Path(value).is_file():
            raise InvalidOption(f"{name}: expected a file; found nothing at {value}")
    inputs = {name: {"name": Path(value).name, "sha256": file_sha256(Path(value)),
                     "size_bytes": Path(value).stat().st_size} for name, value in sources.items()}
    run_id = store.create(Path(request.model).name, inputs, request.to_dict(), session=session)
    input_dir = store.job_dir(run_id) / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    local: dict[str, str] = {}
    for name, value in sources.items():
        target = input_dir / f"{name}-{Path(value).name}" if name != "model" else input_dir / Path(value).name
        shutil.copyfile(value, target)
        local[name] = str(target)
    store.update(run_id, status="queued", progress={"stage": "queued", "variants": {}},
                 manifest={"request": {**request.to_dict(), **local}})
    return run_id


class _ProgressRecorder:
    """Folds worker events into one progress document per run, written at most a few times a second."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.state: dict[str, Any] = {"stage": "starting", "variants": {}, "log": []}
        self._last_write = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        stage = str(event.get("stage", ""))
        variant = event.get("variant") or (event.get("outcome") or {}).get("name")
        if variant:
            entry = self.state["variants"].setdefault(variant, {})
            entry["stage"] = stage
            if stage == "converted" and event["outcome"].get("status") != "ok":
                entry.update(stage="failed", error=event["outcome"].get("error"))
            if "status" in event:
                entry["status"] = event["status"]
            for key in ("epoch", "epochs"):
                if key in event:
                    entry[key] = event[key]
        else:
            self.state["stage"] = stage
        self.state["log"] = (self.state["log"] + [f"{time.strftime('%H:%M:%S')} {stage} {variant or ''}".strip()])[-50:]
        now = time.monotonic()
        if now - self._last_write > 0.3 or stage in ("done", "measured", "converted"):
            self.flush()
            self._last_write = now

    def flush(self) -> None:
        self.store.update(self.run_id, progress=self.state)


def run_job(store: RunStore, run_id: str, warm: WarmWorkers | None = None) -> None:
    """Run one queued job to its end; every outcome is written to the store (never raised)."""
    record = store.get(run_id)
    if record is None:
        return
    request = JobRequest.from_dict(record["options"])
    local = record["manifest"]["request"]
    store.update(run_id, status="running", runner_pid=os.getpid())
    cancel = threading.Event()
    stop_watch = threading.Event()

    def watch_cancel() -> None:
        while not stop_watch.wait(0.5):
            current = store.get(run_id)
            if current is None or current["cancel_requested"]:
                cancel.set()
                return

    threading.Thread(target=watch_cancel, daemon=True).start()
    recorder = _ProgressRecorder(store, run_id)
    try:
        result = run_comparison(
            Path(local["model"]), store.job_dir(run_id), request.specs(),
            data=_path(local.get("data")), labels=_path(local.get("labels")), calib=_path(local.get("calib")),
            eval_data=_path(local.get("eval_data")), options=request.options(), on_progress=recorder, cancel=cancel,
            warm=warm)
        recorder.flush()
        manifest = {**result.manifest, "request": local}
        status = "cancelled" if cancel.is_set() else "done"
        store.update(run_id, rows=result.rows, manifest=manifest, status=status,
                     error="cancelled by the user" if cancel.is_set() else None)
    except OptimizerError as exc:
        recorder.flush()
        store.update(run_id, status="cancelled" if cancel.is_set() else "failed", error=user_message(exc))
    except Exception as exc:  # noqa: BLE001 - the job fails with a reason; the runner never leaves it running
        recorder.flush()
        store.update(run_id, status="failed", error=f"Unexpected error ({type(exc).__name__}): {exc}"[:500])
    finally:
        stop_watch.set()


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


class Scheduler:
    """Starts queued jobs as runner processes, at most ``max_running`` at a time, and notices runners that
    die. Created once per server process; on creation, jobs left active by an earlier server are marked
    interrupted (their runner died with it)."""

    def __init__(self, store: RunStore, max_running: int = 1, poll_s: float = 0.5, warm: bool = False) -> None:
        if max_running < 1:
            raise InvalidOption(f"max_running: expected at least 1; found {max_running}")
        self.store, self.max_running, self.poll_s, self.warm = store, max_running, poll_s, warm
        self.server_id = uuid.uuid4().hex
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._standby: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        for record in store.list(limit=10_000, status=("queued", "running")):
            store.finish_if_active(record["id"], "interrupted",
                                   "interrupted: the server stopped before this run finished")
        self._thread = threading.Thread(target=self._loop, name="job-scheduler", daemon=True)
        self._thread.start()

    def running_pids(self) -> dict[str, int]:
        with self._lock:
            return {run_id: process.pid for run_id, process in self._running.items()}

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        with self._lock:
            if self._standby is not None:
                _stop_process(self._standby)
                self._standby = None

    def wake(self) -> None:
        """Look at the queue now (after a submit) instead of at the next poll."""
        self._wake.set()

    def standby_pid(self) -> int | None:
        with self._lock:
            return self._standby.pid if self._standby is not None else None

    def standby_ready(self) -> bool:
        """A standby runner is waiting with TensorFlow loaded: the next job starts without the import."""
        with self._lock:
            standby = self._standby
        return standby is not None and standby.poll() is None and \
            (standby_dir(self.store, standby.pid) / "ready").exists()

    def tick(self) -> None:
        """Reap finished runners, then start queued jobs while there is a free slot."""
        with self._lock:
            for run_id, process in list(self._running.items()):
                code = process.poll()
                if code is None:
                    continue
                del self._running[run_id]
                if code != 0:
                    reason = (f"killed by {signal.Signals(-code).name}" if code < 0 and -code in
                              signal.Signals._value2member_map_ else f"exit code {code}")
                    self.store.finish_if_active(run_id, "failed", f"the job's worker process stopped ({reason})")
                else:
                    self.store.finish_if_active(run_id, "failed", "the job's worker process ended without a result")
            free = self.max_running - len(self._running)
            if free <= 0:
                return
            if self._standby is not None and self._standby.poll() is not None:
                self._standby = None  # it died while waiting; a new one starts when the machine is idle
            queued = list(reversed(self.store.list(limit=10_000, status=("queued",))))
            for record in queued[:free]:
                process = self._take_standby(record["id"]) or self._start_runner(record["id"])
                self._running[record["id"]] = process
                self.store.update(record["id"], status="running", runner_pid=process.pid, server_id=self.server_id)
            if self.warm and self._standby is None and not self._running and not queued:
                self._standby = self._start_runner(None)

    def _start_runner(self, run_id: str | None) -> subprocess.Popen[bytes]:
        if run_id is None:
            folder = self.store.root / "standby"
            folder.mkdir(parents=True, exist_ok=True)
            log_path = folder / "standby-runner.log"
        else:
            log_path = self.store.job_dir(run_id) / "runner.log"
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "optimizer.jobs", str(self.store.root), run_id or "--standby"],
                stdout=log, stderr=log, stdin=subprocess.PIPE if run_id is None else subprocess.DEVNULL,
                start_new_session=True, cwd=Path(__file__).resolve().parent.parent)

    def _take_standby(self, run_id: str) -> subprocess.Popen[bytes] | None:
        """Hand the job to the standby runner, if one is alive; it stops being the standby."""
        standby, self._standby = self._standby, None
        if standby is None or standby.poll() is not None or standby.stdin is None:
            return None
        try:
            standby.stdin.write(f"{run_id}\n".encode())
            standby.stdin.close()
        except (BrokenPipeError, ValueError):
            _stop_process(standby)
            return None
        return standby

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            with contextlib.suppress(Exception):  # a transient DB error must not stop the scheduler
                self.tick()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a standby runner: closing its stdin tells it no job comes; killing is the fallback."""
    with contextlib.suppress(OSError, ValueError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


STANDBY_READY_TIMEOUT_S = 300.0


def standby_dir(store: RunStore, pid: int) -> Path:
    return store.root / "standby" / str(pid)


def standby(store: RunStore) -> int:
    """Start the TensorFlow workers and the statistics imports now, mark the folder ready once they are
    loaded, then run the job whose id arrives on stdin (nothing arriving: stop, having run nothing)."""
    import importlib

    folder = standby_dir(store, os.getpid())
    warm = WarmWorkers.start(folder)

    def mark_ready() -> None:
        importlib.import_module("optimizer.stats")  # scipy, for the statistics at the end of a run
        if warm.wait_ready(STANDBY_READY_TIMEOUT_S):
            (folder / "ready").touch()

    threading.Thread(target=mark_ready, daemon=True).start()
    run_id = sys.stdin.readline().strip()
    try:
        if not run_id:
            warm.abort()
            return 0
        log = os.open(store.job_dir(run_id) / "runner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)  # from here on this runner's output belongs to the job
        os.dup2(log, 2)
        run_job(store, run_id, warm)
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    store = RunStore(Path(argv[0]))
    if argv[1] == "--standby":
        return standby(store)
    run_job(store, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
