"""Models with several inputs and outputs, integer inputs and recurrent layers, run end to end: every
post-training kind converts, runs and is measured per output, with data fed by tensor name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer.measure.evaluate import accuracy
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import RunResult, run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import rows_by_name
from tests.support import models

POST_TRAINING = ["float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8"]
QUICK = RunOptions(warmup_runs=1)


def _run(built: models.Built, folder: Path, kinds: list[str] = POST_TRAINING, **options) -> RunResult:
    return run_comparison(built.model, folder, [VariantSpec(k) for k in kinds], data=built.data,
                          options=RunOptions(warmup_runs=1, **options))


def _all_measured(result: RunResult, may_fail: tuple[str, ...] = ("int16x8",)) -> dict[str, dict]:
    """Every variant ok with a latency, except those allowed to fail, which must carry the converter's or the
    runtime's own reason (never a bare crash of ours)."""
    rows = rows_by_name(result)
    for name, row in rows.items():
        if name in may_fail and row["status"] != "ok":
            assert row["error"] and "unexpected error" not in row["error"], row["error"]
            continue
        assert row["status"] == "ok", (name, row["error"])
        assert row["latency_ms_p50"] > 0 and row["size_bytes"] > 0
    return rows


@pytest.fixture(scope="module")
def image_and_table(tmp_path_factory) -> tuple[models.Built, RunResult]:
    folder = tmp_path_factory.mktemp("image_and_table")
    built = models.image_and_table(folder)
    return built, _run(built, folder / "run")


def test_image_plus_table_every_kind_is_measured_by_name(image_and_table):
    _, result = image_and_table
    rows = _all_measured(result)
    assert [t["name"] for t in result.manifest["model"]["inputs"]] == ["stats", "image"]
    assert result.manifest["tasks"] == {"kind": "classification"}
    assert rows["float32"]["accuracy"] > 0.8  # learnable: the data reaches the right inputs
    for name, row in rows.items():
        if row["status"] == "ok":
            assert set(row["per_output"]) == {"kind"}
            assert row["per_output"]["kind"]["accuracy"] == row["accuracy"]
            assert abs(row["accuracy"] - rows["float32"]["accuracy"]) < 0.1, name
    # Its kernels are all under the 1024 weights dynamic-range quantization needs: the row says so.
    assert any(w.startswith("quantized nothing") for w in rows["dynamic_range"]["warnings"])


def test_input_order_differs_and_int8_accuracy_equals_feeding_by_name(image_and_table):
    """Keras declared the inputs stats, image; the converted file's signature lists them image, stats (by
    name). The run's int8 accuracy is exactly what feeding the file by name through its signature gives."""
    from ai_edge_litert.interpreter import Interpreter

    built, result = image_and_table
    row = rows_by_name(result)["int8"]
    interpreter = Interpreter(model_path=str(result.out_dir / row["path"]))
    keras_order = [t["name"] for t in result.manifest["model"]["inputs"]]
    assert keras_order == ["stats", "image"]
    assert interpreter.get_signature_list()["serving_default"]["inputs"] == ["image", "stats"]
    runner = interpreter.get_signature_runner("serving_default")
    work = result.out_dir / "work"
    eval_x = {"stats": np.load(work / "eval_x_0.npy"), "image": np.load(work / "eval_x_1.npy")}
    labels = np.load(result.out_dir / "work" / "eval_y.npy")
    outputs = np.concatenate([runner(stats=eval_x["stats"][i:i + 1], image=eval_x["image"][i:i + 1])["output_0"]
                              for i in range(len(labels))])
    assert row["accuracy"] == accuracy(outputs, labels)


def test_tflite_with_two_inputs_is_calibrated_by_name(image_and_table, tmp_path):
    """The float .tflite of the two-input model, with the same .npz: every ai-edge-quantizer recipe, the
    static one calibrated with both inputs by name."""
    built, first = image_and_table
    tflite = first.out_dir / rows_by_name(first)["float32"]["path"]
    result = run_comparison(tflite, tmp_path / "run", data=built.data, options=QUICK)
    rows = _all_measured(result, may_fail=())
    assert set(rows) == {"float32", "aeq_dynamic_int8", "aeq_weight_only_int8", "aeq_static_int8"}
    assert rows["aeq_static_int8"]["accuracy"] > rows["float32"]["accuracy"] - 0.1


def test_one_image_two_heads_has_a_metric_per_output(tmp_path):
    built = models.two_heads(tmp_path)
    result = _run(built, tmp_path / "run", task="digit=classification,ink=regression")
    rows = _all_measured(result)
    assert result.manifest["tasks"] == {"digit": "classification", "ink": "regression"}
    assert result.manifest["accuracy_output"] == "digit"
    for row in rows.values():
        if row["status"] != "ok":
            continue
        digit, ink = row["per_output"]["digit"], row["per_output"]["ink"]
        assert digit["metric"] == "accuracy" and 0 <= digit["accuracy"] <= 1
        assert ink["metric"] == "mae" and ink["mae"] < 0.2 and ink["rmse"] >= ink["mae"]
        assert row["accuracy"] == digit["accuracy"] and row["headline_output"] == "digit"
        if row["variant"] != "float32":
            assert ink["fidelity_snr_db"] > 20 and "flips" in digit and "flips" not in ink
            assert "mcnemar_p" in digit and "mcnemar_p" not in ink  # statistics per classification output
    frame = result.table()
    assert {"digit: accuracy", "ink: mae"} <= set(frame.columns)


