"""AppTest: every page renders with and without a stored run; a flow driven by widget keys runs a tiny
model in the background and shows a table and charts whose data match the stored results."""

import base64
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from optimizer.jobs.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
# The pages; app.py is the entry point that lists them for the sidebar (st.navigation), Home first.
PAGES = ["app_pages/0_Home.py", "app_pages/1_Model_and_data.py", "app_pages/2_Variants_and_run.py",
         "app_pages/3_Compare.py", "app_pages/4_History.py"]
ENTRY = "app.py"


def _app(page: str) -> AppTest:
    return AppTest.from_file(str(ROOT / page), default_timeout=120)


def _array(value):
    """Plotly 7 sends numeric arrays as {dtype, bdata} (base64); plain lists pass through."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    return value


def _tradeoff_chart(at) -> dict:
    """The Compare page's trade-off chart: its ECharts option (optimizer.report.echarts), the page's only one."""
    [chart] = at.get("echarts_chart")
    return json.loads(chart.proto.spec)


def _tradeoff_points(chart: dict) -> dict[str, tuple[float, float]]:
    """Each variant's point in an ECharts trade-off chart, in the axes' units (KB, %, ms): its own series, the
    one with a label (the recommended ring and the Pareto front have none)."""
    return {s["label"]["formatter"]: tuple(s["data"][0]) for s in chart["series"]
            if s["type"] == "scatter" and s.get("label")}


def _wait_done(runs_dir: Path, timeout: float = 240) -> dict:
    store = RunStore(runs_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = store.list()
        if records and records[0]["status"] not in ("queued", "running"):
            return records[0]
        time.sleep(0.5)
    pytest.fail(f"no run finished; runs: {store.list()}")


@pytest.mark.parametrize("page", [ENTRY, *PAGES])
def test_every_page_renders_without_a_run(runs_dir, page):
    at = _app(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_the_sidebar_lists_home_first_then_the_pages(runs_dir):
    at = _app(ENTRY).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["TFLite Optimization Studio"]  # the default page: Home
    registered = at._registered_pages.values()  # what st.navigation registered (AppTest has no public view)
    assert [page["page_name"] for page in registered] == ["Home", "Model and data", "Variants and run", "Compare",
                                                          "History"]
    assert [page["url_pathname"] for page in registered] == ["", "Model_and_data", "Variants_and_run", "Compare",
                                                             "History"]  # the addresses the browser tests open


def test_flow_choose_sample_pick_variants_run_and_compare(runs_dir):
    at = _app("app.py").run()
    at.switch_page("app_pages/1_Model_and_data.py").run()
    at.selectbox(key="sample_choice").set_value("Breast-cancer MLP (30 features, 2 classes)").run()
    at.button(key="use_sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cancer_mlp.keras" in s.value for s in at.subheader)

    at.switch_page("app_pages/2_Variants_and_run.py").run()
    at.multiselect(key="variant_kinds").set_value(["float32", "float16", "int8_io"]).run()
    at.button(key="run_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    record = _wait_done(runs_dir)
    assert record["status"] == "done", record["error"]
    assert record["model_name"] == "cancer_mlp.keras"
    at.run()
    assert any("finished" in s.value for s in at.success)

    at.switch_page("app_pages/3_Compare.py")
    at.session_state["stored_columns"] = True  # "All columns, as stored" opened
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table, raw = at.dataframe[0].value, at.dataframe[1].value  # for people, and every stored column
    assert list(table["Variant"]) == list(raw["variant"]) == ["float32", "float16", "int8_io"]
    stored = {r["variant"]: r for r in record["rows"]}
    for (_, row), (_, shown) in zip(raw.iterrows(), table.iterrows(), strict=True):
        assert row["size_bytes"] == stored[row["variant"]]["size_bytes"]
        assert row["accuracy"] == pytest.approx(stored[row["variant"]]["accuracy"])
        assert shown["Accuracy (%)"] == pytest.approx(100 * stored[row["variant"]]["accuracy"], abs=0.005)
    points = _tradeoff_points(_tradeoff_chart(at))  # File size (KB) against latency (ms)
    assert set(points) == set(stored)
    for name, (x, y) in points.items():
        assert x == pytest.approx(stored[name]["size_bytes"] / 1024, rel=1e-3)
        assert y == pytest.approx(stored[name]["latency_ms_p50"], rel=1e-3)
    assert any("Recommended" in h.value for h in at.subheader)

    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])


def test_bad_upload_selection_shows_a_clear_error(runs_dir, tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"this is not a model")
    at = _app("app_pages/1_Model_and_data.py")
    from ui.state import Selection

    at.session_state["selection_label"] = Selection(bad, None, label="uploaded")
    at.run()
    assert not at.exception
    assert any("Model refused: broken.tflite: expected a TensorFlow Lite flatbuffer" in e.value for e in at.error)


def test_the_streamlit_process_never_imports_tensorflow(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["STUDIO_RUNS_DIR"] = {str(tmp_path / 'runs')!r}
        os.environ["STUDIO_WARM"] = "0"
        from streamlit.testing.v1 import AppTest
        for page in {[ENTRY, *PAGES]!r}:
            at = AppTest.from_file({str(ROOT)!r} + "/" + page, default_timeout=120).run()
            assert not at.exception, [e.value for e in at.exception]
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        assert "keras" not in sys.modules, "keras was imported"
        print("clean")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "clean" in result.stdout


def test_a_new_tab_finds_the_running_job_and_a_reload_follows_it(runs_dir):
    from optimizer.jobs.runner import JobRequest, submit
    from optimizer.run.options import RunOptions
    from tests.conftest import CANCER_DATA, CANCER_MODEL

    first_tab = _app("app_pages/2_Variants_and_run.py").run()  # starts the scheduler of this server process
    store = RunStore(runs_dir)
    run_id = submit(store, JobRequest(model=str(CANCER_MODEL), data=str(CANCER_DATA), options=RunOptions(warmup_runs=1),
                                      variants=[{"kind": "float16"}]), session="another-tab")
    second_tab = _app("app_pages/2_Variants_and_run.py").run()
    assert not second_tab.exception
    follow = second_tab.button(key=f"follow_{run_id}")
    follow.click().run()
    assert any(run_id in info.value for info in [*second_tab.info, *second_tab.success])
    reloaded = _app("app_pages/2_Variants_and_run.py")
    reloaded.query_params["run"] = run_id
    reloaded.run()
    assert any(run_id in info.value for info in [*reloaded.info, *reloaded.success])
    record = _wait_done(runs_dir)
    assert record["status"] == "done" and not first_tab.exception


def test_a_model_with_two_outputs_gets_a_task_per_output_and_an_accuracy_output(runs_dir, tmp_path):
    from tests.support.models import two_heads
    from ui.state import Selection

    built = two_heads(tmp_path)
    at = _app("app_pages/2_Variants_and_run.py")
    at.session_state["selection_label"] = Selection(built.model, built.data, label="uploaded")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="task_per_output").placeholder == "digit=classification,ink=regression"
    assert at.selectbox(key="accuracy_output").options == ["the first labelled classification output", "digit",
                                                          "ink"]
    at.text_input(key="task_per_output").input("digit=classification,inc=regression").run()
    assert any("no output 'inc'" in e.value for e in at.error)
