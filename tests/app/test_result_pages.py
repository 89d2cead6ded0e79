"""AppTest of Compare and History over stored runs seeded by hand (no TensorFlow): the table, the downloads
of files inside the run folder only (each built on click), the sections drawn only once opened (recipes,
statistics, flips), and two runs side by side."""

import json

import pytest

from optimizer.jobs.store import RunStore
from tests.app.test_pages import _app, _tradeoff_chart, _tradeoff_points


def _seeded(store: RunStore, size: int, tflite_path: str = "variants/int8.tflite") -> str:
    run_id = store.create("seeded.keras", {"model": {"name": "seeded.keras", "sha256": "cd" * 32}}, {"seed": 0})
    variants = store.job_dir(run_id) / "variants"
    variants.mkdir(parents=True)
    (variants / "float32.tflite").write_bytes(b"F" * size)
    (variants / "float32.py").write_text("print('float32 recipe')\n")
    rows = [{"variant": "float32", "kind": "float32", "status": "ok", "size_bytes": size, "gzip_bytes": size - 10,
             "latency_ms_p50": 0.2, "latency_ms_p95": 0.3, "accuracy": 0.9, "runtime": "ai_edge_litert",
             "runtime_version": "2.3.0", "threads": 1, "path": "variants/float32.tflite",
             "recipe_path": "variants/float32.py"},
            {"variant": "int8", "kind": "int8", "status": "ok", "size_bytes": size // 4, "latency_ms_p50": 0.1,
             "latency_ms_p95": 0.15, "accuracy": 0.89, "accuracy_delta": -0.01, "path": tflite_path}]
    store.update(run_id, status="done", rows=rows,
                 manifest={"cpu": "Test CPU", "threads": 1, "data": {"source": "digits.npz"}})
    return run_id


def _frames_with(at, column: str) -> list:
    """The data of every st.dataframe on the page that has ``column`` (AppTest does not expose their keys)."""
    return [frame.value for frame in at.dataframe if column in frame.value.columns]


