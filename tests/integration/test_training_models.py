"""Training variants on models with several inputs and outputs, integer inputs and attention (issue 14).

Every model is built here, trained with Keras 3 on learnable synthetic data, then fine-tuned through the
studio's own path: ``train_task`` (payload with .npy files keyed by tensor name) or ``to_tf_keras`` +
``train_variant`` + ``convert_trained``. Each .tflite is run in LiteRT through its signature, by input name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer.errors import ModelRejected
from optimizer.measure.runtime import dequantize_output, load_interpreter, quantize_input
from optimizer.produce.bridge import EQUIVALENCE_TOLERANCE
from optimizer.records import ProducePayload
from optimizer.variants import VariantKind, VariantSpec

TRAIN = 384  # samples the Keras model and the fine-tune see; the rest is held out
HELD_OUT = 128


def _run_tflite(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of a .tflite by name, fed by input name through its signature (whole batch at once)."""
    runner = load_interpreter(path).get_signature_runner("serving_default")
    details, outputs = runner.get_input_details(), runner.get_output_details()
    assert sorted(details) == sorted(inputs), (sorted(details), sorted(inputs))
    found = runner(**{name: quantize_input(array, details[name]) for name, array in inputs.items()})
    return {name: dequantize_output(found[name], outputs[name]) for name in outputs}


def _fit_keras(model: Any, x: dict[str, np.ndarray], y: dict[str, np.ndarray], losses: dict[str, str],
               epochs: int = 12) -> Any:
    """Train the labelled outputs of a Keras 3 model (through a model of those outputs sharing its layers)."""
    import keras

    labelled = [i for i, name in enumerate(model.output_names) if name in y]
    names = [model.output_names[i] for i in labelled]
    outputs = [model.outputs[i] for i in labelled]
    trainer = keras.Model(model.inputs, outputs if len(outputs) > 1 else outputs[0])
    loss = [losses[n] for n in names] if len(names) > 1 else losses[names[0]]
    trainer.compile(keras.optimizers.Adam(3e-3), loss=loss)
    targets = [y[n][:TRAIN] for n in names]
    trainer.fit([x[t.name][:TRAIN] for t in model.inputs], targets if len(targets) > 1 else targets[0],
                epochs=epochs, batch_size=32, verbose=0)
    return model


def _train_task(tmp_path: Path, model: Any, x: dict[str, np.ndarray], y: dict[str, np.ndarray],
                tasks: dict[str, str], specs: list[VariantSpec]) -> dict[str, dict[str, Any]]:
    """Run the training worker's task on ``model`` with .npy files by tensor name; outcomes by variant."""
    from optimizer.produce.training import train_task

    model.save(tmp_path / "model.keras")
    files: dict[str, dict[str, str]] = {"x": {}, "y": {}}
    for group, arrays in (("x", x), ("y", y)):
        for name, array in arrays.items():
            path = tmp_path / f"{group}_{name}.npy"
            np.save(path, array[:TRAIN])
            files[group][name] = str(path)
    (tmp_path / "work").mkdir()
    payload = ProducePayload(model_path=str(tmp_path / "model.keras"), format="keras", workdir=str(tmp_path / "work"),
                             out_dir=str(tmp_path / "out"), calibration=files["x"], calibration_labels=files["y"],
                             tasks=tasks, specs=tuple(spec.to_dict() for spec in specs))
    outcomes = train_task(payload.to_dict(), lambda _: None)
    return {outcome["name"]: outcome for outcome in outcomes}


def _held_out(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: array[TRAIN:TRAIN + HELD_OUT] for name, array in arrays.items()}


def _image_and_stats(samples: int = TRAIN + HELD_OUT) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Class 0..2 from the image's brighter half and one of the tabular features (learnable by both inputs)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (samples, 12, 12, 1)).astype(np.float32)
    stats = rng.normal(size=(samples, 4)).astype(np.float32)
    left_brighter = images[:, :, :6].mean(axis=(1, 2, 3)) > images[:, :, 6:].mean(axis=(1, 2, 3))
    images[left_brighter, :, :6] += 0.3
    images[~left_brighter, :, 6:] += 0.3
    labels = np.where(stats[:, 0] > 0.5, 2, left_brighter.astype(np.int64))
    return {"image": images, "stats": stats}, labels


