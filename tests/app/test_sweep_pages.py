"""Sweeps in the app: grids on Variants & run become points of the run request, and Compare draws each swept
option against the figures of a stored sweep; a target's failure or unresolvable latency is said on Compare."""

import json

from optimizer.jobs.store import RunStore
from tests.app.test_pages import _app


def test_grids_add_their_points_to_the_run_request(runs_dir, monkeypatch):
    from ui import services

    queued = []
    monkeypatch.setattr(services, "start_run", lambda request: queued.append(request) or "run-id")
    at = _app("app_pages/2_Variants_and_run.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.text_area(key="sweep_grids").input("int8:calibration_samples=50,100\nbogus:x=1").run()
    assert any("variant kind: expected one of" in e.value for e in at.error)  # a bad grid is refused in words
    at.text_area(key="sweep_grids").input("int8:calibration_samples=50,100").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="run_button").click().run()
    assert len(queued) == 1
    names = [v["name"] for v in queued[0].variants]
    assert names[-2:] == ["int8_calibration_samples50", "int8_calibration_samples100"]
    assert [v["options"]["calibration_samples"] for v in queued[0].variants[-2:]] == [50, 100]
    assert len(names) == len(set(names))


def _sweep_run(store: RunStore) -> str:
    run_id = store.create("sweep.keras", {"model": {"name": "sweep.keras", "sha256": "ab" * 32}}, {"seed": 0})
    rows = [{"variant": "float32", "kind": "float32", "status": "ok", "size_bytes": 4000, "latency_ms_p50": 0.2,
             "latency_ms_p95": 0.3, "accuracy": 0.97, "options": {}}]
    rows += [{"variant": f"prune_sparsity{s}", "kind": "prune", "status": "ok", "size_bytes": 4000,
              "gzip_bytes": 4000 - 3000 * s / 10, "latency_ms_p50": 0.2, "latency_ms_p95": 0.3,
              "accuracy": 0.97 - s / 100, "accuracy_delta": -s / 100, "options": {"sparsity": s / 10, "epochs": 1}}
             for s in (3, 6, 9)]
    manifest = {"cpu": "Test CPU", "threads": 1, "data": {"source": "d.npz"},
                "targets": [{"label": "local", "error": None,
                             "latency_note": "latency differences below 12% cannot be resolved on this machine now"},
                            {"label": "pi@10.0.0.9:22", "error": "cannot reach pi@10.0.0.9:22: connection refused"}]}
    store.update(run_id, status="done", rows=rows, manifest=manifest)
    return run_id


def test_compare_draws_each_swept_option_and_says_what_the_targets_could_not_measure(runs_dir):
    store = RunStore(runs_dir)
    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = _sweep_run(store)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot reach pi@10.0.0.9:22: connection refused" in w.value for w in at.warning)
    assert any("below 12% cannot be resolved" in i.value and "unresolved" in i.value for i in at.info)
    assert "Parameter sweep" in {e.label for e in at.expander}
    assert not at.get("plotly_chart") and len(at.get("echarts_chart")) == 1  # closed: only the trade-off chart
    at.session_state["show_sweep"] = True
    at.run()
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Accuracy by sparsity" in titles and "gzip size (bytes) by sparsity" in titles
    assert not any("epochs" in t for t in titles)  # one value: not a swept option


def test_the_search_form_queues_a_budget_driven_search(runs_dir, monkeypatch):
    from ui import services

    queued = []
    monkeypatch.setattr(services, "start_run", lambda request: queued.append(request) or "run-id")
    at = _app("app_pages/2_Variants_and_run.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="search_max_kb").set_value(100.0)
    at.number_input(key="search_max_ms").set_value(0.0)  # no latency limit
    at.number_input(key="search_trials").set_value(7)
    at.selectbox(key="search_priority").set_value("latency")
    at.run()
    at.button(key="search_button").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(queued) == 1
    search = queued[0].search
    assert search["budget"] == {"max_size_bytes": 100 * 1024, "max_latency_ms_p95": None, "max_accuracy_drop": 0.01}
    assert search["trials"] == 7 and search["priority"] == "latency"
    assert queued[0].variants == []  # the search proposes its own variants


def test_compare_shows_what_a_search_ended_with(runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create("s.keras", {"model": {"name": "s.keras", "sha256": "cd" * 32}}, {"seed": 0})
    rows = [{"variant": "float32", "kind": "float32", "status": "ok", "size_bytes": 400_000, "latency_ms_p50": 0.2,
             "latency_ms_p95": 0.3, "accuracy": 0.97, "options": {}}]
    search = {"trials": [{"trial": 0, "state": "complete", "variant": "int8", "kind": "int8", "size_bytes": 300_000,
                          "feasible": False}], "pareto": ["int8"], "pareto_within_budget": False,
              "recommendation": None, "reason": "no measured variant is within the budget",
              "shortfall": ["size: the smallest was 293 KB, the limit 100 KB"]}
    store.update(run_id, rows=rows, manifest={"cpu": "Test CPU", "threads": 1, "search": search}, status="done")
    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No variant met the budget" in e.value and "293 KB" in e.value for e in at.error)
    assert any("Pareto set (none within the budget" in m.value for m in at.markdown)
