"""A training variant whose accuracy collapses is flagged in its row, never shown as a plain ok."""

from optimizer.run.finalize import flag_collapsed_training


def _row(variant, kind, accuracy, status="ok", error=None):
    return {"variant": variant, "kind": kind, "status": status, "error": error, "accuracy": accuracy}


def test_collapse_is_measured_against_the_fine_tune_control():
    rows = [_row("float32", "float32", 0.90), _row("finetune_control", "finetune_control", 0.982),
            _row("prune50", "prune", 0.12), _row("cluster16", "cluster", 0.95), _row("qat", "qat", 0.975)]
    flag_collapsed_training(rows)
    by_name = {r["variant"]: r for r in rows}
    assert by_name["prune50"]["status"] == "ok"
    assert by_name["prune50"]["error"] == "accuracy collapsed: 12.0% vs 98.2% for the fine-tune control"
    assert by_name["cluster16"]["error"] is None  # 3.2 points below: not a collapse
    assert by_name["qat"]["error"] is None
    assert by_name["finetune_control"]["error"] is None and by_name["float32"]["error"] is None


def test_without_a_control_float32_is_the_reference_and_post_training_rows_are_left_alone():
    rows = [_row("float32", "float32", 0.98), _row("int8", "int8", 0.40), _row("cqat", "cqat", 0.50),
            _row("sparse_cluster", "sparse_cluster", 0.90)]
    flag_collapsed_training(rows)
    by_name = {r["variant"]: r for r in rows}
    assert by_name["int8"]["error"] is None  # not a training variant
    assert by_name["cqat"]["error"] == "accuracy collapsed: 50.0% vs 98.0% for float32"
    assert by_name["sparse_cluster"]["error"] is None  # exactly 8 points below: within the 10-point margin


def test_an_existing_error_is_kept_and_failed_or_unmeasured_rows_are_skipped():
    rows = [_row("float32", "float32", 0.98), _row("finetune_control", "finetune_control", None, status="failed",
                                                    error="training error: boom"),
            _row("pqat", "pqat", 0.30, error="sold as integer-only but computes in float: MUL"),
            _row("qat", "qat", None, status="failed", error="training error: x"), _row("prune", "prune", None)]
    flag_collapsed_training(rows)
    by_name = {r["variant"]: r for r in rows}
    assert by_name["pqat"]["error"] == ("sold as integer-only but computes in float: MUL; "
                                        "accuracy collapsed: 30.0% vs 98.0% for float32")
    assert by_name["qat"]["error"] == "training error: x" and by_name["prune"]["error"] is None
    assert by_name["finetune_control"]["error"] == "training error: boom"


def test_no_reference_no_flag():
    rows = [_row("prune", "prune", 0.1), _row("float32", "float32", None, status="failed", error="x")]
    flag_collapsed_training(rows)
    assert rows[0]["error"] is None