def _two_input_model() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    image, stats = keras.Input((12, 12, 1), name="image"), keras.Input((4,), name="stats")
    seen = layers.Dense(8, activation="relu")(layers.Flatten()(layers.MaxPooling2D(6)(
        layers.Conv2D(4, 3, padding="same", activation="relu")(image))))
    joined = layers.Concatenate()([seen, layers.Dense(8, activation="relu")(stats)])
    return keras.Model([image, stats], layers.Dense(3, activation="softmax", name="label")(joined))


def test_two_inputs_to_one_class_qat_and_prune_run_by_name(tmp_path):
    x, labels = _image_and_stats()
    model = _fit_keras(_two_input_model(), x, {"label": labels}, {"label": "sparse_categorical_crossentropy"})
    keras_accuracy = float(np.mean(np.argmax(model.predict(_held_out(x), verbose=0), -1) == labels[TRAIN:]))
    assert keras_accuracy > 0.85, keras_accuracy  # learnable, or the test proves nothing
    specs = [VariantSpec(VariantKind.QAT, {"epochs": 2}), VariantSpec(VariantKind.PRUNE, {"epochs": 2})]
    outcomes = _train_task(tmp_path, model, x, {"label": labels}, {"label": "classification"}, specs)
    for name in ("qat", "prune"):
        assert outcomes[name]["status"] == "ok", outcomes[name].get("error")
        training = outcomes[name]["extra"]["training"]
        assert training["bridge_max_abs_difference"] <= EQUIVALENCE_TOLERANCE
        assert training["technique_start_max_abs_difference"] <= EQUIVALENCE_TOLERANCE
        found = _run_tflite(Path(outcomes[name]["path"]), _held_out(x))
        assert list(found) == ["label"]
        accuracy = float(np.mean(np.argmax(found["label"], -1) == labels[TRAIN:TRAIN + HELD_OUT]))
        print(f"{name}: Keras {keras_accuracy:.3f}, .tflite {accuracy:.3f}")
        assert accuracy >= keras_accuracy - 0.08, (name, accuracy, keras_accuracy)
    assert outcomes["qat"]["extra"]["training"]["calibration_samples"] == 200


def _heads_model() -> Any:
    """One image -> a class head, a regression head, a multilabel head and an unlabelled feature output."""
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    image = keras.Input((12, 12, 1), name="image")
    hidden = layers.Conv2D(16, 3, padding="same", name="conv")(image)
    hidden = layers.ReLU()(layers.BatchNormalization(name="conv_bn")(hidden))
    pooled = layers.Flatten()(layers.AveragePooling2D(6)(hidden))  # the left and right halves' means
    features = layers.Dense(32, activation="relu", name="features")(pooled)
    return keras.Model(image, [layers.Dense(2, activation="softmax", name="label")(features),
                               layers.Dense(1, name="score")(features),
                               layers.Dense(2, activation="sigmoid", name="tags")(features), features])


