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
