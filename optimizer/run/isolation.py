"""Run one task of :mod:`optimizer.run.worker` in a child process with a memory limit and a timeout.

Parsing, converting or running an uploaded model can crash or hang the runtime (see stack notes), so it
never happens in the caller's process. The child gets its own session (its whole group is killed on
timeout or cancel), ``RLIMIT_AS`` for memory, and reports progress and its result as JSON lines on a
dedicated pipe, so runtime chatter on stdout/stderr cannot corrupt the protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.errors import OptimizerError, WorkerFailed
from optimizer.paths import PROJECT_ROOT

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class WorkerLimits:
    memory_bytes: int = 8 * 1024**3
    timeout_s: float = 1800.0


DEFAULT_LIMITS = WorkerLimits()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = "-1"  # there is no GPU; skip the probing noise
    env["PYTHONUNBUFFERED"] = "1"
    project_root = str(PROJECT_ROOT)
    env["PYTHONPATH"] = project_root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _reader(stream: Any, sink: queue.Queue[dict[str, Any] | None], ready: threading.Event) -> None:
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("type") == "ready":
            ready.set()
        else:
            sink.put(event)
    sink.put(None)


def _describe_exit(task: str, returncode: int, log_tail: str, limits: WorkerLimits) -> str:
    memory_gib = limits.memory_bytes / 1024**3
    from optimizer.run.worker import MEMORY_MARKERS

    if any(marker in log_tail for marker in MEMORY_MARKERS):
        return f"the {task} worker ran out of memory (limit {memory_gib:.1f} GiB)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the {task} worker crashed ({name}); the runtime could not handle this model"
    return f"the {task} worker exited with code {returncode} without a result"


class Worker:
    """One child process for one task: started early (it preloads its task's imports while the caller
    does other work), sent its payload once, then waited on. A worker never serves a second job."""

    def __init__(self, task: str, *, workdir: Path, limits: WorkerLimits = DEFAULT_LIMITS,
                 cancel: threading.Event | None = None, log_name: str | None = None) -> None:
        self.task = task
        self.limits = limits
        self.cancel = cancel
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{log_name or 'worker-' + task}.log"
        read_fd, write_fd = os.pipe()
        command = [sys.executable, "-m", "optimizer.run.worker", task, str(write_fd), str(limits.memory_bytes)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=log, stderr=log, cwd=workdir, env=_child_env(),
                pass_fds=(write_fd,), start_new_session=True,
            )
        os.close(write_fd)
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.ready = threading.Event()  # set once the child has its imports and waits for its payload
        threading.Thread(target=_reader, args=(os.fdopen(read_fd, "r", encoding="utf-8"), self._events,
                                               self.ready), daemon=True).start()
        self._deadline: float | None = None

    def send(self, payload: dict[str, Any], more: bool = False) -> None:
        """Give the worker its job (one JSON line); its time limit starts now. With ``more`` the channel
        stays open for one :meth:`send_more` (a task that asks for a second message reads it then)."""
        self._deadline = time.monotonic() + self.limits.timeout_s
        self._write(payload, close=not more)

    def send_more(self, payload: dict[str, Any]) -> None:
        self._write(payload, close=True)

    def _write(self, payload: dict[str, Any], close: bool) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.process.stdin.write(json.dumps(payload).encode() + b"\n")
            self.process.stdin.flush()
            if close:
                self.process.stdin.close()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the child has its imports; False if it exited first or the time ran out."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                return False
        return True

    def alive(self) -> bool:
        return self.process.poll() is None

    def move_log(self, workdir: Path) -> None:
        """Continue the log in ``workdir`` (a worker started before its job's folder existed)."""
        workdir.mkdir(parents=True, exist_ok=True)
        target = workdir / self.log_path.name
        with contextlib.suppress(OSError):  # the child keeps writing to the same open file after the rename
            os.replace(self.log_path, target)
            self.log_path = target

    def abort(self) -> None:
        """Kill a worker that will not be needed (e.g. the data was refused)."""
        _kill_group(self.process)

    def wait(self, on_progress: ProgressCallback | None = None) -> Any:
        """Stream progress to ``on_progress`` and return the task's JSON result.

        Raises the child's :class:`OptimizerError` (same class, same message) when the task refused its
        input, and :class:`WorkerFailed` when the child crashed, ran out of memory or time, or was cancelled.
        """
        if self._deadline is None:
            raise RuntimeError("send() the payload before wait()")
        outcome = self._outcome(self._deadline, on_progress)
        if outcome is not None and outcome["type"] == "result":
            return outcome.get("value")
        if outcome is not None and outcome["type"] == "error":
            raise _rebuild_error(outcome)
        tail = self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""
        raise WorkerFailed(_describe_exit(self.task, self.process.returncode, tail, self.limits))

    def _outcome(self, deadline: float, on_progress: ProgressCallback | None) -> dict[str, Any] | None:
        """The child's last result or error event once it has exited; its group is killed on any way out."""
        process = self.process
        try:
            outcome = self._read_events(deadline, on_progress)
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise WorkerFailed(f"the {self.task} worker did not exit after reporting") from None
        except WorkerFailed:
            _kill_group(process)
            raise
        finally:
            if process.poll() is None:
                _kill_group(process)
        return outcome

    def _read_events(self, deadline: float, on_progress: ProgressCallback | None) -> dict[str, Any] | None:
        """Pass progress events on until the child closes its pipe; the last result or error event, if any."""
        outcome: dict[str, Any] | None = None
        while True:
            self._check_still_wanted(deadline)
            try:
                event = self._events.get(timeout=0.2)
            except queue.Empty:
                continue
            if event is None:
                return outcome
            if event.get("type") == "progress":
                if on_progress is not None:
                    on_progress(event)
            elif event.get("type") in ("result", "error"):
                outcome = event

    def _check_still_wanted(self, deadline: float) -> None:
        """Refuse to wait on once the caller cancelled or the task's time limit has passed."""
        if self.cancel is not None and self.cancel.is_set():
            raise WorkerFailed(f"the {self.task} worker was cancelled")
        if time.monotonic() > deadline:
            raise WorkerFailed(f"the {self.task} worker took longer than the {self.limits.timeout_s:.0f} s limit")


class Spares:
    """Workers of one task started ahead of need. Each still serves a single payload in a fresh process;
    only its start (Python and the task's imports, about 0.1 s) happens while the caller does other work.
    An idle spare is blocked on its stdin, so it costs memory, not CPU: measurements stay undisturbed.

    A child is killed when the thread that started it ends (PR_SET_PDEATHSIG, see optimizer.run.worker), so the
    spares are started by a thread of their own that lives until :meth:`close`, never by the caller's
    thread that happened to ask (it may end while another thread still uses the spare)."""

    def __init__(self, task: str, *, workdir: Path, limits: WorkerLimits = DEFAULT_LIMITS,
                 cancel: threading.Event | None = None, expected: int = 0, ahead: int = 0,
                 quiet: bool = False) -> None:
        """``expected``: how many payloads will come (no spare is started beyond them); ``ahead``: how many
        spares to keep idle until then; ``quiet``: a payload is sent only once every spare has finished its
        imports, so no start-up of ours runs during the task (for latency measurements)."""
        self.task, self.workdir, self.limits, self.cancel, self.quiet = task, workdir, limits, cancel, quiet
        self._idle: list[Worker] = []
        self._pending = 0  # asked of the starting thread, not yet started
        self._condition = threading.Condition()
        self._closed = False
        self._to_start, self._ahead = expected, ahead
        self._requests: queue.Queue[int | None] = queue.Queue()
        threading.Thread(target=self._start_loop, name=f"spares-{task}", daemon=True).start()
        self._top_up()

    def _new_worker(self) -> Worker:
        return Worker(self.task, workdir=self.workdir, limits=self.limits, cancel=self.cancel)

    def _start_loop(self) -> None:
        while (count := self._requests.get()) is not None:
            for _ in range(count):
                worker = self._new_worker()
                with self._condition:
                    self._pending -= 1
                    if self._closed:
                        worker.abort()
                    else:
                        self._idle.append(worker)
                    self._condition.notify_all()

    def _top_up(self) -> None:
        with self._condition:
            if self._closed:
                return
            count = max(0, min(self._ahead - len(self._idle) - self._pending, self._to_start))
            self._to_start -= count
            self._pending += count
        if count:
            self._requests.put(count)

    def run(self, payload: dict[str, Any], on_progress: ProgressCallback | None = None) -> Any:
        """Like :func:`run_task`, on a spare when one is idle or on its way (else on a worker started now,
        by this thread, which also waits on it)."""
        with self._condition:
            self._condition.wait_for(lambda: self._idle or not self._pending, timeout=30)
            worker = self._idle.pop(0) if self._idle else None
            if worker is None:
                self._to_start = max(0, self._to_start - 1)
        if worker is None or not worker.alive():
            worker = self._new_worker()
        self._top_up()
        if self.quiet:
            with self._condition:
                self._condition.wait_for(lambda: not self._pending, timeout=60)
                others = list(self._idle)
            for starting in [worker, *others]:
                starting.wait_ready(60)
        worker.send(payload)
        return worker.wait(on_progress)

    def close(self) -> None:
        """Stop the spares nobody took (call once every payload is done: the starting thread ends here)."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
        self._requests.put(None)
        for worker in idle:
            worker.abort()


def run_task(
    task: str,
    payload: dict[str, Any],
    *,
    workdir: Path,
    limits: WorkerLimits = DEFAULT_LIMITS,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Any:
    """Run ``task`` in a fresh child process and return its JSON result (see :meth:`Worker.wait`)."""
    worker = Worker(task, workdir=workdir, limits=limits, cancel=cancel)
    worker.send(payload)
    return worker.wait(on_progress)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _rebuild_error(event: dict[str, Any]) -> OptimizerError:
    from optimizer import errors

    kind = getattr(errors, str(event.get("error_class")), None)
    message = str(event.get("message", "unknown error"))
    if isinstance(kind, type) and issubclass(kind, OptimizerError):
        return kind(message)
    return WorkerFailed(message)
