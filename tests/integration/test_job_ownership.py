"""Who owns a job: every submitted job starts (no start race with the warm standby), each job runs exactly
once even with two servers on one runs folder, never two heavy jobs at once, a server killed mid-job leaves
its run in one final state that never changes, and the standby dies with its server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimizer.jobs.runner import JobRequest, run_job, submit
from optimizer.jobs.scheduler import Scheduler
from optimizer.jobs.store import FINAL, RunStore
from optimizer.run.options import RunOptions
from optimizer.variants import VariantSpec
from tests.conftest import CANCER_DATA, CANCER_MODEL, DIGITS_DATA, DIGITS_MODEL

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]
# A server as far as jobs are concerned: one Scheduler in its own process, on the given runs folder.
SERVER = """
import sys, time
from pathlib import Path
from optimizer.jobs.scheduler import Scheduler
from optimizer.jobs.store import RunStore
Scheduler(RunStore(Path(sys.argv[1])), poll_s=0.2, warm=sys.argv[2] == "warm")
print("server up", flush=True)
time.sleep(3600)
"""


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The breast-cancer MLP as a float .tflite: a job on it needs no TensorFlow (about 2 s per job)."""
    import keras
    import tensorflow as tf

    path = tmp_path_factory.mktemp("tiny") / "cancer_mlp.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(CANCER_MODEL)).convert())
    return path


def _cheap(seed: int, *kinds: str) -> JobRequest:
    return JobRequest(model=str(CANCER_MODEL), data=str(CANCER_DATA), options=RunOptions(warmup_runs=1, seed=seed),
                      variants=[VariantSpec(k).to_dict() for k in kinds])


def _wait_final(store: RunStore, run_ids: list[str], timeout: float = 400) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = {run_id: store.get(run_id) for run_id in run_ids}
        if all(r["status"] in FINAL for r in records.values()):
            return records
        time.sleep(0.3)
    pytest.fail(f"runs never finished: { {i: store.get(i)['status'] for i in run_ids} }")


def _assert_one_at_a_time(records: list[dict]) -> None:
    spans = sorted((r["started_at"], r["finished_at"]) for r in records)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"two heavy jobs overlapped: one ended at {end}, the next started at {start}"


def _starts(store: RunStore, run_id: str) -> int:
    log = store.job_dir(run_id) / "runner.log"
    return log.read_text(errors="replace").count(f"starts run {run_id}") if log.exists() else 0


def _server(runs: Path, warm: bool) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(runs), "warm" if warm else "cold"], cwd=PROJECT,
                               env={**os.environ, "PYTHONPATH": str(PROJECT)}, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "server up"
    return process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_jobs_submitted_back_to_back_with_a_warm_standby_all_start(tmp_path):
    """The start race: the standby used to take a job whose row was visible before its files were."""
    store = RunStore(tmp_path / "runs")
    scheduler = Scheduler(store, poll_s=0.05, warm=True)
    try:
        assert scheduler.wait_for_standby(180), "the standby never became ready"
        run_ids = []
        for seed in range(5):
            run_ids.append(submit(store, _cheap(seed, "float16"), session="s1"))
            scheduler.wake()
        records = _wait_final(store, run_ids)
    finally:
        scheduler.stop()
    assert len(set(run_ids)) == 5
    assert {run_id: r["status"] for run_id, r in records.items()} == dict.fromkeys(run_ids, "done"), \
        {run_id: r["error"] for run_id, r in records.items()}
    assert records[run_ids[0]]["manifest"]["warm_start"] is True
    _assert_one_at_a_time(list(records.values()))


