import pytest

from optimizer.errors import InvalidOption
from optimizer.store import RunStore


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