def test_class_regression_and_multilabel_heads_train_with_one_loss_each(tmp_path):
    x, _ = _image_and_stats()
    image = x["image"]
    left_minus_right = image[:, :, :6].mean(axis=(1, 2, 3)) - image[:, :, 6:].mean(axis=(1, 2, 3))
    left = (left_minus_right > 0).astype(np.int64)
    y = {"label": left, "score": (4 * left_minus_right[:, None]).astype(np.float32),
         "tags": np.stack([left, 1 - left], axis=1).astype(np.float32)}  # 0/1 columns
    model = _fit_keras(_heads_model(), {"image": image}, y, {"label": "sparse_categorical_crossentropy",
                                                            "score": "mse", "tags": "binary_crossentropy"}, 30)
    specs = [VariantSpec(VariantKind.QAT, {"epochs": 2}), VariantSpec(VariantKind.PRUNE)]  # 4 epochs to recover
    outcomes = _train_task(tmp_path, model, {"image": image}, y,
                           {"label": "classification", "score": "regression", "tags": "multilabel"}, specs)
    held_out = _held_out(y)
    for name in ("qat", "prune"):
        assert outcomes[name]["status"] == "ok", outcomes[name].get("error")
        history = outcomes[name]["extra"]["training"]["history"][-1]
        for head in ("label_loss", "score_loss", "tags_loss", "label_accuracy", "tags_binary_accuracy"):
            assert any(key.endswith(head) for key in history), (head, history)
        assert not any("features" in key or "score_acc" in key for key in history), history  # no labels: no loss
        found = _run_tflite(Path(outcomes[name]["path"]), {"image": image[TRAIN:TRAIN + HELD_OUT]})
        assert sorted(found) == ["features", "label", "score", "tags"]
        accuracy = float(np.mean(np.argmax(found["label"], -1) == held_out["label"]))
        tags_accuracy = float(np.mean((found["tags"] > 0.5) == (held_out["tags"] > 0.5)))
        mse = float(np.mean((found["score"] - held_out["score"]) ** 2))
        print(f"{name}: accuracy {accuracy:.3f}, tags {tags_accuracy:.3f}, mse {mse:.4f} "
              f"(target variance {np.var(held_out['score']):.4f})")
        assert accuracy > 0.85 and tags_accuracy > 0.85, (name, accuracy, tags_accuracy)
        # Clearly better than predicting the mean (measured: qat 0.13, prune 0.19 for a variance of 1.8; half
        # as wide, pruning half of every kernel cost the regression most: 0.9).
        assert mse < 0.25 * float(np.var(held_out["score"])), (name, mse)


SEQUENCE, VOCABULARY = 12, 40


