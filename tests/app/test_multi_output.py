"""AppTest of models with several inputs or outputs (no TensorFlow: the model summary is given, the data check is
real): Model & data maps each array to its tensor, or shows the refusal; Compare shows each output's column group,
the warnings of a row, and plots the output chosen as the accuracy axis."""

import json

import numpy as np
import pytest

from optimizer.jobs.store import RunStore
from tests.app.test_pages import _app, _tradeoff_chart, _tradeoff_points
from tests.conftest import DIGITS_DATA, DIGITS_MODEL
from ui import services
from ui.state import Selection


def _summary(inputs: dict[str, list], outputs: dict[str, list]) -> dict:
    """What the inspection worker returns for a Keras model with these tensors (shape with the batch axis)."""
    return {"file_name": "model.keras", "format": "keras", "source": "tensorflow", "file_size_bytes": 1000,
            "sha256": "ef" * 32, "parameter_count": 10, "layers": [{"name": "dense", "type": "Dense"}],
            "inputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in inputs.items()],
            "outputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in outputs.items()]}


def _model_and_data_page(monkeypatch, tmp_path, summary: dict, arrays: dict[str, np.ndarray]):
    model, data = tmp_path / "model.keras", tmp_path / "data.npz"
    model.write_bytes(b"a model the given summary describes")
    np.savez(data, **arrays)
    monkeypatch.setattr(services, "inspect_model", lambda path, sha256: summary)
    at = _app("app_pages/1_Model_and_data.py")
    at.session_state["selection_label"] = Selection(model, data, label="uploaded")
    return at.run()


def _tensor_map(at) -> list[dict]:
    tables = [t.value for t in at.table if "tensor" in t.value.columns]
    return tables[0].to_dict("records") if tables else []


def test_model_and_data_maps_each_array_to_its_tensor(runs_dir, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    summary = _summary({"pixels": [None, 8, 8, 1]}, {"digit": [None, 3], "ink": [None, 1]})
    at = _model_and_data_page(monkeypatch, tmp_path, summary, {
        "x": rng.random((20, 8, 8), dtype=np.float64), "y_digit": rng.integers(0, 3, 20)})
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    rows = {row["tensor"]: row for row in _tensor_map(at)}
    assert list(rows) == ["pixels", "digit", "ink"]
    assert rows["pixels"] == {"tensor": "pixels", "role": "input", "expected shape": "(8, 8, 1)",
                              "expected dtype": "float32", "data": "data.npz: x", "found shape": "(8, 8, 1)",
                              "found dtype": "float32", "use": "fed to the model"}  # channel added, float32
    assert (rows["digit"]["data"], rows["digit"]["found shape"], rows["digit"]["found dtype"]) == \
        ("data.npz: y_digit", "scalar", "int64")
    assert rows["digit"]["use"] == "scored against its labels"
    assert (rows["ink"]["data"], rows["ink"]["use"]) == ("", "fidelity only")


def test_model_and_data_names_every_input_or_shows_the_refusal(runs_dir, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    summary = _summary({"stats": [None, 3], "image": [None, 8, 8, 1]}, {"kind": [None, 4]})
    arrays = {"stats": rng.random((20, 3)), "image": rng.random((20, 8, 8, 1)), "y": rng.integers(0, 4, 20)}
    at = _model_and_data_page(monkeypatch, tmp_path, summary, arrays)
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert [(r["tensor"], r["data"], r["found shape"]) for r in _tensor_map(at)] == [
        ("stats", "data.npz: stats", "(3,)"), ("image", "data.npz: image", "(8, 8, 1)"),
        ("kind", "data.npz: y", "scalar")]

    del arrays["stats"]
    (tmp_path / "refused").mkdir()
    at = _model_and_data_page(monkeypatch, tmp_path / "refused", summary, arrays)
    assert not at.exception, [e.value for e in at.exception]
    assert any("data.npz: expected one array per input named ['stats', 'image']" in e.value
               and "missing ['stats']" in e.value for e in at.error), [e.value for e in at.error]
    assert _tensor_map(at) == []


def test_model_and_data_of_a_one_input_sample_has_one_row_per_tensor(runs_dir):
    at = _app("app_pages/1_Model_and_data.py")
    at.session_state["selection_label"] = Selection(DIGITS_MODEL, DIGITS_DATA, label="Digits CNN")
    at = at.run()  # the digits CNN and its data (a real inspection)
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert [(r["role"], r["data"], r["expected shape"], r["found shape"], r["use"]) for r in _tensor_map(at)] == [
        ("input", "digits.npz: x_calib + x_eval", "(8, 8, 1)", "(8, 8, 1)", "fed to the model"),
        ("output", "digits.npz: y_calib + y_eval", "(10,)", "scalar", "scored against its labels")]


def _two_head_row(name: str, kind: str, size: int, latency: float, digit: float, ink: float, **extra) -> dict:
    per_output = {"digit": {"task": "classification", "metric": "accuracy", "accuracy": digit,
                            "accuracy_delta": digit - 0.9, "per_class_accuracy": {"0": digit, "1": digit}},
                  "ink": {"task": "regression", "metric": "mae", "mae": ink, "rmse": ink * 1.2, "mae_delta": ink - 0.1}}
    return {"variant": name, "kind": kind, "status": "ok", "size_bytes": size, "latency_ms_p50": latency,
            "latency_ms_p95": latency * 1.5, "metric": "accuracy", "accuracy": digit, "accuracy_delta": digit - 0.9,
            "per_class_accuracy": per_output["digit"]["per_class_accuracy"], "headline_output": "digit",
            "per_output": per_output, **extra}


def _figures(at) -> list[dict]:
    """The Plotly figures on the page (the opened sections'; the trade-off chart is ECharts)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _y_titles(at) -> set[str]:
    return {f["layout"].get("yaxis", {}).get("title", {}).get("text") for f in _figures(at)} | \
        {_tradeoff_chart(at)["yAxis"]["name"]}


def test_compare_of_two_heads_shows_each_output_and_plots_the_chosen_one(runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create("two_heads.keras", {"model": {"name": "two_heads.keras", "sha256": "ab" * 32}}, {})
    store.update(run_id, status="done", rows=[
        _two_head_row("float32", "float32", 4000, 0.2, 0.9, 0.1),
        _two_head_row("int8", "int8", 1000, 0.1, 0.85, 0.15,
                      warnings=["quantized nothing: every op stayed float", "ink drifted"]),
    ], manifest={"accuracy_output": "digit", "tasks": {"digit": "classification", "ink": "regression"}})
    at = _app("app_pages/3_Compare.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert {"digit: accuracy (%)", "digit: accuracy_delta (pts)", "ink: mae", "ink: mae_delta"} <= set(table.columns)
    assert "Warnings" not in table.columns and "warnings" not in table.columns  # listed above the table instead
    assert list(table["ink: mae"]) == pytest.approx([0.1, 0.15])
    assert list(table["digit: accuracy (%)"]) == pytest.approx([90.0, 85.0])
    assert "ink: rmse" not in table.columns  # each output's other figures are in the column picker
    at.multiselect(key=f"table_columns_{run_id}").set_value(["ink: rmse"]).run()
    assert list(at.dataframe[0].value["ink: rmse"]) == pytest.approx([0.12, 0.18])
    at.session_state["stored_columns"] = True  # "All columns, as stored" opened
    at.run()
    assert {"digit: accuracy", "ink: rmse"} <= set(at.dataframe[1].value.columns)  # the stored columns, as stored
    assert any("`<output>: <figure>`" in c.value and "accuracy output `digit`" in c.value for c in at.caption)
    assert any("- **int8**: quantized nothing: every op stayed float\n- **int8**: ink drifted" in w.value
               for w in at.warning)

    axis = at.selectbox(key=f"accuracy_axis_{run_id}")
    assert (axis.label, axis.options, axis.value) == ("Accuracy axis: output", ["digit", "ink"], "digit")
    charts = at.get("button_group")[0]
    assert [o.content for o in charts.proto.options] == ["Size vs latency", "Latency vs digit: accuracy",
                                                         "Size vs digit: accuracy", "Combined (bubble = file size)"]
    at.session_state["tradeoff_chart"] = "latency_quality"  # a click on "Latency vs digit: accuracy"
    at.session_state["show_per_class"] = True  # a click on the closed section
    at.run()
    assert "digit: Accuracy (higher is better)" in _y_titles(at)
    assert any("per class" in f["layout"]["title"]["text"] for f in _figures(at))
    axis.set_value("ink").run()
    assert not at.exception, [e.value for e in at.exception]
    titles = _y_titles(at)
    assert "ink: Mean absolute error (lower is better)" in titles and "digit: Accuracy (higher is better)" not in titles
    latency_chart = _tradeoff_chart(at)
    assert latency_chart["title"]["text"].startswith("ink: Mean absolute")
    assert sorted(_tradeoff_points(latency_chart).values()) == [(0.1, 0.15), (0.2, 0.1)]
    assert not any("per class" in f["layout"]["title"]["text"] for f in _figures(at))  # ink is a regression output
