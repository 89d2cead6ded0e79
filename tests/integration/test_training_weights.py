"""Training variants start from exactly the trained weights (issue 15).

Three tiny Keras 3 models, trained on scikit-learn's digits until they are far above chance, hold the layers
the techniques do not wrap: BatchNormalization + DepthwiseConv2D (image), Conv1D + LayerNormalization
(sequence) and Embedding on int32 token ids (the digit pixels 0..16 as tokens). Every technique must pass
its start check and, after the fine-tune, stay within a few points of the fine-tune control on held-out data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from optimizer.errors import InvalidOption, VariantFailed
from optimizer.produce.bridge import EQUIVALENCE_TOLERANCE
from optimizer.variants import VariantKind, VariantSpec

pytestmark = pytest.mark.slow

TRAIN = 1200  # of the 1,797 digits; the rest is held out
TECHNIQUES = {
    "prune50": VariantSpec(VariantKind.PRUNE, {"sparsity": 0.5}, name="prune50"),
    "cluster16": VariantSpec(VariantKind.CLUSTER, {"clusters": 16}, name="cluster16"),
    "pqat": VariantSpec(VariantKind.PQAT),
    "cqat": VariantSpec(VariantKind.CQAT),
    "sparse_cluster": VariantSpec(VariantKind.SPARSE_CLUSTER),
}
MODELS = ("image", "sequence", "embedding")


def _digits(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    images, labels = digits.images[order], digits.target[order].astype(np.int64)
    if name == "image":
        return (images / 16.0).astype(np.float32)[..., None], labels
    if name == "sequence":  # 8 steps of 8 features
        return (images / 16.0).astype(np.float32), labels
    return images.reshape(len(labels), 64).astype(np.int32), labels  # 64 tokens from a vocabulary of 17


def _build(name: str) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    if name == "image":
        return keras.Sequential([
            keras.Input((8, 8, 1)), layers.Conv2D(16, 3, padding="same", name="conv"),
            layers.BatchNormalization(name="bn"), layers.ReLU(), layers.DepthwiseConv2D(3, padding="same", name="dw"),
            layers.BatchNormalization(name="dw_bn"), layers.ReLU(), layers.Flatten(),
            layers.Dense(10, activation="softmax", name="classes")])
    if name == "sequence":
        inputs = keras.Input((8, 8))
        hidden = layers.Conv1D(16, 3, padding="same", activation="relu", name="conv_a")(inputs)
        hidden = layers.LayerNormalization(name="norm")(hidden)
        hidden = layers.Flatten()(layers.Conv1D(16, 3, activation="relu", name="conv_b")(hidden))
        return keras.Model(inputs, layers.Dense(10, activation="softmax", name="classes")(hidden))
    inputs = keras.Input((64,), dtype="int32")
    hidden = layers.Flatten()(layers.Embedding(17, 4, name="tokens")(inputs))
    hidden = layers.Dense(32, activation="relu", name="hidden")(hidden)
    return keras.Model(inputs, layers.Dense(10, activation="softmax", name="classes")(hidden))


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(np.asarray(model.predict(x, verbose=0)), axis=-1) == y))


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Any, np.ndarray, np.ndarray, float]]:
    """name -> (trained Keras 3 model, x, y, held-out accuracy)."""
    import keras

    result = {}
    for name in MODELS:
        x, y = _digits(name)
        model = _build(name)
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
        model.fit(x[:TRAIN], y[:TRAIN], epochs=10, batch_size=32, verbose=0)
        accuracy = _accuracy(model, x[TRAIN:], y[TRAIN:])
        assert accuracy > 0.9, (name, accuracy)  # clearly above chance (10%), or the test proves nothing
        result[name] = (model, x, y, accuracy)
    return result


def _twin(model: Any, x: np.ndarray) -> Any:
    """The verified tf_keras twin (LayerNormalization's Keras 3 ``rms_scaling: False`` included)."""
    from optimizer.produce import bridge

    twin, report = bridge.to_tf_keras(model, x[:16])
    assert report.max_abs_difference <= EQUIVALENCE_TOLERANCE
    return twin


def _train(models: dict[str, Any], name: str, spec: VariantSpec) -> Any:
    import tf_keras

    from optimizer.produce.training import train_variant

    model, x, y, _ = models[name]
    twin = _twin(model, x)
    tf_keras.utils.set_random_seed(0)
    return train_variant(spec, lambda: twin, x[:TRAIN], y[:TRAIN], "classification", lambda _: None)


@pytest.fixture(scope="module")
def trained(models: dict[str, Any]) -> Any:
    """(model name, variant name) -> (TrainedModel, held-out accuracy), each fine-tune done once."""
    done: dict[tuple[str, str], tuple[Any, float]] = {}

    def get(name: str, variant: str) -> tuple[Any, float]:
        if (name, variant) not in done:
            spec = TECHNIQUES.get(variant) or VariantSpec(VariantKind.FINETUNE_CONTROL)
            result = _train(models, name, spec)
            _, x, y, _ = models[name]
            done[(name, variant)] = (result, _accuracy(result.model, x[TRAIN:], y[TRAIN:]))
        return done[(name, variant)]

    return get


def _stages(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The technique's own training info and that of the step it builds on (pqat, cqat, sparse_cluster)."""
    return [info, *(info[key] for key in ("pruning", "clustering") if key in info)]


@pytest.mark.parametrize("variant", list(TECHNIQUES))
@pytest.mark.parametrize("name", MODELS)
def test_technique_starts_from_trained_weights_and_keeps_accuracy(models, trained, name, variant):
    result, accuracy = trained(name, variant)
    _, control = trained(name, "finetune_control")
    print(f"{name} {variant}: original {models[name][3]:.3f}, control {control:.3f}, technique {accuracy:.3f}")
    for stage in _stages(result.info):
        assert stage["technique_start_check"] in ("outputs", "weights", "outputs before quantize_apply, then weights")
        assert stage["technique_start_max_abs_difference"] <= EQUIVALENCE_TOLERANCE, stage
        if "technique_start_max_weight_difference" in stage:  # QAT: also the weights after quantize_apply
            assert stage["technique_start_max_weight_difference"] == 0.0
            assert stage["technique_start_layers_not_compared"] == []
    assert accuracy >= control - 0.05, (name, variant, accuracy, control)


def test_clustering_covers_conv1d_and_leaves_depthwise_float(trained):
    image = trained("image", "cluster16")[0].info
    assert image["clustered_layers"] == ["conv", "classes"]
    assert image["layers_not_clustered"] == ["bn", "dw", "dw_bn"]  # tfmot does not cluster depthwise kernels
    sequence = trained("sequence", "cluster16")
    assert sequence[0].info["clustered_layers"] == ["conv_a", "conv_b", "classes"]
    assert sequence[0].info["layers_not_clustered"] == ["norm"]
    for name in ("conv_a", "conv_b", "classes"):  # at most 16 values per kernel after the fine-tune
        assert np.unique(sequence[0].model.get_layer(name).get_weights()[0]).size <= 16, name
    assert trained("embedding", "cluster16")[0].info["layers_not_clustered"] == ["tokens"]


def _old_clone_wrapping(model: Any, wrap: Any) -> tuple[Any, list[str]]:
    """The clone before the fix: every layer not wrapped came back from its config with fresh weights."""
    import tf_keras

    wrapped: list[str] = []

    def clone(layer: Any) -> Any:
        replacement = wrap(layer)
        if replacement is None:
            return layer.__class__.from_config(layer.get_config())
        wrapped.append(layer.name)
        return replacement

    return tf_keras.models.clone_model(model, clone_function=clone), wrapped


@pytest.mark.parametrize("variant", ["prune50", "cluster16"])
@pytest.mark.parametrize("name", MODELS)
def test_the_start_check_catches_reinitialised_layers(models, monkeypatch, name, variant):
    from optimizer.produce import training

    monkeypatch.setattr(training, "_clone_wrapping", _old_clone_wrapping)
    with pytest.raises(VariantFailed, match="before fine-tuning.*differ.*does not start from the trained weights"):
        _train(models, name, TECHNIQUES[variant])


def test_calibration_samples_must_be_a_whole_number():
    from optimizer.produce.training import TrainedModel, convert_trained

    with pytest.raises(InvalidOption, match="calibration_samples"):
        convert_trained(TrainedModel(model=None, int8=True), np.zeros((4, 2), np.float32), 0)


@pytest.mark.parametrize("name", ["image", "embedding"])
def test_full_run_fine_tunes_from_the_trained_weights(models, tmp_path, name):
    """The real path: upload, bridge, training worker, conversion (int8 calibrated in the input's dtype, so
    int32 token ids too), evaluation."""
    from optimizer.run.options import RunOptions
    from optimizer.run.pipeline import run_comparison
    from tests.conftest import rows_by_name

    model, x, y, _ = models[name]
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    specs = [TECHNIQUES["cluster16"], TECHNIQUES["pqat"], VariantSpec(VariantKind.FINETUNE_CONTROL)]
    result = run_comparison(tmp_path / "model.keras", tmp_path / "run", specs, data=tmp_path / "digits.npz",
                            options=RunOptions(warmup_runs=1))
    rows = rows_by_name(result)
    print({name: (row["status"], row.get("accuracy"), row["error"]) for name, row in rows.items()})
    for name in ("cluster16", "pqat", "finetune_control"):
        assert rows[name]["status"] == "ok" and rows[name]["error"] is None, (name, rows[name]["error"])
        assert rows[name]["accuracy"] >= rows["float32"]["accuracy"] - 0.05, name
    for name in ("cluster16", "pqat"):
        for stage in _stages(rows[name]["training"]):
            assert stage["technique_start_max_abs_difference"] <= EQUIVALENCE_TOLERANCE, (name, stage)
        assert rows[name]["accuracy"] >= rows["finetune_control"]["accuracy"] - 0.05, name
    assert rows["pqat"]["training"]["calibration_samples"] == 200
    assert rows["pqat"]["integer_only"] is True
