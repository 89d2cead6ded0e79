"""Background jobs through the scheduler: a job runs to the end, a killed job fails with a reason and the
next one still runs, cancel works, and a restarted server marks what it lost as interrupted."""

import os
import signal
import time

import pytest

from optimizer.jobs.runner import JobRequest, submit
from optimizer.jobs.scheduler import Scheduler
from optimizer.jobs.store import RunStore
from optimizer.run.options import RunOptions
from optimizer.variants import VariantSpec
from tests.conftest import CANCER_DATA, CANCER_MODEL


def _request(*kinds):
    return JobRequest(model=str(CANCER_MODEL), data=str(CANCER_DATA), options=RunOptions(warmup_runs=1),
                      variants=[VariantSpec(k).to_dict() for k in kinds])


def _wait(store, run_id, until, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = store.get(run_id)
        if until(record):
            return record
        time.sleep(0.2)
    pytest.fail(f"run {run_id} never reached the expected state; last: {store.get(run_id)}")


@pytest.fixture()
def scheduler(tmp_path):
    running = Scheduler(RunStore(tmp_path / "runs"), poll_s=0.2)
    yield running
    running.stop()


def test_job_runs_in_the_background_and_stores_everything(scheduler):
    store = scheduler.store
    run_id = submit(store, _request("float16"), session="s1")
    record = _wait(store, run_id, lambda r: r["status"] not in ("queued", "running"))
    assert record["status"] == "done", record["error"]
    assert [r["variant"] for r in record["rows"]] == ["float32", "float16"]
    assert record["inputs"]["model"]["sha256"] and record["inputs"]["data"]["name"] == "cancer.npz"
    assert record["manifest"]["versions"]["tensorflow"] == "2.21.0"
    assert record["progress"]["variants"]["float16"]["stage"] == "measured"
    job_dir = store.job_dir(run_id)
    assert (job_dir / "variants" / "float16.tflite").is_file() and (job_dir / "results.csv").is_file()
    assert (job_dir / "input" / "cancer_mlp.keras").is_file()


def test_killing_the_worker_fails_the_job_and_the_next_job_succeeds(scheduler):
    store = scheduler.store
    doomed = submit(store, _request("int8", "float16", "dynamic_range"))
    record = _wait(store, doomed, lambda r: r["status"] == "running" and (r["progress"] or {}).get("variants"))
    os.kill(record["runner_pid"], signal.SIGKILL)
    record = _wait(store, doomed, lambda r: r["status"] != "running")
    assert record["status"] == "failed"
    assert "worker process stopped (killed by SIGKILL)" in record["error"]
    following = submit(store, _request("float16"))
    record = _wait(store, following, lambda r: r["status"] not in ("queued", "running"))
    assert record["status"] == "done", record["error"]


def test_queue_runs_one_job_at_a_time_and_cancel(scheduler):
    store = scheduler.store
    first = submit(store, _request("float16"))
    assert submit(store, _request("float16")) == first  # the same request while it is active: no duplicate
    second = submit(store, _request("dynamic_range"))
    _wait(store, first, lambda r: r["status"] == "running")
    assert store.get(second)["status"] == "queued" and store.queue_position(second) == 1
    store.request_cancel(first)
    record = _wait(store, first, lambda r: r["status"] not in ("queued", "running"))
    assert record["status"] == "cancelled"
    record = _wait(store, second, lambda r: r["status"] not in ("queued", "running"))
    assert record["status"] == "done"


def test_a_restarted_server_marks_lost_runs_interrupted(tmp_path):
    store = RunStore(tmp_path / "runs")
    finished = store.create("a.keras", {}, {})
    store.update(finished, status="done", rows=[{"variant": "float32", "status": "ok"}])
    lost = store.create("b.keras", {}, {})
    store.update(lost, status="running", runner_pid=999_999)
    restarted = Scheduler(RunStore(tmp_path / "runs"), poll_s=60)
    try:
        assert restarted.store.get(lost)["status"] == "interrupted"
        assert "server stopped" in restarted.store.get(lost)["error"]
        assert restarted.store.get(finished)["status"] == "done"
        assert {r["id"] for r in restarted.store.list()} == {finished, lost}
    finally:
        restarted.stop()


def test_a_warm_standby_takes_the_next_job_and_a_new_one_waits_after_it(tmp_path):
    """The standby runner starts its TensorFlow workers before any job exists; the job it takes runs on
    them (logs moved into the job folder) and is a normal, complete run; stopping ends the next standby."""
    store = RunStore(tmp_path / "runs")
    scheduler = Scheduler(store, poll_s=0.2, warm=True)
    try:
        assert scheduler.wait_for_standby(180), "the standby never became ready"
        deadline = time.monotonic() + 180
        standby_pid = scheduler.standby_pid()
        assert (store.root / "standby" / str(standby_pid) / "worker-prepare.log").is_file()
        run_id = submit(store, _request("int8"), session="s1")
        scheduler.wake()
        record = _wait(store, run_id, lambda r: r["status"] not in ("queued", "running"))
        assert record["status"] == "done", record["error"]
        assert record["runner_pid"] == standby_pid and record["manifest"]["warm_start"] is True
        assert {r["variant"]: r["status"] for r in record["rows"]} == {"float32": "ok", "int8": "ok"}
        work = store.job_dir(run_id) / "work"
        assert (work / "worker-prepare.log").is_file() and (work / "worker-convert-helper.log").is_file()
        assert not (store.root / "standby" / str(standby_pid)).exists()
        while scheduler.standby_pid() in (None, standby_pid):  # the machine is idle again: a new standby
            assert time.monotonic() < deadline, "no new standby after the job"
            time.sleep(0.2)
        second = scheduler.standby_pid()
    finally:
        scheduler.stop()
    assert second is not None
    with pytest.raises(ProcessLookupError):  # stopped with the scheduler, workers and all
        os.kill(second, 0)


def test_a_run_handed_dead_warm_workers_starts_its_own(tmp_path):
    """A standby whose worker died while idle must not fail the job it takes: the run starts fresh workers."""
    from optimizer.run.pipeline import WarmWorkers, run_comparison
    from optimizer.variants import VariantKind

    warm = WarmWorkers.start(tmp_path / "standby")
    assert warm.wait_ready(180)
    os.killpg(warm.preparer.process.pid, signal.SIGKILL)
    warm.preparer.process.wait(timeout=10)
    result = run_comparison(CANCER_MODEL, tmp_path / "run", [VariantSpec(VariantKind.INT8)], data=CANCER_DATA,
                            warm=warm)
    assert result.manifest["warm_start"] is False
    assert {r["variant"]: r["status"] for r in result.rows} == {"float32": "ok", "int8": "ok"}
    assert not warm.helper.alive()  # the survivor is stopped, not left idle