def _bert_inputs(samples: int = TRAIN + HELD_OUT) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Token ids with a padding tail (mask 0) and two segments; class 1 when token 7 occurs before the padding."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCABULARY, (samples, SEQUENCE)).astype(np.int32)
    lengths = rng.integers(6, SEQUENCE + 1, samples)
    mask = (np.arange(SEQUENCE)[None, :] < lengths[:, None]).astype(np.int32)
    ids[:, 2][rng.uniform(size=samples) < 0.5] = 7
    ids = ids * mask
    types = (np.arange(SEQUENCE)[None, :] >= 4).astype(np.int32).repeat(samples, 0) * mask
    labels = np.any((ids == 7) & (mask == 1), axis=1).astype(np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, labels


def _bert_model() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    ids = keras.Input((SEQUENCE,), dtype="int32", name="input_ids")
    mask = keras.Input((SEQUENCE,), dtype="int32", name="attention_mask")
    types = keras.Input((SEQUENCE,), dtype="int32", name="token_type_ids")
    hidden = layers.Add()([layers.Embedding(VOCABULARY, 16, name="tokens")(ids),
                           layers.Embedding(2, 16, name="segments")(types)])
    hidden = layers.LayerNormalization(name="embedding_norm")(hidden)
    attended = layers.MultiHeadAttention(2, 8, name="attention")(
        hidden, hidden, attention_mask=layers.Reshape((1, SEQUENCE))(mask))
    hidden = layers.LayerNormalization(name="attention_norm")(layers.Add()([hidden, attended]))
    pooled = layers.GlobalAveragePooling1D()(hidden)
    outputs = layers.Dense(2, activation="softmax", name="label")(layers.Dense(16, activation="relu")(pooled))
    return keras.Model([ids, mask, types], outputs)


def test_bert_shaped_encoder_bridges_with_the_same_outputs_and_qat_converts(tmp_path):
    from optimizer.produce.bridge import to_tf_keras
    from optimizer.produce.training import convert_trained, train_variant

    x, labels = _bert_inputs()
    model = _fit_keras(_bert_model(), x, {"label": labels}, {"label": "sparse_categorical_crossentropy"}, 8)
    for check in (None, {n: a[:16] for n, a in x.items()}):  # random ids in range, then the real ones
        twin, report = to_tf_keras(model, check)
        assert report.max_abs_difference <= EQUIVALENCE_TOLERANCE
    np.testing.assert_allclose(twin.predict([_held_out(x)[n] for n in twin.input_names], verbose=0),
                               model.predict(_held_out(x), verbose=0), atol=EQUIVALENCE_TOLERANCE)
    trained = train_variant(VariantSpec(VariantKind.QAT, {"epochs": 1}), lambda: twin,
                            {n: a[:TRAIN] for n, a in x.items()}, {"label": labels[:TRAIN]}, "classification",
                            lambda _: None)
    assert {"attention", "embedding_norm", "tokens"} <= set(trained.info["layers_kept_float"])
    path = tmp_path / "bert_qat.tflite"
    path.write_bytes(convert_trained(trained, {n: a[:TRAIN] for n, a in x.items()}, 64))
    details = load_interpreter(path).get_signature_runner("serving_default").get_input_details()
    assert {name: str(np.dtype(d["dtype"])) for name, d in details.items()} == dict.fromkeys(x, "int32")
    found = _run_tflite(path, _held_out(x))
    assert found["label"].shape == (HELD_OUT, 2) and np.allclose(found["label"].sum(-1), 1.0, atol=0.02)
    # Not asserted: int8 attention calibrated on padded masks loses the predictions (Keras's mask adds -1e9 to
    # the scores, which sets the int8 scale of the softmax input; measured ~50% agreement, 100% with full masks).


def test_embedding_text_model_qat_int8_evaluates(tmp_path):
    import keras

    from optimizer.produce.bridge import to_tf_keras
    from optimizer.produce.training import convert_trained, train_variant

    x, labels = _bert_inputs()
    ids = {"tokens": x["input_ids"]}
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SEQUENCE,), dtype="int32", name="tokens")
    hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCABULARY, 8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="label")(
        keras.layers.Dense(16, activation="relu")(hidden)))
    model = _fit_keras(model, ids, {"label": labels}, {"label": "sparse_categorical_crossentropy"}, 20)
    keras_accuracy = float(np.mean(np.argmax(model.predict(_held_out(ids), verbose=0), -1) == labels[TRAIN:]))
    assert keras_accuracy > 0.85, keras_accuracy
    twin, _ = to_tf_keras(model, ids["tokens"][:16])
    trained = train_variant(VariantSpec(VariantKind.QAT, {"epochs": 2}), lambda: twin, ids["tokens"][:TRAIN],
                            labels[:TRAIN], "classification", lambda _: None)
    assert trained.int8
    path = tmp_path / "text_qat.tflite"
    path.write_bytes(convert_trained(trained, ids["tokens"][:TRAIN]))
    accuracy = float(np.mean(np.argmax(_run_tflite(path, _held_out(ids))["label"], -1) == labels[TRAIN:]))
    assert accuracy >= keras_accuracy - 0.05, (accuracy, keras_accuracy)


def test_uint8_image_model_qat_converts(tmp_path):
    import keras

    from optimizer.produce.bridge import to_tf_keras
    from optimizer.produce.training import convert_trained, train_variant

    keras.utils.set_random_seed(0)
    pixels = keras.Input((12, 12, 3), dtype="uint8", name="pixels")
    hidden = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255, name="to_unit")(pixels))
    model = keras.Model(pixels, keras.layers.Dense(2, activation="softmax", name="label")(
        keras.layers.GlobalAveragePooling2D()(hidden)))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 12, 12, 3)).astype(np.uint8)
    twin, report = to_tf_keras(model)  # random check pixels over the whole uint8 range
    assert report.max_abs_difference <= EQUIVALENCE_TOLERANCE
    trained = train_variant(VariantSpec(VariantKind.QAT, {"epochs": 1}), lambda: twin, {"pixels": x},
                            {"label": rng.integers(0, 2, 64)}, {"label": "classification"}, lambda _: None)
    assert trained.info["layers_kept_float"] == ["to_unit"]
    path = tmp_path / "uint8_qat.tflite"
    path.write_bytes(convert_trained(trained, {"pixels": x}, 32))
    details = load_interpreter(path).get_signature_runner("serving_default").get_input_details()
    assert np.dtype(details["pixels"]["dtype"]) == np.uint8
    found = _run_tflite(path, {"pixels": x[:8]})
    np.testing.assert_allclose(found["label"].sum(-1), 1.0, atol=0.02)


