"""The Keras 3 -> tf_keras bridge on real architectures: same outputs, clear refusals."""

import collections

import keras
import numpy as np
import pytest

from optimizer.errors import ModelRejected
from optimizer.produce.bridge import to_tf_keras
from tests.conftest import CANCER_MODEL, DIGITS_MODEL


def _resnet_style():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.Conv2D(16, 3, padding="same")(x)
    y = keras.layers.BatchNormalization()(y)
    x = keras.layers.Activation("relu")(keras.layers.Add()([x, y]))
    outputs = keras.layers.Dense(5, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("build", [
    lambda: keras.saving.load_model(DIGITS_MODEL, compile=False),
    lambda: keras.saving.load_model(CANCER_MODEL, compile=False),
    lambda: keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10),
    _resnet_style,
], ids=["sample_cnn", "sample_mlp", "mobilenetv2_alpha035", "resnet_style"])
def test_twin_gives_the_same_outputs(build):
    keras.utils.set_random_seed(0)
    model = build()
    twin, report = to_tf_keras(model)
    assert report.max_abs_difference <= 1e-4 and report.layers == len(model.layers)
    shape = [d or 1 for d in model.inputs[0].shape[1:]]
    probe = np.random.default_rng(1).uniform(-1, 1, size=(4, *shape)).astype(np.float32)
    np.testing.assert_allclose(twin.predict(probe, verbose=0), model.predict(probe, verbose=0), atol=1e-4)
    assert type(twin).__module__.startswith("tf_keras")


def test_subclassed_model_is_refused_with_the_reason():
    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Custom()
    model(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ModelRejected, match="subclassed Custom.*Python code is not in the file"):
        to_tf_keras(model)


def test_a_layer_tf_keras_lacks_is_named():
    if not hasattr(keras.layers, "RMSNormalization"):
        pytest.skip("this Keras has no RMSNormalization")
    model = keras.Sequential([keras.Input((4,)), keras.layers.RMSNormalization(), keras.layers.Dense(2)])
    with pytest.raises(ModelRejected, match="RMSNormalization"):
        to_tf_keras(model)


def _every_layer_agrees(model, twin, inputs: dict[str, np.ndarray]) -> int:
    """Compare the output of every Keras 3 layer and op with its tf_keras counterpart (same name), relative to
    its size: untrained deep nets shrink their signal to ~1e-12, which would make an output-only check vacuous.
    Returns how many were compared."""
    import tf_keras

    operations = [op for op in model.operations  # a shared layer has no single output to compare
                  if type(op).__name__ != "InputLayer" and len(op._inbound_nodes) == 1]
    names = [op.name for op in operations]
    ours = keras.Model(model.inputs, [op.output for op in operations])
    theirs = tf_keras.Model(twin.inputs, [twin.get_layer(n).output for n in names])
    feed = [inputs[t.name] for t in model.inputs]
    for name, a, b in zip(names, ours.predict(feed, verbose=0), theirs.predict(feed, verbose=0), strict=True):
        scale = float(np.max(np.abs(a))) + 1e-30
        assert np.max(np.abs(a - b)) <= 1e-4 * scale, (name, float(np.max(np.abs(a - b))), scale)
    return len(names)


