"""Sweeps on a real two-node Ray cluster on 127.0.0.1 (`ray start --head` plus one worker node): points run as
Ray tasks, rows record the node that produced them, latency is timed here; a node killed mid-sweep loses no
completed point."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import DIGITS_DATA, DIGITS_MODEL
from tests.support.ray_cluster import LocalRayCluster

ROOT = Path(__file__).resolve().parents[2]
GRID = "int8:calibration_samples=50,100,200"
POINTS = ["float32", "int8_calibration_samples50", "int8_calibration_samples100", "int8_calibration_samples200"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module (a start takes ~30 s); the test that kills its worker node comes last."""
    started = LocalRayCluster.start()
    try:
        yield started
    finally:
        started.stop()


def _alive_nodes(address: str) -> list[str]:
    script = (f"import json, ray; ray.init(address={address!r}, logging_level='ERROR'); "
              "print('NODES', json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("NODES "))
    return json.loads(line.removeprefix("NODES "))


def _sweep_command(cluster: LocalRayCluster, tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "optimizer", "sweep", str(DIGITS_MODEL), "--data", str(DIGITS_DATA), "--grid", GRID,
            "--ray", cluster.address, "--cache-dir", str(tmp_path / "store"), "--out", str(tmp_path / "sweep"),
            "--format", "json"]


def test_a_sweep_on_two_nodes_records_which_node_produced_each_point(cluster, tmp_path):
    nodes = _alive_nodes(cluster.address)
    assert len(nodes) == 2
    result = subprocess.run(_sweep_command(cluster, tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["variant"] for r in rows] == POINTS
    assert all(r["status"] == "ok" for r in rows), [(r["variant"], r["error"]) for r in rows]
    assert {r["produced_on"] for r in rows} == set(nodes)  # two CPUs, one per node: both nodes worked
    assert all(r["from_cache"] and r["latency_ms_p50"] > 0 for r in rows)  # timed here, after they came back
    assert [r["param: calibration_samples"] for r in rows][1:] == [50, 100, 200]


def test_an_app_job_produces_its_variants_on_the_cluster_of_studio_ray_address(cluster, tmp_path, monkeypatch):
    from optimizer.jobs.runner import JobRequest, run_job, submit
    from optimizer.jobs.store import RunStore
    from optimizer.run.options import RunOptions

    monkeypatch.setenv("STUDIO_RAY_ADDRESS", cluster.address)
    monkeypatch.setenv("STUDIO_CACHE", "1")  # the points come back through the runs folder's variant store
    store = RunStore(tmp_path / "runs")
    variants = [{"kind": "float32"}, {"kind": "int8", "options": {"calibration_samples": 50},
                                      "name": "int8_calibration_samples50"}]
    run_id = submit(store, JobRequest(model=str(DIGITS_MODEL), data=str(DIGITS_DATA), variants=variants,
                                      options=RunOptions(timed_runs=50)))
    store.claim_next("test", max_running=1)
    run_job(store, run_id)
    record = store.get(run_id)
    assert record["status"] == "done", record["error"]
    rows = record["rows"]
    assert [r["variant"] for r in rows] == ["float32", "int8_calibration_samples50"]
    assert all(r["status"] == "ok" and r["produced_on"] in _alive_nodes(cluster.address) for r in rows)
    assert all(r["latency_ms_p50"] > 0 for r in rows)  # timed here, on this host
    assert record["manifest"]["ray"]["address"] == cluster.address


def test_a_node_killed_mid_sweep_loses_no_completed_point(cluster, tmp_path):
    sweep = subprocess.Popen(_sweep_command(cluster, tmp_path), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    produced_before_kill: list[str] = []
    killed = threading.Event()

    def watch() -> None:
        assert sweep.stderr is not None
        for line in sweep.stderr:
            if "produced " in line and " on Ray node " in line and not killed.is_set():
                produced_before_kill.append(line.split("produced ")[1].split(" on Ray node")[0])
                cluster.kill_worker_node()
                killed.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert sweep.stdout is not None
    stdout = sweep.stdout.read()  # the watcher reads stderr meanwhile
    sweep.wait(timeout=900)
    watcher.join(timeout=5)
    assert stdout.lstrip().startswith("["), stdout[:2000]
    assert sweep.returncode == 0 and killed.is_set()
    rows = {r["variant"]: r for r in json.loads(stdout)}
    assert sorted(rows) == sorted(POINTS)  # every point has a row
    for name in produced_before_kill:
        assert rows[name]["status"] == "ok"  # what was done before the node died is kept
    for row in rows.values():  # the rest: retried on the head node, or failed with the reason
        assert row["status"] == "ok" or "on the Ray cluster" in row["error"]
    survivors = _alive_nodes(cluster.address)
    assert len(survivors) == 1  # the worker node is gone; the head took its points
    assert any(r.get("produced_on") in survivors for r in rows.values() if r["status"] == "ok")
