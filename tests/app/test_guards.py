"""AppTest of what must never go wrong quietly: a stored run that failed or was cancelled renders its reason on
Compare; a ?run= naming no run says so; a refused input cannot be run; an upload without its data file is not
taken for "no data"; the page's options (label column, task, seed) reach the stored job request."""

import io
import re
import time

import numpy as np
import pandas as pd

from optimizer.jobs.store import ACTIVE, RunStore
from tests.app.test_pages import _app
from tests.conftest import CANCER_DATA, CANCER_MODEL, DIGITS_DATA, DIGITS_MODEL
from ui.state import Selection


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _stored_run(store: RunStore, status: str, error: str | None, rows) -> str:
    run_id = store.create("seeded.keras", {"model": {"name": "seeded.keras", "sha256": "ab" * 32}}, {})
    store.update(run_id, status=status, error=error, rows=rows)
    return run_id


def test_compare_explains_a_cancelled_a_failed_and_a_partly_failed_run(runs_dir):
    store = RunStore(runs_dir)
    cancelled = _stored_run(store, "cancelled", "cancelled by the user", None)
    failed = _stored_run(store, "failed", "Worker failed: the conversion worker ran out of memory", [
        {"variant": "float32", "kind": "float32", "status": "failed", "error": "converter crashed (SIGKILL)"},
        {"variant": "int8", "kind": "int8", "status": "skipped", "error": "needs calibration data"}])
    partly = _stored_run(store, "done", None, [
        {"variant": "float32", "kind": "float32", "status": "ok", "size_bytes": 1000, "gzip_bytes": 900,
         "latency_ms_p50": 0.1, "latency_ms_p95": 0.2, "accuracy": 0.9},
        {"variant": "int16x8", "kind": "int16x8", "status": "failed", "error": "calibration diverged"}])

    at = _app("app_pages/3_Compare.py")
    at.session_state["current_run"] = cancelled  # selected by default: the run this session last followed
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Run {cancelled} cancelled: cancelled by the user" in _texts(at.error)
    assert "No variant finished" in _texts(at.caption)

    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = failed
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Run {failed} failed: Worker failed: the conversion worker ran out of memory" in _texts(at.error)
    reasons = at.dataframe[0].value
    assert dict(zip(reasons["variant"], reasons["error"], strict=True)) == {
        "float32": "converter crashed (SIGKILL)", "int8": "needs calibration data"}

    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = partly
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "int16x8 (failed): calibration diverged" in _texts(at.warning)
    table = at.dataframe[0].value
    assert list(table["Variant"]) == ["float32", "int16x8"]
    assert list(table["Status"]) == ["ok", "✗ failed: calibration diverged"]


def test_a_run_id_that_does_not_exist_says_so(runs_dir):
    RunStore(runs_dir)
    for page in ("app_pages/3_Compare.py", "app_pages/2_Variants_and_run.py"):
        at = _app(page)
        at.query_params["run"] = "20990101-000000-deadbeef"
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert f"No run `20990101-000000-deadbeef` in `{runs_dir}`" in _texts(at.error), page


def test_run_is_off_after_a_refused_model(runs_dir, tmp_path):
    not_keras = tmp_path / "notes.keras"
    not_keras.write_text("this is a text file, not a Keras archive")
    at = _app("app.py")
    at.session_state["selection_label"] = Selection(not_keras, None, label="uploaded")
    at.run()
    at.switch_page("app_pages/1_Model_and_data.py").run()
    refusal = _texts(at.error)
    assert "Archive refused: notes.keras: expected a zip archive" in refusal
    for page, button in (("app_pages/2_Variants_and_run.py", "run_button"), ("app_pages/0_Home.py", "home_run")):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.button(key=button).disabled, page
        assert f"Run is off: {refusal.rstrip('.')}" in _texts(at.warning), page

    truncated = tmp_path / "truncated.tflite"  # straight to Variants & run: the page checks the inputs itself
    truncated.write_bytes(b"TFL3" + bytes(12))
    at = _app("app_pages/2_Variants_and_run.py")
    at.session_state["selection_label"] = Selection(truncated, None, label="uploaded")
    at.run()
    assert at.button(key="run_button").disabled
    assert "Run is off: Model refused: truncated.tflite" in _texts(at.warning)
    assert RunStore(runs_dir).list() == []


def _cancer_csv() -> bytes:
    arrays = np.load(CANCER_DATA)
    frame = pd.DataFrame(arrays["x_calib"], columns=[f"feature_{i}" for i in range(30)])
    frame["diagnosis"] = arrays["y_calib"]
    return frame.to_csv(index=False).encode()


