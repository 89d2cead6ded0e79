"""A worker that crashes, runs out of memory or hangs fails its own job; the caller runs the next one."""

import os
import signal
import threading

import pytest

from optimizer.errors import WorkerFailed
from optimizer.run.isolation import WorkerLimits, run_task
from optimizer.run.pipeline import inspect
from tests.conftest import DIGITS_MODEL


def _payload(tmp_path):
    return {"model_path": str(DIGITS_MODEL), "workdir": str(tmp_path)}


def test_killed_worker_is_reported_and_the_next_job_runs(tmp_path):
    killer = threading.Thread(target=_kill_first_worker, daemon=True)
    killer.start()
    with pytest.raises(WorkerFailed, match="crashed \\(SIGKILL\\)"):
        run_task("inspect", _payload(tmp_path), workdir=tmp_path)
    killer.join(timeout=5)
    assert inspect(DIGITS_MODEL, tmp_path / "next")["parameter_count"] > 50_000


def _kill_first_worker():
    """Find our own optimizer.run.worker child and SIGKILL it, as a runtime crash would."""
    import time

    deadline = time.monotonic() + 30
    me = os.getpid()
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().split()
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    cmdline = handle.read()
            except OSError:
                continue
            if int(fields[3]) == me and b"optimizer.run.worker" in cmdline:
                time.sleep(0.5)
                os.kill(int(pid), signal.SIGKILL)
                return
        time.sleep(0.05)


def test_memory_limit_fails_the_job_with_a_reason(tmp_path):
    with pytest.raises(WorkerFailed, match="ran out of memory \\(limit 0.3 GiB\\)"):
        run_task("inspect", _payload(tmp_path), workdir=tmp_path,
                 limits=WorkerLimits(memory_bytes=300 * 1024**2, timeout_s=120))
    assert inspect(DIGITS_MODEL, tmp_path / "next")["parameter_count"] > 50_000


def test_timeout_kills_the_worker_group(tmp_path):
    with pytest.raises(WorkerFailed, match="longer than the 1 s limit"):
        run_task("inspect", _payload(tmp_path), workdir=tmp_path, limits=WorkerLimits(timeout_s=1))
    assert inspect(DIGITS_MODEL, tmp_path / "next")["parameter_count"] > 50_000


def test_cancel_stops_the_worker(tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(WorkerFailed, match="cancelled"):
        run_task("inspect", _payload(tmp_path), workdir=tmp_path, cancel=cancel)


def test_a_converter_crash_fails_one_variant_and_the_run_completes(tmp_path):
    """SIGKILL the conversion worker while it converts int8: that row fails with the reason, the variants
    it had not reached are converted by a fresh worker, and everything else is measured."""
    from optimizer.run.options import RunOptions
    from optimizer.run.pipeline import run_comparison
    from tests.conftest import CANCER_DATA, CANCER_MODEL, rows_by_name

    killed = []

    def on_progress(event):
        if event.stage == "converting" and event.variant == "int8" and not killed:
            killed.append(event.details["pid"])
            os.killpg(os.getpgid(event.details["pid"]), signal.SIGKILL)

    result = run_comparison(CANCER_MODEL, tmp_path / "run", data=CANCER_DATA, on_progress=on_progress,
                            options=RunOptions(warmup_runs=1))
    rows = rows_by_name(result)
    assert killed
    assert rows["int8"]["status"] == "failed" and "crashed (SIGKILL)" in rows["int8"]["error"]
    others = {name: row["status"] for name, row in rows.items() if name != "int8"}
    assert set(others.values()) == {"ok"}, rows
    assert all(rows[name]["latency_ms_p50"] > 0 for name in others)


def test_a_spare_in_use_survives_the_thread_that_asked_for_it(tmp_path, digits_float_tflite):
    """Workers die with the thread that started them (PR_SET_PDEATHSIG). Spares are started ahead by one
    caller's request and used by another caller's thread; the asking thread ending must not kill a spare
    that another thread is measuring with (a CI run lost int16x8's evaluation that way)."""
    import time

    from optimizer.run.isolation import Spares

    def payload(runs):
        return {"model_path": str(digits_float_tflite), "samples": {}, "threads": 1, "warmup_runs": 0,
                "timed_runs": runs}

    spares = Spares("benchmark", workdir=tmp_path, expected=2, ahead=1)
    release = threading.Event()

    def asker():
        spares.run(payload(50))  # takes the first spare; the second is started because of this call
        release.wait()

    asking = threading.Thread(target=asker)
    asking.start()
    long_result = {}
    measuring = threading.Thread(target=lambda: long_result.update(spares.run(payload(60_000))))
    while not spares._idle:  # noqa: SLF001 - the second spare is idle: the measuring thread takes it
        time.sleep(0.05)
    measuring.start()
    time.sleep(0.3)
    release.set()  # the asking thread ends while the spare it caused is busy measuring
    asking.join()
    measuring.join(timeout=120)
    spares.close()
    assert long_result.get("latency_runs") == 60_000