def test_a_runner_that_finds_its_job_incomplete_fails_it_with_a_sentence(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    no_manifest = store.create("a.keras", {}, {"model": "a.keras"})
    missing_file = store.create("b.keras", {}, {"model": "b.keras"},
                                manifest={"request": {"model": str(tmp_path / "gone" / "b.keras")}})
    for _ in range(2):
        store.claim_next("server", max_running=2)
    run_job(store, no_manifest)
    run_job(store, missing_file)
    assert store.get(no_manifest)["status"] == "failed"
    assert store.get(no_manifest)["error"] == \
        "the run could not start: its request names no model file in the job folder"
    assert store.get(missing_file)["error"] == \
        "the run could not start: its input files are missing from the job folder: model (b.keras)"
    queued = store.create("c.keras", {}, {"model": "c.keras"})
    run_job(store, queued)  # never claimed: a runner leaves it alone
    assert store.get(queued)["status"] == "queued"
    assert "Traceback" not in capsys.readouterr().err


def test_two_schedulers_on_one_runs_folder_run_each_job_once_and_one_at_a_time(tmp_path, tiny_tflite):
    root = tmp_path / "runs"
    first, second = Scheduler(RunStore(root), poll_s=0.05), Scheduler(RunStore(root), poll_s=0.05)
    try:
        stores = (first.store, second.store)
        run_ids = [submit(stores[i % 2], JobRequest(model=str(tiny_tflite), data=str(CANCER_DATA),
                                                    options=RunOptions(warmup_runs=1, seed=i),
                                                    variants=[VariantSpec("float32").to_dict()]),
                          session=f"s{i % 2}") for i in range(12)]
        assert len(set(run_ids)) == 12
        records = _wait_final(first.store, run_ids, timeout=900)
    finally:
        first.stop()
        second.stop()
    statuses = {run_id: r["status"] for run_id, r in records.items()}
    assert statuses == dict.fromkeys(run_ids, "done"), {i: r["error"] for i, r in records.items()}
    assert all(r["claims"] == 1 for r in records.values())
    assert all(_starts(first.store, run_id) == 1 for run_id in run_ids)
    assert {r["server_id"] for r in records.values()} <= {first.server_id, second.server_id}
    _assert_one_at_a_time(list(records.values()))


def test_a_server_killed_mid_job_leaves_one_final_state_and_no_second_heavy_job(tmp_path):
    """The killed server's runner finishes its job (no one marks it interrupted while it is alive); the
    restarted server counts it as running and starts the next job only after it."""
    root = tmp_path / "runs"
    store = RunStore(root)
    server = _server(root, warm=False)
    first = submit(store, JobRequest(model=str(DIGITS_MODEL), data=str(DIGITS_DATA), options=RunOptions(warmup_runs=1),
                                     variants=[VariantSpec(k).to_dict() for k in ("int8", "float16",
                                                                                   "dynamic_range")]))
    deadline = time.monotonic() + 120
    while not (store.get(first)["status"] == "running" and store.get(first)["runner_pid"]):
        assert time.monotonic() < deadline, store.get(first)
        time.sleep(0.1)
    runner = store.get(first)["runner_pid"]
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    assert _alive(runner), "the runner should outlive its server and finish its job"
    restarted = _server(root, warm=False)
    try:
        second = submit(store, _cheap(1))
        seen: dict[str, list[str]] = {first: [], second: []}
        deadline = time.monotonic() + 400
        settled_at = None
        while settled_at is None or time.monotonic() < settled_at + 3:  # watch 3 s past the end too
            assert time.monotonic() < deadline, {k: v[-1:] for k, v in seen.items()}
            for run_id, history in seen.items():
                status = store.get(run_id)["status"]
                if not history or history[-1] != status:
                    history.append(status)
            if settled_at is None and all(h[-1] in FINAL for h in seen.values()):
                settled_at = time.monotonic()
            time.sleep(0.1)
    finally:
        restarted.kill()
        restarted.wait(timeout=10)
    assert seen[first][-1] == "done" and [s for s in seen[first] if s in FINAL] == ["done"], seen[first]
    assert seen[second][-1] == "done" and [s for s in seen[second] if s in FINAL] == ["done"], seen[second]
    _assert_one_at_a_time([store.get(first), store.get(second)])


def test_the_standby_runner_exits_with_its_server(tmp_path):
    root = tmp_path / "runs"
    server = _server(root, warm=True)
    deadline = time.monotonic() + 60
    standby_root = root / "standby"
    while not (standby_root.is_dir() and [p for p in standby_root.iterdir() if p.is_dir()]):
        assert time.monotonic() < deadline, "no standby started"
        time.sleep(0.1)
    folder = next(p for p in standby_root.iterdir() if p.is_dir())
    pid = int(folder.name)
    deadline = time.monotonic() + 180
    while not (folder / "ready").exists():  # its TensorFlow workers are loaded
        assert time.monotonic() < deadline, "the standby never became ready"
        time.sleep(0.2)
    workers = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
               for c in (task / "children").read_text().split()]
    assert len(workers) >= 2 and _alive(pid)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=10)
    deadline = time.monotonic() + 3
    while any(_alive(p) for p in (pid, *workers)):
        assert time.monotonic() < deadline, "the standby or its workers outlived the server by more than 3 s"
        time.sleep(0.05)
