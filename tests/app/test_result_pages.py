"""AppTest of Compare and History over stored runs seeded by hand (no TensorFlow): the table, the downloads
of files inside the run folder only, the recipes, and two runs side by side."""

import json

from optimizer.jobs.store import RunStore
from tests.app.test_pages import _app


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


def test_compare_shows_the_table_and_offers_only_files_inside_the_run_folder(runs_dir, tmp_path):
    store = RunStore(runs_dir)
    outside = tmp_path / "elsewhere.tflite"
    outside.write_bytes(b"not yours")
    run_id = _seeded(store, 4000, tflite_path=str(outside))
    at = _app("pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Model `seeded.keras` · Test CPU · ai_edge_litert 2.3.0 · 1 thread(s) · data: digits.npz" in c.value
               for c in at.caption)
    table = at.dataframe[0].value  # the results table
    assert list(table["variant"]) == ["float32", "int8"] and list(table.columns[:2]) == ["variant", "within_budget"]
    assert list(table["size_bytes"]) == [4000, 1000]
    assert not [s for s in at.selectbox if str(s.key).startswith("accuracy_axis")]  # one output: no axis choice
    assert not [c for c in at.caption if "<output>: <figure>" in c.value]
    assert at.selectbox(key="download_variant").options == ["float32"]  # int8's file is outside the run folder
    assert at.selectbox(key="recipe_variant").options == ["float32"]
    assert "float32 recipe" in at.code[0].value
    assert any("`int8`" in m.value for m in at.markdown if "Recommended" in m.value)


def test_history_compares_two_runs_side_by_side(runs_dir):
    store = RunStore(runs_dir)
    first, second = _seeded(store, 4000), _seeded(store, 8000)
    at = _app("pages/4_History.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {first, second} <= {c.value for c in at.caption}
    sizes = sorted(tuple(frame.value["size_bytes"]) for frame in at.dataframe[1:])
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
    at = _app("pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="flip_variant").options == ["int8"]
    [image] = at.get("image")
    assert "#2: dog -> cat (true dog)" in str(image.proto)
