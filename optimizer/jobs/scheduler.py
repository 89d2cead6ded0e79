"""The scheduler: starts queued jobs as runner processes (``python -m optimizer.jobs.runner``), keeps one
warm standby runner while the machine is idle, notices runners that die, and does the housekeeping.

Several schedulers (several servers on one runs folder) share the work safely through the store: each job is
claimed by exactly one of them, and the folder-wide limit of running jobs holds whoever started them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

from optimizer.errors import InvalidOption, user_message
from optimizer.jobs.runner import standby_dir
from optimizer.jobs.store import Retention, RunStore, unwritable
from optimizer.paths import PROJECT_ROOT

HOUSEKEEPING_S = 600.0


class Scheduler:
    """Starts queued jobs as runner processes and notices runners that die. Created once per server process.

    Several schedulers (several servers on one runs folder) share the work safely: each job is claimed by
    exactly one of them in one store transaction, at most ``max_running`` jobs of the folder run at once
    whoever started them, and only a run whose runner is gone or silent is marked interrupted. A runner
    outlives its server (it finishes its job and records it; a restarted server counts it as running), while
    the standby runner, which holds no job yet, dies with the server."""

    def __init__(self, store: RunStore, max_running: int = 1, poll_s: float = 0.5, warm: bool = False,
                 retention: Retention | None = None) -> None:
        if max_running < 1:
            raise InvalidOption(f"max_running: expected at least 1; found {max_running}")
        self.store, self.max_running, self.poll_s, self.warm = store, max_running, poll_s, warm
        self.retention = retention
        self._last_housekeeping = -HOUSEKEEPING_S
        self.server_id = uuid.uuid4().hex
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._standby: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        store.reap_dead()  # runs whose runner died with an earlier server
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

    def wait_for_standby(self, timeout_s: float) -> bool:
        """Wait until a standby runner has TensorFlow loaded (False when none is ready within the timeout)."""
        deadline = time.monotonic() + timeout_s
        while not self.standby_ready():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def tick(self) -> None:
        """Reap this server's finished runners, then claim and start queued jobs while the folder-wide limit
        allows; keep a standby only while no job of the folder runs or waits."""
        with self._lock:
            self._reap_own()
            if self._standby is not None and self._standby.poll() is not None:
                self._standby = None  # it died while waiting; a new one starts when the machine is idle
            while (record := self.store.claim_next(self.server_id, self.max_running)) is not None:
                self._start_claimed(record["id"])
            idle = not self._running and self.store.running_count() == 0 and \
                not self.store.list(limit=1, status=("queued",))
            if self.warm and self._standby is None and idle:
                self._standby = self._start_runner(None)
        self._housekeeping()

    def _housekeeping(self) -> None:
        """Now and then: apply the retention policy and remove uploads no live session uses."""
        now = time.monotonic()
        if self.retention is None or now - self._last_housekeeping < HOUSEKEEPING_S:
            return
        self._last_housekeeping = now
        self.store.enforce_retention(self.retention)
        self.store.clean_uploads()

    def _reap_own(self) -> None:
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

    def _start_claimed(self, run_id: str) -> None:
        try:
            process = self._take_standby(run_id) or self._start_runner(run_id)
        except OSError as exc:
            self.store.finish_if_active(run_id, "failed", user_message(unwritable(self.store.root, exc)))
            return
        self._running[run_id] = process
        self.store.heartbeat(run_id, process.pid)

    def _start_runner(self, run_id: str | None) -> subprocess.Popen[bytes]:
        if run_id is None:
            folder = self.store.root / "standby"
            folder.mkdir(parents=True, exist_ok=True)
            log_path = folder / "standby-runner.log"
            command = [str(self.store.root), "--standby", str(os.getpid())]
        else:
            log_path = self.store.job_dir(run_id) / "runner.log"
            command = [str(self.store.root), run_id]
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "optimizer.jobs.runner", *command],
                stdout=log, stderr=log, stdin=subprocess.PIPE if run_id is None else subprocess.DEVNULL,
                start_new_session=True, cwd=PROJECT_ROOT)

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


