"""Training-time variants with real tfmot fine-tuning on the sample models (one shared run)."""

import numpy as np

from optimizer.measure.runtime import weight_stats
from optimizer.run.options import RunOptions
from optimizer.run.pipeline import run_comparison
from optimizer.variants import VariantSpec
from tests.conftest import CANCER_DATA, CANCER_MODEL, TRAINING, rows_by_name


def test_every_training_variant_is_produced_and_measured(training_run):
    rows = rows_by_name(training_run)
    for name in TRAINING:
        row = rows[name]
        assert row["status"] == "ok", (name, row["error"])
        assert row["latency_ms_p50"] > 0 and row["accuracy"] > 0.9
        assert row["training"]["epochs"] == 4 and row["training"]["steps"] == 4 * 34
        assert row["training_s"] > 0 and row["training"]["seed"] == 0
        assert row["training"]["bridge_max_abs_difference"] <= 1e-4


def test_qat_int8_accuracy_within_one_point_of_float32(training_run):
    rows = rows_by_name(training_run)
    assert rows["qat"]["integer_only"] is True and rows["qat"]["training"]["layers_kept_float"] == []
    assert rows["qat"]["accuracy"] >= rows["float32"]["accuracy"] - 0.01


def test_pruning_realised_sparsity_and_gzip_size(training_run):
    rows = rows_by_name(training_run)
    path = training_run.out_dir / rows["prune"]["path"]
    kernels = weight_stats(path)
    assert len(kernels) == len(rows["prune"]["training"]["pruned_layers"]) == 4
    for kernel in kernels:
        assert kernel["zero_fraction"] >= 0.45, kernel
    assert rows["prune"]["size_bytes"] <= rows["float32"]["size_bytes"]  # raw size does not shrink (much)
    assert rows["prune"]["gzip_bytes"] <= 0.75 * rows["float32"]["gzip_bytes"]
    assert all(k["zero_fraction"] >= 0.45 for k in weight_stats(training_run.out_dir / rows["prune_int8"]["path"]))


def test_2x4_layers_have_exactly_two_zeros_in_every_group_of_four(training_run):
    row = rows_by_name(training_run)["prune_2x4"]
    assert row["training"]["pruned_layers"] == ["conv2d_1", "dense", "dense_1"]
    assert row["training"]["layers_not_2x4_eligible"] == ["conv2d"]  # one input channel
    path = training_run.out_dir / row["path"]
    kernels = {k["op"]: k for k in weight_stats(path)}
    qualified = [k for k in kernels.values() if k["shape"][-1] % 4 == 0]
    assert len(qualified) == 3
    for kernel in qualified:
        assert kernel["groups_2x4_exact"] == 1.0, kernel


def test_clustering_leaves_at_most_16_values_per_kernel(training_run):
    row = rows_by_name(training_run)["cluster"]
    assert len(row["training"]["clustered_layers"]) == 4
    for kernel in weight_stats(training_run.out_dir / row["path"]):
        assert kernel["unique_values"] <= 16, kernel
    assert row["gzip_bytes"] < 0.5 * rows_by_name(training_run)["float32"]["gzip_bytes"]


def test_missing_labels_fail_training_variants_only(tmp_path):
    data = np.load(CANCER_DATA)
    np.savez(tmp_path / "unlabelled.npz", x=data["x_calib"])
    result = run_comparison(CANCER_MODEL, tmp_path / "run",
                            [VariantSpec("float16"), VariantSpec("qat"), VariantSpec("prune")],
                            data=tmp_path / "unlabelled.npz", options=RunOptions(warmup_runs=1))
    rows = rows_by_name(result)
    assert rows["float32"]["status"] == "ok" and rows["float16"]["status"] == "ok"
    for name in ("qat", "prune"):
        assert rows[name]["status"] == "failed"
        assert "training needs labelled training data" in rows[name]["error"]


def test_qat_keeps_unsupported_layers_float(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.BatchNormalization(name="lonely_bn"), keras.layers.Dense(3)])
    model.save(tmp_path / "bn.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.argmax(x[:, :3], axis=1))
    result = run_comparison(tmp_path / "bn.keras", tmp_path / "run",
                            [VariantSpec("qat", {"epochs": 1})], data=tmp_path / "d.npz",
                            options=RunOptions(warmup_runs=1))
    row = rows_by_name(result)["qat"]
    assert row["status"] == "ok", row["error"]
    assert row["training"]["layers_kept_float"] == ["lonely_bn"]


def test_legacy_h5_and_constant_schedule_go_through_the_same_bridge(tmp_path):
    import keras

    model = keras.saving.load_model(CANCER_MODEL, compile=False)
    model.save(tmp_path / "cancer.h5")
    spec = VariantSpec("prune", {"epochs": 2, "sparsity": 0.75, "schedule": "constant"})
    result = run_comparison(tmp_path / "cancer.h5", tmp_path / "run", [spec], data=CANCER_DATA,
                            options=RunOptions(warmup_runs=1))
    row = rows_by_name(result)["prune"]
    assert row["status"] == "ok", row["error"]
    assert row["training"]["bridge_max_abs_difference"] <= 1e-4
    assert row["weights_zero_fraction"] >= 0.7