def test_bert_shaped_encoder_with_three_int32_inputs(tmp_path):
    built = models.bert_shaped(tmp_path)
    result = _run(built, tmp_path / "run")
    rows = _all_measured(result)
    assert {np.load(p).dtype for p in (result.out_dir / "work").glob("calib_x_*.npy")} == {np.dtype("int32")}
    assert rows["float32"]["accuracy"] > 0.85
    assert rows["int8"]["input_dtypes"] == ["int32", "int32", "int32"]
    assert rows["int8_io"]["status"] == "ok" and rows["int8_io"]["accuracy"] is not None


@pytest.mark.parametrize("build", [models.text_embedding, models.uint8_images], ids=["int32_tokens", "uint8_pixels"])
def test_integer_inputs_keep_their_dtype_through_int8_and_qat(tmp_path, build):
    built = build(tmp_path)
    result = _run(built, tmp_path / "run", kinds=["float32", "int8", "int8_io", "qat"])
    rows = _all_measured(result, may_fail=())
    assert rows["qat"]["accuracy"] > rows["float32"]["accuracy"] - 0.1  # QAT converts and is evaluated
    stored = np.load(result.out_dir / "work" / "calib_x.npy")
    assert stored.dtype == np.load(built.data)["x"].dtype  # int32 token ids, uint8 pixels: never cast to float
    assert rows["float32"]["accuracy"] > 0.9
    assert rows["int8"]["accuracy"] > rows["float32"]["accuracy"] - 0.05


def test_lstm_is_exported_with_a_fixed_batch_and_float_kinds_measured(tmp_path):
    built = models.lstm_sequence(tmp_path)
    result = _run(built, tmp_path / "run", kinds=["float32", "float16", "dynamic_range", "int8"])
    _all_measured(result, may_fail=("int8",))
    assert result.manifest["export"]["export_batch"] == 1
    assert "fixed batch of 1" in result.manifest["export"]["export_note"]


def test_tflite_with_two_outputs_and_no_data(tmp_path):
    """A float .tflite with two outputs, no data: ai-edge-quantizer kinds, fidelity per output only."""
    built = models.two_heads(tmp_path)
    first = _run(built, tmp_path / "first", kinds=["float32"])
    tflite = first.out_dir / rows_by_name(first)["float32"]["path"]
    result = run_comparison(tflite, tmp_path / "run", options=QUICK)
    rows = _all_measured(result, may_fail=("aeq_static_int8",))
    assert result.manifest["model"]["format"] == "tflite" and len(result.manifest["model"]["outputs"]) == 2
    assert rows["aeq_static_int8"]["status"] == "skipped"  # needs calibration data
    for name, row in rows.items():
        if row["status"] == "ok" and name != "float32":
            assert set(row["per_output"]) == {"output_0", "output_1"}
            assert all("fidelity_snr_db" in figures and "accuracy" not in figures
                       for figures in row["per_output"].values())


def test_saved_model_with_two_signatures_runs_the_chosen_one(tmp_path):
    """--signature embed: every post-training kind converts that signature (one input, two outputs), fed by
    name from an .npz named after its input."""
    from tests.integration.test_model_intake import build_two_signature_saved_model

    model = build_two_signature_saved_model(tmp_path)
    tokens = np.random.default_rng(0).uniform(0, 1, (40, 2)).astype(np.float32)
    np.savez(tmp_path / "tokens.npz", tokens=tokens)
    result = run_comparison(model, tmp_path / "run", [VariantSpec(k) for k in ("float32", "dynamic_range", "int8")],
                            data=tmp_path / "tokens.npz", options=RunOptions(warmup_runs=1, signature="embed"))
    rows = _all_measured(result, may_fail=())
    assert result.manifest["model"]["signature"] == "embed"
    assert sorted(result.manifest["model"]["signatures"]) == ["embed", "serving_default"]
    assert set(rows["int8"]["per_output"]) == {"norm", "vector"}
    assert rows["int8"]["per_output"]["vector"]["fidelity_snr_db"] > 20


def test_selective_int8_on_a_two_output_model_budgets_the_chosen_output(tmp_path):
    built = models.two_heads(tmp_path)
    spec = VariantSpec("mixed_int8", {"accuracy_budget": 100.0, "max_float_layers": 1, "calibration_study": False})
    result = run_comparison(built.model, tmp_path / "run", [spec], data=built.data, options=QUICK)
    row = rows_by_name(result)["mixed_int8"]
    assert row["status"] == "ok", row["error"]
    assert row["analysis"]["output"] == "digit" and row["search_met_budget"] is True
    assert row["analysis"]["float_accuracy"] == rows_by_name(result)["float32"]["per_output"]["digit"]["accuracy"]
    assert set(row["per_output"]) == {"digit", "ink"}