def test_uploads_need_their_data_and_the_options_reach_the_job_request(runs_dir):
    at = _app("app.py")
    at.session_state["selection_label"] = Selection(DIGITS_MODEL, DIGITS_DATA, label="Digits CNN")  # the small CNN
    at.run()
    at.switch_page("app_pages/1_Model_and_data.py").run()
    at.radio(key="source_mode").set_value("Upload").run()
    at.file_uploader(key="upload_model").set_value(("mlp.keras", CANCER_MODEL.read_bytes(), "application/zip"))
    labels = io.BytesIO()
    np.save(labels, np.zeros(10, dtype=np.int64))
    at.file_uploader(key="upload_labels").set_value(("labels.npy", labels.getvalue(), "application/octet-stream"))
    at.button(key="use_uploads").click().run()  # the data file has not arrived (a labels file alone is no data)
    assert "no data file has arrived yet: wait until its upload finishes, or tick 'run without data'" \
        in _texts(at.error)
    assert any(s.value == "Model: digits_cnn.keras" for s in at.subheader)  # the selection did not change

    at.file_uploader(key="upload_labels").clear()
    at.file_uploader(key="upload_data").set_value(("cancer.csv", _cancer_csv(), "text/csv"))
    at.checkbox(key="upload_no_data").check()
    at.button(key="use_uploads").click().run()
    assert "'run without data' is ticked, but data files were given" in _texts(at.error)
    at.checkbox(key="upload_no_data").uncheck()
    at.button(key="use_uploads").click().run()
    assert "model `mlp.keras` (uploaded) · **data:** data `cancer.csv`" in _texts(at.markdown)
    # With the default label column "label", the diagnosis column would be a 31st feature: the check says so.
    assert "Data refused: cancer.csv: input 'features' expects samples of shape (30,); found (31,)" \
        in _texts(at.error)
    at.text_input(key="label_column").set_value("diagnosis").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert "CSV label column `diagnosis`" in _texts(at.markdown)
    assert '"labelled": true' in _texts(at.json)

    at.switch_page("app_pages/2_Variants_and_run.py").run()
    at.multiselect(key="variant_kinds").set_value(["float16"])
    at.selectbox(key="task").set_value("classification")
    at.number_input(key="seed").set_value(7)
    at.button(key="run_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    store = RunStore(runs_dir)
    [record] = store.list()
    try:
        assert record["model_name"] == "mlp.keras"
        options = record["options"]
        run_options = options["options"]
        assert (run_options["label_column"], run_options["task"], run_options["seed"]) == \
            ("diagnosis", "classification", 7)
        assert options["data"].endswith("cancer.csv") and [v["kind"] for v in options["variants"]] == ["float16"]
        if store.get(record["id"])["status"] in ACTIVE:  # no second run of the same request while it is active
            assert at.button(key="run_button").disabled
            assert re.search(f"A run of these inputs is already (queued|running): {record['id']}", _texts(at.warning))
    finally:
        store.request_cancel(record["id"])
        deadline = time.monotonic() + 120
        while store.get(record["id"])["status"] in ACTIVE and time.monotonic() < deadline:
            time.sleep(0.5)



def test_refused_uploads_are_deleted(runs_dir):
    """A refused model at once; refused data once other inputs are chosen (a label column may still fix it)."""
    at = _app("app.py")
    at.session_state["selection_label"] = Selection(DIGITS_MODEL, DIGITS_DATA, label="Digits CNN")  # the small CNN
    at.run()
    at.switch_page("app_pages/1_Model_and_data.py").run()
    at.radio(key="source_mode").set_value("Upload").run()
    at.file_uploader(key="upload_model").set_value(("notes.keras", b"not a zip", "application/zip"))
    at.file_uploader(key="upload_data").set_value(("cancer.csv", _cancer_csv(), "text/csv"))
    at.button(key="use_uploads").click().run()
    assert "Archive refused: notes.keras" in _texts(at.error)
    uploads = runs_dir / "uploads"
    assert not list(uploads.rglob("notes.keras")) and not list(uploads.rglob("cancer.csv"))
    at.switch_page("app_pages/2_Variants_and_run.py").run()
    assert at.button(key="run_button").disabled  # still refused, although the files are gone

    at.switch_page("app_pages/1_Model_and_data.py").run()
    at.radio(key="source_mode").set_value("Upload").run()
    at.file_uploader(key="upload_model").set_value(("mlp.keras", CANCER_MODEL.read_bytes(), "application/zip"))
    at.file_uploader(key="upload_data").set_value(("cancer.csv", _cancer_csv(), "text/csv"))
    at.button(key="use_uploads").click().run()
    assert "Data refused: cancer.csv" in _texts(at.error)  # label column "label" does not exist
    assert list(uploads.rglob("cancer.csv")) and list(uploads.rglob("mlp.keras"))  # kept: an option may fix it
    at.radio(key="source_mode").set_value("Sample model").run()
    at.selectbox(key="sample_choice").set_value("Digits CNN (8x8 images, 10 classes)").run()
    at.button(key="use_sample").click().run()
    assert not list(uploads.rglob("cancer.csv")) and not list(uploads.rglob("mlp.keras"))
