"""A real two-node Ray cluster on 127.0.0.1 for the tests: `ray start --head` plus one worker node, one CPU
each, stopped with `ray stop --force` at the end (which stops every Ray process of this user on the machine:
the tests assume no other Ray runs here). Node death is detected within a few seconds (short health checks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
FAST_HEALTH_CHECKS = {"RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
                      "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray(*args: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(RAY), *args], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed: {result.stderr[-2000:]}")


@dataclass
class LocalRayCluster:
    address: str
    worker_port: int  # the worker node's node-manager port: how its raylet is found to kill it

    @classmethod
    def start(cls) -> LocalRayCluster:
        head_port, worker_port = free_port(), free_port()
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
        _ray("start", "--head", "--port", str(head_port), "--include-dashboard", "false", *common,
             env=FAST_HEALTH_CHECKS)
        address = f"127.0.0.1:{head_port}"
        _ray("start", "--address", address, "--node-manager-port", str(worker_port), *common)
        return cls(address, worker_port)

    def worker_raylet_pid(self) -> int | None:
        flag = f"--node_manager_port={self.worker_port}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if command and command[0].endswith(b"raylet") and flag in command:
                return int(entry.name)
        return None

    def kill_worker_node(self) -> None:
        """SIGKILL the worker node's raylet (its task workers die with it), as a machine lost mid-sweep."""
        pid = self.worker_raylet_pid()
        if pid is None:
            raise RuntimeError("the worker node's raylet is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.worker_raylet_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120)