@pytest.mark.parametrize("name", ["MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "ResNet50"])
def test_keras_applications_bridge_layer_by_layer(name):
    """Op layers (x + 3, x / 6), hard-swish, squeeze-and-excitation, Rescaling, Normalization, Reshape,
    DepthwiseConv2D, Add/Multiply: the twin agrees with every layer, not only with the (vanishing) outputs."""
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(input_shape=(64, 64, 3), weights=None, classes=10)
    inputs = {model.inputs[0].name: np.random.default_rng(1).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)}
    twin, report = to_tf_keras(model, inputs)
    assert report.max_abs_difference <= 1e-4
    assert _every_layer_agrees(model, twin, inputs) >= len(model.layers) - 1


def _expressions_model():
    layers = keras.layers
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    column = layers.Reshape((4, 1))(a)
    outputs = [a + 3.0, 3.0 - a, a / 6, a * (1 / 6), a * b, a - b, -a, keras.ops.add(a, b), a ** 2,
               keras.ops.relu(a), keras.ops.maximum(a, 0.0), keras.ops.minimum(a, b),
               column * layers.Reshape((1, 4))(b),  # (4, 1) x (1, 4): broadcast
               layers.Activation("hard_silu", name="hs")(a), layers.Activation("hard_sigmoid", name="hsig")(a),
               layers.Activation("hard_silu", name="hs_outer")(layers.Activation("hard_silu", name="hs_inner")(b))]
    shared = layers.Activation("hard_silu", name="hs_shared")  # one layer, two calls: two nodes of each part
    return keras.Model([a, b], [*outputs, shared(a), shared(b)])


def test_keras_op_expressions_and_hard_activations_bridge():
    import tf_keras

    model = _expressions_model()
    inputs = {"a": np.linspace(-5, 5, 32, dtype=np.float32).reshape(8, 4),
              "b": np.random.default_rng(0).uniform(-4, 4, (8, 4)).astype(np.float32)}
    twin, report = to_tf_keras(model, inputs)
    assert report.max_abs_difference <= 1e-5
    kinds = {layer.name: type(layer).__name__ for layer in twin.layers}
    counts = collections.Counter(kinds.values())  # ops are named by Keras (add, add_1, ...): counted by class
    assert counts["Subtract"] == 1 and counts["Add"] == 1 and counts["Minimum"] == 1  # a - b, ops.add, minimum
    assert counts["Multiply"] == 2 + 4  # a * b, the broadcast product, and one per hard_silu layer
    assert counts["TFOpLambda"] == 8 + 2 * 5  # the 8 ops with a constant or one input; two per hard activation
    assert kinds["hs"] == "Multiply" and kinds["hs_add3"] == "TFOpLambda" and kinds["hs_relu6"] == "ReLU"
    assert not any(isinstance(layer, tf_keras.layers.Lambda) for layer in twin.layers)  # no Python code


def test_multi_head_attention_call_forms_bridge():
    layers = keras.layers
    query, value = keras.Input((5, 4), name="query"), keras.Input((7, 4), name="value")
    mask = keras.Input((5, 7), dtype="int32", name="mask")
    outputs = [layers.MultiHeadAttention(2, 3, name="qv")(query, value),
               layers.MultiHeadAttention(2, 3, name="qvk")(query, value, value),
               layers.MultiHeadAttention(2, 3, name="masked")(query, value, attention_mask=mask),
               layers.MultiHeadAttention(2, 3, name="keywords")(query=query, value=value, key=value),
               layers.MultiHeadAttention(2, 3, name="self")(query, query)]
    model = keras.Model([query, value, mask], outputs)
    rng = np.random.default_rng(0)
    inputs = {"query": rng.normal(size=(6, 5, 4)).astype(np.float32),
              "value": rng.normal(size=(6, 7, 4)).astype(np.float32),
              "mask": (rng.uniform(size=(6, 5, 7)) > 0.3).astype(np.int32)}
    _, report = to_tf_keras(model, inputs)
    assert report.max_abs_difference <= 1e-4
    _, report = to_tf_keras(model)  # random check inputs: the int32 mask drawn as 0/1
    assert report.max_abs_difference <= 1e-4


def test_multi_output_models_keep_their_output_names_and_order():
    layers = keras.layers
    inputs = keras.Input((6,), name="features")
    hidden = layers.Dense(8, activation="relu", name="hidden")(inputs)
    heads = {"score": layers.Dense(1, name="score_head")(hidden),
             "class": layers.Dense(3, activation="softmax", name="class_head")(hidden)}
    listed = keras.Model(inputs, [heads["class"], heads["score"], hidden])
    twin, _ = to_tf_keras(listed)
    assert list(twin.output_names) == ["class_head", "score_head", "hidden"]
    keyed = keras.Model(inputs, heads)  # a dict of outputs: named (and ordered) by its sorted keys
    twin, report = to_tf_keras(keyed)
    assert list(twin.output_names) == ["class", "score"] and report.max_abs_difference <= 1e-4
    probe = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    found = twin.predict(probe, verbose=0)
    np.testing.assert_allclose(found[0], keyed.predict(probe, verbose=0)["class"], atol=1e-5)


@pytest.mark.parametrize(("activation", "reason"), [("celu", "has no tf_keras equivalent"),
                                                    ("hard_silu", "has no tf_keras equivalent"),
                                                    ("hard_sigmoid", "means something else in tf_keras")])
def test_an_activation_tf_keras_cannot_compute_is_named_with_its_layer(activation, reason):
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, activation=activation, name="head")(inputs))
    with pytest.raises(ModelRejected, match=rf"layer 'head' \(Dense\): activation '{activation}' ({reason})"):
        to_tf_keras(model)
