"""Small guarantees found in review: safe variant names, unknown progress stages, requests stored before
RunOptions were nested, a runner that stops once its run was marked interrupted, and fidelity that always
waits for the float32 reference."""

from __future__ import annotations

import threading
import time

import pytest

from optimizer.errors import InvalidOption
from optimizer.jobs.runner import JobRequest, _keep_alive
from optimizer.jobs.store import RunStore
from optimizer.records import ProgressEvent, Stage
from optimizer.run.context import Evaluator
from optimizer.variants import VariantSpec


@pytest.mark.parametrize("name", ["../../x", "a/b", "", "x" * 65, "int8.tflite"])
def test_a_variant_name_that_could_leave_the_run_folder_is_refused(name):
    with pytest.raises(InvalidOption, match="variant name"):
        VariantSpec("int8", name=name or " ")


def test_a_progress_stage_nobody_listed_is_kept_not_fatal():
    event = ProgressEvent.from_dict({"stage": "quantizing layers", "variant": "extra", "layer": 3})
    assert event.stage is Stage.WORKING and event.variant == "extra"
    assert event.details == {"layer": 3, "reported_stage": "quantizing layers"}


def test_a_request_stored_before_options_were_nested_still_reads():
    request = JobRequest.from_dict({"model": "m.keras", "threads": 2, "seed": 7, "variants": []})
    assert (request.options.threads, request.options.seed) == (2, 7)
    with pytest.raises(InvalidOption, match="unknown fields"):
        JobRequest.from_dict({"model": "m.keras", "colour": "red"})


def test_a_runner_whose_run_was_marked_interrupted_stops(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create("a.keras", {}, {})
    store.claim_next("server", 1)
    cancel, stop = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_keep_alive, args=(store, run_id, cancel, stop), daemon=True)
    watcher.start()
    time.sleep(0.7)
    assert not cancel.is_set()  # running: it only beats
    store.finish_if_active(run_id, "interrupted", "reaped while the runner was stalled")
    assert cancel.wait(3), "the runner kept computing beside the job that took its place"
    stop.set()


class _SlowReferenceContext:
    """Evaluates float32 slowly and records, for each variant, whether the reference was done before it."""

    def __init__(self) -> None:
        self.seen: dict[str, bool] = {}
        self.reference_done = False

    def evaluate(self, spec, outcome):
        if spec.name == "float32":
            time.sleep(0.5)
            self.reference_done = True
        self.seen[spec.name] = self.reference_done

    def fail_unexpectedly(self, spec, step, error):
        raise AssertionError(error)


def test_closing_the_evaluator_does_not_skip_a_reference_still_in_flight():
    context = _SlowReferenceContext()
    evaluator = Evaluator(context)  # type: ignore[arg-type]
    evaluator.submit(VariantSpec("float32"), {})
    time.sleep(0.1)  # float32 is being evaluated on one thread
    evaluator.submit(VariantSpec("int8"), {})
    evaluator.close_and_wait()  # the last conversion arrived: close while float32 is still in flight
    assert context.seen == {"float32": True, "int8": True}
