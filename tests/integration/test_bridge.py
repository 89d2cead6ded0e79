"""The Keras 3 -> tf_keras bridge on real architectures: same outputs, clear refusals."""

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
