import pytest

from optimizer.errors import InvalidOption
from optimizer.jobs.store import RunStore


def test_create_update_list_delete(tmp_path):
    store = RunStore(tmp_path)
    first = store.create("a.keras", {"model": {"name": "a.keras", "sha256": "x"}}, {"threads": 1})
    second = store.create("b.keras", {}, {})
    assert [r["id"] for r in store.list()] == [second, first]
    assert store.queue_position(first) == 1 and store.queue_position(second) == 2
    store.update(first, status="done", rows=[{"variant": "float32"}], progress={"stage": "done"})
    record = store.get(first)
    assert record["rows"] == [{"variant": "float32"}] and record["progress"]["stage"] == "done"
    assert store.queue_position(second) == 1
    with pytest.raises(InvalidOption, match="cancel it before deleting"):
        store.delete(second)
    store.delete(first)
    assert store.get(first) is None and not store.job_dir(first).exists()


def test_reopening_the_store_keeps_runs(tmp_path):
    run_id = RunStore(tmp_path).create("a.keras", {}, {})
    assert RunStore(tmp_path).get(run_id)["status"] == "queued"


def test_finish_if_active_does_not_overwrite_a_final_status(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create("a.keras", {}, {})
    store.update(run_id, status="done")
    assert not store.finish_if_active(run_id, "failed", "late")
    assert store.get(run_id)["status"] == "done"


def test_cancel_of_a_queued_run_and_bad_ids(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create("a.keras", {}, {})
    store.request_cancel(run_id)
    assert store.get(run_id)["status"] == "cancelled"
    with pytest.raises(InvalidOption, match="run id"):
        store.job_dir("../etc")


def test_a_claim_is_atomic_and_the_running_limit_holds_for_the_whole_folder(tmp_path):
    first_server, second_server = RunStore(tmp_path), RunStore(tmp_path)
    first = first_server.create("a.keras", {}, {})
    second = first_server.create("b.keras", {}, {})
    claimed = first_server.claim_next("server-a", max_running=1)
    assert claimed["id"] == first and claimed["status"] == "running" and claimed["server_id"] == "server-a"
    assert second_server.claim_next("server-b", max_running=1) is None  # the other server's job counts
    assert second_server.get(second)["status"] == "queued"
    first_server.update(first, status="done")
    claimed = second_server.claim_next("server-b", max_running=1)
    assert claimed["id"] == second and claimed["claims"] == 1
    assert first_server.claim_next("server-a", max_running=5) is None  # nothing queued any more


def test_only_a_dead_or_silent_runner_is_marked_interrupted(tmp_path, monkeypatch):
    import os
    import time

    from optimizer.jobs import store as store_module

    store = RunStore(tmp_path)
    live, silent, gone = (store.create(name, {}, {}) for name in ("live.keras", "silent.keras", "gone.keras"))
    for _ in range(3):
        store.claim_next("server", max_running=3)
    store.heartbeat(live, os.getpid())
    store.heartbeat(gone, 999_999_999)  # no such process
    with store._connect() as db:  # the silent runner's last heartbeat is older than the limit
        db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - store_module.STALE_AFTER_S - 1,
                                                                      silent))
    assert sorted(store.reap_dead()) == sorted([silent, gone])
    assert store.get(live)["status"] == "running"
    assert store.get(silent)["status"] == "interrupted" and "runner" in store.get(silent)["error"]


def test_a_final_status_never_changes(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create("a.keras", {}, {})
    store.claim_next("server", max_running=1)
    assert store.finish_if_active(run_id, "interrupted", "lost")
    assert not store.update(run_id, status="done", rows=[{"variant": "float32"}])
    record = store.get(run_id)
    assert record["status"] == "interrupted" and record["rows"] is None and record["finished_at"]


def test_the_same_request_while_active_is_one_run(tmp_path):
    store = RunStore(tmp_path)
    first = store.create("a.keras", {}, {}, request_key="k")
    assert store.create("a.keras", {}, {}, request_key="k") == first
    store.update(first, status="done")
    assert store.create("a.keras", {}, {}, request_key="k") != first  # finished: a new run is a new run


def test_an_older_runs_database_gets_the_new_columns(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL,"
                   " status TEXT NOT NULL, session TEXT, model_name TEXT NOT NULL, inputs TEXT NOT NULL,"
                   " options TEXT NOT NULL, progress TEXT, error TEXT, runner_pid INTEGER, server_id TEXT,"
                   " cancel_requested INTEGER NOT NULL DEFAULT 0, rows TEXT, manifest TEXT)")
        db.execute("INSERT INTO runs (id, created_at, updated_at, status, model_name, inputs, options)"
                   " VALUES ('old-1', 1, 1, 'done', 'a.keras', '{}', '{}')")
    store = RunStore(tmp_path)
    assert store.get("old-1")["claims"] == 0
    assert store.claim_next("server", 1) is None