def test_compare_shows_the_table_and_offers_only_files_inside_the_run_folder(runs_dir, tmp_path):
    store = RunStore(runs_dir)
    outside = tmp_path / "elsewhere.tflite"
    outside.write_bytes(b"not yours")
    run_id = _seeded(store, 4000, tflite_path=str(outside))
    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Model `seeded.keras` · Test CPU · ai_edge_litert 2.3.0 · 1 thread(s) · data: digits.npz" in c.value
               for c in at.caption)
    [table] = [frame.value for frame in at.dataframe]  # the results table; every other section is closed
    assert list(table.columns[:3]) == ["Variant", "Accuracy (%)", "Status"]
    assert list(table["Variant"]) == ["float32", "int8"] and list(table["Status"]) == ["ok", "ok"]
    assert list(table["Size (KB)"]) == [3.91, 0.977] and list(table["Accuracy (%)"]) == [90.0, 89.0]
    assert "Within budget" not in table.columns  # no limit set
    assert not [s for s in at.selectbox if str(s.key).startswith("accuracy_axis")]  # one output: no axis choice
    assert not [c for c in at.caption if "<output>: <figure>" in c.value]
    assert at.selectbox(key="download_variant").options == ["float32"]  # int8's file is outside the run folder
    downloads = {b.proto.label: b.proto for b in at.get("download_button")}
    for label in ("Download float32.tflite", "Results CSV", "Results JSON", "HTML report", "Download all (zip)"):
        assert downloads[label].deferred_file_id and not downloads[label].url, label  # built or read on click
    assert not at.code and not [s for s in at.selectbox if s.key == "recipe_variant"]  # the recipes are closed
    assert {"All columns, as stored", "Latency distributions", "Is the difference real?", "Recipes"} <= \
        {e.label for e in at.expander}  # closed (no per-class figures, audit or diagnosis in this run)
    assert not at.get("plotly_chart")  # the open tab's chart only, drawn by ECharts
    chart = _tradeoff_chart(at)
    assert chart["title"]["text"] == "Latency p50 (ms) vs File size (KB)"
    assert chart["xAxis"]["name"] == "File size (KB) (lower is better)"
    assert _tradeoff_points(chart) == {"float32": (pytest.approx(4000 / 1024), pytest.approx(0.2)),
                                       "int8": (pytest.approx(1000 / 1024), pytest.approx(0.1))}

    at.session_state["stored_columns"] = True
    at.session_state["show_recipes"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    raw = at.dataframe[1].value  # every stored column
    assert list(raw["variant"]) == ["float32", "int8"] and list(raw.columns[:2]) == ["variant", "within_budget"]
    assert list(raw["size_bytes"]) == [4000, 1000]
    assert at.selectbox(key="recipe_variant").options == ["float32"]
    assert "float32 recipe" in at.code[0].value
    assert [h.value for h in at.subheader if "Recommended" in h.value] == ["Recommended: `int8`"]
    reason = "int8: 4.0× smaller than float32, accuracy -1.0 pts, not tested"
    assert any(m.value.startswith(reason) for m in at.markdown)
    assert [(m.label, m.value) for m in at.metric] == [("Size", "1000 B"), ("Latency p50", "100 µs"),
                                                       ("Accuracy", "89.0%")]


def test_compare_recommends_by_the_priority_and_the_budget_and_adds_picked_columns(runs_dir):
    store = RunStore(runs_dir)
    run_id = _seeded(store, 4000)
    record = store.get(run_id)
    rows = record["rows"]
    rows[0].update(latency_ms_p50_ci_low=0.19, latency_ms_p50_ci_high=0.21)
    rows[1].update(accuracy_verdict="within noise", mcnemar_p=1.0, latency_verdict="same", flips=1,
                   latency_ms_p50_ci_low=0.09, latency_ms_p50_ci_high=0.25)
    rows.append({"variant": "int16x8", "kind": "int16x8", "status": "failed", "error": "calibration diverged"})
    store.update(run_id, rows=rows)
    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="priority").value == "size"
    at.selectbox(key="priority").set_value("latency").run()  # latency the same: size still decides
    assert [h.value for h in at.subheader if "Recommended" in h.value] == ["Recommended: `int8`"]
    assert any("float32 is as fast, so size decided" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert list(table["Status"]) == ["ok", "ok", "✗ failed: calibration diverged"]
    assert list(table["Latency vs float32"].iloc[:2]) == ["reference", "same"]
    assert table["Latency vs float32"].isna().tolist() == [False, False, True]  # an empty cell, never "None"
    assert table["Size (KB)"].isna().tolist() == [False, False, True]
    assert at.dataframe[0].proto.placeholder == ""  # missing values drawn as empty cells
    at.multiselect(key=f"table_columns_{run_id}").set_value(["gzip_bytes", "flips"]).run()
    table = at.dataframe[0].value
    assert list(table["gzip size (KB)"].iloc[:1]) == [3.9] and table["Prediction flips"].iloc[1] == 1

    at.number_input(key="budget_size_kb").set_value(0.5).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [h for h in at.subheader if "Recommended" in h.value]
    assert any("No variant meets the budget: float32 (3.9 KB, over the 512 B size limit)" in w.value
               for w in at.warning)
    assert list(at.dataframe[0].value["Within budget"]) == [False, False, False]


def test_history_compares_two_runs_side_by_side(runs_dir):
    store = RunStore(runs_dir)
    first, second = _seeded(store, 4000), _seeded(store, 8000)
    at = _app("app_pages/4_History.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {f"A: {second}", f"B: {first}"} <= {c.value for c in at.caption}  # A: the newest run, B: the one before
    overview = at.dataframe[0].value
    assert list(overview.columns[:6]) == ["run", "date", "duration", "status", "model", "kinds"]
    assert list(overview["kinds"]) == ["float32, int8", "float32, int8"]
    assert any("Same inputs, options, variants, versions and machine." in c.value for c in at.caption)
    [figures] = _frames_with(at, "change")  # the variants' figures that differ, B against A
    found = {(r.variant, r.figure): (r.A, r.B, r.change) for r in figures.itertuples()}
    assert found[("float32", "size_bytes")] == ("7.8 KB", "3.9 KB", "-50.0%")
    sizes = sorted(tuple(frame["size_bytes"]) for frame in _frames_with(at, "size_bytes"))
    assert sizes == [(4000, 1000), (8000, 2000)]
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {name for trace in figure["data"] if trace.get("mode") == "markers+text" for name in trace["text"]}
    assert names == {"A:float32", "A:int8", "B:float32", "B:int8"}


def test_compare_shows_the_flipped_images_against_the_float32_reference(runs_dir):
    import numpy as np

    store = RunStore(runs_dir)
    run_id = _seeded(store, 4000)
    record = store.get(run_id)
    rows = record["rows"]
    rows[1].update(flips=1, flip_indices=[2], flips_by_class={"1": 1})
    store.update(run_id, rows=rows,
                 manifest={**record["manifest"], "data": {"source": "digits.npz", "class_names": ["cat", "dog"]}})
    work = store.job_dir(run_id) / "work"
    (work / "outputs").mkdir(parents=True)
    np.save(work / "eval_x.npy", np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32))
    np.save(work / "eval_y.npy", np.array([0, 1, 1, 0]))
    reference = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=np.float32)
    np.savez(work / "outputs" / "float32.npz", output=reference)  # each variant's outputs, by output name
    np.savez(work / "outputs" / "int8.npz", output=np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32))
    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("image")  # "Is the difference real?" is closed: nothing is loaded
    at.session_state["show_significance"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.dataframe[1].value["variant"]) == ["float32", "int8"]  # the statistics against float32
    assert at.selectbox(key="flip_variant").options == ["int8"]
    [image] = at.get("image")
    assert "#2: dog -> cat (true dog)" in str(image.proto)
