"""A runs folder that cannot be written (read-only, full, missing parent) gives one clear sentence and
leaves nothing half-written; deleting and listing still work on a full disk; retention and upload clean-up.

The read-only and full cases use a real, size-limited tmpfs mounted for the test (needs root, as on CI and
the development machines); elsewhere they are skipped with that reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimizer.errors import StoreUnavailable, user_message
from optimizer.jobs.runner import JobRequest, run_job, submit
from optimizer.jobs.store import Retention, RunStore
from optimizer.run.options import RunOptions
from optimizer.variants import VariantSpec
from tests.conftest import CANCER_DATA, CANCER_MODEL, DIGITS_MODEL

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def small_fs(tmp_path):
    """A 2 MB tmpfs; ``remount(ro=True)`` makes it read-only."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")

    def remount(ro: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if ro else 'rw'}", str(mount_point)], check=True)

    yield mount_point, remount
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path, leave_bytes: int) -> Path:
    filler = folder / "filler"
    with open(filler, "ab") as handle:
        handle.write(b"\0" * max(0, shutil.disk_usage(folder).free - leave_bytes))
    return filler


def _request() -> JobRequest:
    return JobRequest(model=str(CANCER_MODEL), data=str(CANCER_DATA), options=RunOptions(warmup_runs=1),
                      variants=[VariantSpec("float16").to_dict()])


def test_a_read_only_runs_folder_is_one_sentence(small_fs):
    mount_point, remount = small_fs
    RunStore(mount_point / "runs")  # written once, then the file system goes read-only
    remount(ro=True)
    for root in (mount_point / "runs", mount_point / "new-runs"):
        with pytest.raises(StoreUnavailable) as refused:
            store = RunStore(root)
            submit(store, _request())
        message = user_message(refused.value)
        assert message.startswith(f"Runs folder unavailable: cannot write runs to {root}: read-only file system")
        assert "STUDIO_RUNS_DIR" in message and "\n" not in message


def test_a_missing_parent_that_cannot_be_made_is_one_sentence(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable, match=r"cannot write runs to .*a-file/runs: not a directory"):
        RunStore(blocker / "runs")


def test_a_full_disk_refuses_a_submit_and_leaves_nothing(small_fs):
    mount_point, _ = small_fs
    store = RunStore(mount_point / "runs")
    _fill(mount_point, leave_bytes=64 * 1024)  # the sample model alone is larger
    with pytest.raises(StoreUnavailable, match="no space left on device"):
        submit(store, JobRequest(model=str(DIGITS_MODEL)))
    assert store.list() == []
    assert list((mount_point / "runs" / "jobs").iterdir()) == []


def test_a_run_that_fills_the_disk_fails_with_that_reason_and_is_never_done(small_fs):
    mount_point, _ = small_fs
    store = RunStore(mount_point / "runs")
    run_id = submit(store, _request())
    store.claim_next("server", max_running=1)
    filler = _fill(mount_point, leave_bytes=150 * 1024)  # enough for the database, not for the variants
    run_job(store, run_id)
    record = store.get(run_id)
    assert record["status"] == "failed" and record["rows"] is None
    assert "no space left on device" in record["error"]
    job = store.job_dir(run_id)
    assert not (job / "variants").exists() and not (job / "results.csv").exists()
    filler.unlink()


def test_history_lists_and_deletes_on_a_full_disk(small_fs):
    mount_point, _ = small_fs
    store = RunStore(mount_point / "runs")
    run_id = submit(store, _request())
    store.finish_if_active(run_id, "failed", "for the test")
    (store.job_dir(run_id) / "big.bin").write_bytes(b"\0" * 600_000)
    _fill(mount_point, leave_bytes=0)
    assert [r["id"] for r in RunStore(mount_point / "runs").list()] == [run_id]
    store.delete(run_id)
    assert store.list() == [] and not store.job_dir(run_id).exists()


def test_retention_deletes_old_and_oversized_finished_runs_never_active_ones(tmp_path):
    store = RunStore(tmp_path / "runs")
    ids = [store.create(f"m{i}.keras", {}, {}) for i in range(4)]
    for run_id in ids[:3]:
        store.finish_if_active(run_id, "done", None)
        (store.job_dir(run_id) / "variant.tflite").write_bytes(b"\0" * 100_000)
    with store._connect() as db:  # the first run is 40 days old
        db.execute("UPDATE runs SET created_at = ? WHERE id = ?", (time.time() - 40 * 86400, ids[0]))
    orphan = store.root / "jobs" / "20200101-000000-deadbeef"
    orphan.mkdir()
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    deleted = store.enforce_retention(Retention(max_age_s=30 * 86400, max_bytes=150_000))
    assert deleted == [ids[0], ids[1]]  # too old; then the oldest until the folder fits
    assert [r["id"] for r in store.list()] == [ids[3], ids[2]]  # the queued run is never touched
    assert not store.job_dir(ids[0]).exists() and not orphan.exists()


def test_uploads_of_sessions_idle_for_a_day_are_removed(tmp_path):
    store = RunStore(tmp_path / "runs")
    store.touch_session("live")
    (store.uploads_dir("live") / "model.keras").write_bytes(b"x")
    idle = store.uploads_dir("idle")
    idle.mkdir(parents=True)
    (idle / "model.keras").write_bytes(b"x")
    day_ago = time.time() - 25 * 3600
    for path in (idle / "model.keras", idle):
        os.utime(path, (day_ago, day_ago))
    assert store.clean_uploads() == ["idle"]
    assert (store.uploads_dir("live") / "model.keras").exists() and not idle.exists()


def test_cli_with_an_unwritable_output_folder_exits_2_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = subprocess.run([sys.executable, "-m", "optimizer", "run", str(CANCER_MODEL), "--data", str(CANCER_DATA),
                           "--out", str(blocker / "out")], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot write results to" in lines[0] and "not a directory" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
