import numpy as np
import pytest

from optimizer.errors import DataRejected, WorkerFailed, user_message
from optimizer.measure.benchmark import latency_stats
from optimizer.measure.evaluate import Task, accuracy, fidelity, infer_task, mean_absolute_error
from optimizer.measure.runtime import dequantize_output, quantize_input


def test_accuracy_and_mae_by_hand():
    outputs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert accuracy(outputs, np.array([0, 1, 1, 1])) == 0.75
    assert accuracy(np.array([[0.2], [0.7]]), np.array([0, 1])) == 1.0  # one sigmoid unit
    assert mean_absolute_error(np.array([[1.0], [3.0]]), np.array([2.0, 2.0])) == 1.0


def test_fidelity_by_hand():
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])
    noisy = np.array([[0.9, 0.1], [0.6, 0.4]])
    result = fidelity(noisy, reference)
    assert result["fidelity_top1_agreement"] == 0.5
    expected_noise = np.mean((noisy - reference) ** 2)
    assert result["fidelity_rmse"] == pytest.approx(np.sqrt(expected_noise))
    assert result["fidelity_snr_db"] == pytest.approx(10 * np.log10(0.5 / expected_noise))
    assert fidelity(reference, reference)["fidelity_snr_db"] == float("inf")


def test_task_inference():
    assert infer_task(np.array([0, 3, 9]), [None, 10]) is Task.CLASSIFICATION
    assert infer_task(np.array([0, 1, 1]), [None, 1]) is Task.CLASSIFICATION
    assert infer_task(np.array([0.5, 2.25]), [None, 1]) is Task.REGRESSION
    assert infer_task(None, [None, 10]) is None


def test_int8_io_quantization_round_trip():
    detail = {"dtype": np.int8, "quantization": (0.5, -3)}
    codes = quantize_input(np.array([0.0, 1.0, 1000.0, -1000.0]), detail)
    assert codes.tolist() == [-3, -1, 127, -128]
    assert dequantize_output(codes, detail).tolist() == [0.0, 1.0, 65.0, -62.5]


def test_latency_stats_by_hand():
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["latency_ms_p50"] == 3.0 and stats["latency_ms_min"] == 1.0
    assert stats["latency_ms_p95"] == pytest.approx(80.8)


def test_user_messages_have_a_title_and_no_traceback():
    assert user_message(DataRejected("x.npz: expected a; found b")) == "Data refused: x.npz: expected a; found b"
    assert user_message(WorkerFailed("boom")).startswith("Worker failed: ")


def test_per_class_accuracy_by_hand():
    from optimizer.measure.evaluate import per_class_accuracy

    outputs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert per_class_accuracy(outputs, np.array([0, 0, 1, 1])) == {"0": 0.5, "1": 0.5}


def test_clipped_fraction_counts_reference_values_beyond_the_variants_range():
    from optimizer.measure.evaluate import clipped_fraction

    reference = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    assert clipped_fraction(np.array([0.0, 0.5, 0.9, 0.9, 0.9]), reference) == 0.6  # 1.0 (beyond 2%), 2.0, 3.0
    assert clipped_fraction(reference.copy(), reference) == 0.0
    softmax_like = np.array([0.0, 0.9961])  # int8's largest softmax code, against a reference of 0.9999
    assert clipped_fraction(softmax_like, np.array([0.0, 0.9999])) == 0.0


def test_per_output_scores_by_name():
    from optimizer.measure.evaluate import score_outputs

    outputs = {"digit": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), "ink": np.array([[1.0], [2.0], [3.0]])}
    labels = {"digit": np.array([0, 1, 1]), "ink": np.array([1.0, 2.0, 5.0])}
    scored = score_outputs(outputs, labels, {"digit": "classification", "ink": "regression"}, outputs)
    assert scored["digit"]["accuracy"] == pytest.approx(2 / 3) and scored["digit"]["metric"] == "accuracy"
    assert scored["ink"]["mae"] == pytest.approx(2 / 3) and scored["ink"]["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert scored["ink"]["fidelity_snr_db"] == float("inf") and not scored["ink"]["constant_output"]
    assert score_outputs({"c": np.ones((4, 2))}, {}, {}, None)["c"]["constant_output"] is True


def test_top5_from_ten_classes_and_multilabel_task():
    from optimizer.measure.evaluate import output_metrics, top_k_accuracy

    outputs = np.tile(np.arange(10, dtype=np.float32), (2, 1))  # class 9 highest, then 8, ...
    assert top_k_accuracy(outputs, np.array([5, 4]), 5) == 0.5
    assert "top5_accuracy" in output_metrics(outputs, np.array([9, 0]), Task.CLASSIFICATION)
    labels = np.array([[1, 0, 1], [0, 1, 0]])
    assert infer_task(labels, [None, 3]) is Task.MULTILABEL
    figures = output_metrics(np.array([[0.9, 0.2, 0.7], [0.1, 0.4, 0.2]]), labels, Task.MULTILABEL)
    assert figures["accuracy"] == pytest.approx(5 / 6) and figures["exact_match"] == 0.5


def test_task_overrides_by_output_name():
    from optimizer.errors import InvalidOption
    from optimizer.run.options import RunOptions, parse_tasks

    assert parse_tasks("digit=classification, ink=regression") == {"digit": Task.CLASSIFICATION,
                                                                    "ink": Task.REGRESSION}
    assert RunOptions(task="regression").tasks_for(["a", "b"]) == {"a": Task.REGRESSION, "b": Task.REGRESSION}
    with pytest.raises(InvalidOption, match="no output 'inc'"):
        RunOptions(task="inc=regression").tasks_for(["digit", "ink"])
    with pytest.raises(InvalidOption, match="expected one of"):
        RunOptions(task="digit=segmentation")