def _unbridgeable_model() -> Any:
    import keras

    inputs = keras.Input((6,), name="values")
    hidden = keras.layers.Dense(4, name="dense")(keras.ops.cumsum(inputs, axis=-1))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="label")(hidden))


def test_a_layer_the_bridge_cannot_translate_is_named(tmp_path):
    from optimizer.produce.bridge import to_tf_keras

    model = _unbridgeable_model()
    with pytest.raises(ModelRejected, match=r"layer 'cumsum' \(Cumsum\).*no tf_keras equivalent"):
        to_tf_keras(model)
    x = {"values": np.random.default_rng(0).normal(size=(TRAIN, 6)).astype(np.float32)}
    labels = (x["values"][:, 0] > 0).astype(np.int64)
    outcomes = _train_task(tmp_path, model, x, {"label": labels}, {"label": "classification"},
                           [VariantSpec(VariantKind.QAT, {"epochs": 1}), VariantSpec(VariantKind.CLUSTER)])
    for name in ("qat", "cluster"):  # each training variant fails on its own, with the layer named
        assert outcomes[name]["status"] == "failed" and "'cumsum' (Cumsum)" in outcomes[name]["error"]


@pytest.mark.slow
def test_qat_prune_and_cluster_run_on_mobilenetv3small(tmp_path):
    """keras.applications.MobileNetV3Small (96x96, weights=None, include_preprocessing): its op layers
    (``x + 3``, ``x / 6``), hard-swish and squeeze-and-excitation blocks go through the bridge and every
    technique; the layers tfmot cannot quantize stay float and are listed."""
    import keras

    from optimizer.measure.runtime import weight_stats
    from optimizer.produce.bridge import to_tf_keras
    from optimizer.produce.training import convert_trained, train_variant

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), weights=None, classes=10)
    rng = np.random.default_rng(0)
    x = {model.inputs[0].name: rng.uniform(0, 255, (16, 96, 96, 3)).astype(np.float32)}
    y = {"predictions": rng.integers(0, 10, 16)}
    specs = [VariantSpec(VariantKind.QAT, {"epochs": 1, "batch_size": 16}),
             VariantSpec(VariantKind.PRUNE, {"epochs": 1, "batch_size": 16, "schedule": "constant"}),
             VariantSpec(VariantKind.CLUSTER, {"epochs": 1, "batch_size": 16})]
    for spec in specs:
        twin, _ = to_tf_keras(model, x)
        trained = train_variant(spec, lambda twin=twin: twin, x, y, "classification", lambda _: None)
        path = tmp_path / f"{spec.name}.tflite"
        path.write_bytes(convert_trained(trained, x, 16))
        found = _run_tflite(path, {name: array[:2] for name, array in x.items()})
        assert list(found) == ["predictions"] and found["predictions"].shape == (2, 10)
        assert np.all(np.isfinite(found["predictions"]))
        if spec.kind is VariantKind.QAT:  # tfmot has no QAT for these; BatchNormalization after a conv it has
            kinds = {layer.name: type(layer).__name__ for layer in twin.layers}
            kept = {kinds[name] for name in trained.info["layers_kept_float"]}
            assert kept == {"Rescaling", "TFOpLambda", "Multiply"}, kept
        if spec.kind is VariantKind.PRUNE:
            kernels = weight_stats(path)
            assert kernels and np.median([k["zero_fraction"] for k in kernels]) >= 0.45
