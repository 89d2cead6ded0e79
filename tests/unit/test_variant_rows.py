"""A variant's row while a run fills it: named writes, the first failure kept, safe across threads."""

import threading

from optimizer.run.rows import VariantRow
from optimizer.variants import VariantSpec


def test_the_first_failure_is_kept_and_notes_do_not_change_the_status():
    row = VariantRow(VariantSpec("int8"))
    assert row.ok and row.to_dict()["variant"] == "int8" and row.to_dict()["error"] is None
    row.note("sold as integer-only but computes in float: CAST#0")
    assert row.ok and row.to_dict()["error"].startswith("sold as integer-only")
    row.fail("converter error: boom")
    row.fail("a later failure")
    assert row.status == "failed" and "converter error: boom" in row.to_dict()["error"]
    assert "a later failure" not in row.to_dict()["error"]


def test_refusal_and_warnings_and_a_copy_on_export():
    row = VariantRow(VariantSpec("qat"))
    row.refuse("skipped", "training needs a Keras model")
    row.warn("first")
    exported = row.to_dict()
    exported["status"] = "changed"
    assert row.status == "skipped" and row.to_dict()["warnings"] == ["first"]


def test_concurrent_writers_lose_nothing():
    row = VariantRow(VariantSpec("float16"))

    def write(i: int) -> None:
        for j in range(200):
            row.warn(f"{i}-{j}")
            row.record_evaluation({f"figure_{i}": j})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = row.to_dict()
    assert len(data["warnings"]) == 800 and all(data[f"figure_{i}"] == 199 for i in range(4))
