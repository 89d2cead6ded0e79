"""The ``local`` target: agents as child processes of this venv's Python, in a private folder under the job's
work folder, with the limits of the isolated workers (set in the child itself, own process group, killed on
timeout). The agent and its profiler are copied into the folder, as on a remote target, so what runs here is
exactly the standalone file (it cannot import this package)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from optimizer.run.isolation import DEFAULT_LIMITS, WorkerLimits
from optimizer.targets.base import AgentSession, TargetSpec, check_identity

HERE = Path(__file__).resolve().parent
AGENT_FILES = ("agent.py", "op_profile.py")  # op_profile.py is optional: without it profile says so


def agent_files() -> list[Path]:
    """The standalone files every target gets (the agent always; the per-op profiler when present)."""
    return [HERE / name for name in AGENT_FILES if (HERE / name).is_file()]


class LocalConnection:
    """This host as a target (see :class:`optimizer.targets.base.Connection`)."""

    def __init__(self, spec: TargetSpec, workdir: Path, timeout_s: float = 20,
                 limits: WorkerLimits = DEFAULT_LIMITS) -> None:
        self.spec, self.timeout_s, self.limits = spec, timeout_s, limits
        workdir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="target-local-", dir=workdir))  # mode 700
        self._sessions: list[tuple[subprocess.Popen[bytes], AgentSession]] = []
        self._identity: dict[str, Any] | None = None
        self.loadavg: list[float] | None = None
        for path in agent_files():
            shutil.copyfile(path, self.folder / path.name)

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            session = self.start_agent()
            try:
                reply = session.request({"cmd": "hello"}, self.timeout_s)
            finally:
                session.close()
            self.loadavg = reply.get("loadavg")
            self._identity = check_identity(reply, self.spec)
        return dict(self._identity)

    def put(self, local: Path) -> str:
        name = local.name
        index = 1
        while (self.folder / name).exists():
            name, index = f"{index}-{local.name}", index + 1
        shutil.copyfile(local, self.folder / name)
        return name

    def start_agent(self) -> AgentSession:
        log = self.folder / f"agent-{len(self._sessions)}.log"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the agent must not find this package
        command = [sys.executable, "-u", "agent.py", "--memory-bytes", str(self.limits.memory_bytes)]
        with open(log, "ab") as stderr:
            process = subprocess.Popen(command, cwd=self.folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=stderr, env=env, start_new_session=True)
        assert process.stdin is not None and process.stdout is not None

        def describe_exit() -> str:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2)
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            code = process.returncode
            how = "still running" if code is None else (
                f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}")
            return f"{how}{': ' + tail[0][:300] if tail else ''}"

        session = AgentSession(process.stdout, process.stdin, self.spec.label, kill=lambda: _kill_group(process),
                               describe_exit=describe_exit)
        self._sessions.append((process, session))
        return session

    def close(self) -> None:
        for _, session in self._sessions:
            session.close()
        for process, _ in self._sessions:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            _kill_group(process)
        shutil.rmtree(self.folder, ignore_errors=True)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
