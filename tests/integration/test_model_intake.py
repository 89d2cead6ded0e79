"""Model intake on models the tests build: SavedModels with several signatures, a plain tf.Module's parameters,
a Keras file with a custom layer from the uploader's own code, and a .tflite whose custom op only the default
LiteRT runtime (XNNPACK) provides."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from optimizer.errors import ModelRejected
from optimizer.intake.model import custom_keras_classes, inspect_model, load_checked, load_keras
from optimizer.measure.runtime import audit_ops, describe, load_interpreter, predict, weight_stats

TWO_SIGNATURES = {"serving_default": "serve", "embed": "embed"}


def build_two_signature_saved_model(folder: Path, signatures: dict[str, str] = TWO_SIGNATURES) -> Path:
    """A plain tf.Module (no Keras) saved with ``signatures`` ({key: method}; ``serve`` maps x -> y, ``embed``
    tokens -> vector and norm), zipped as an upload. Returns the zip; the module's total variable size is
    written to ``folder / "parameters.txt"``."""
    import tensorflow as tf

    class TwoHeads(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(tf.ones((4, 3)))
            self.bias = tf.Variable(tf.zeros((3,)))
            self.same_kernel = self.kernel  # one variable reachable twice: counted once
            self.table = tf.Module()
            self.table.vectors = tf.Variable(tf.fill((2, 5), 0.5))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tf.matmul(x, self.kernel) + self.bias}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="tokens")])
        def embed(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"vector": tf.matmul(tokens, self.table.vectors), "norm": tf.reduce_sum(tokens, axis=1)}

    module = TwoHeads()
    export = folder / "two_heads"
    tf.saved_model.save(module, str(export), signatures={key: getattr(module, method)
                                                         for key, method in signatures.items()})
    (folder / "parameters.txt").write_text(str(sum(int(v.shape.num_elements()) for v in module.variables)))
    return Path(shutil.make_archive(str(folder / "two_heads"), "zip", root_dir=folder, base_dir=export.name))


@pytest.fixture(scope="module")
def two_signatures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_two_signature_saved_model(tmp_path_factory.mktemp("two_signatures"))


def test_saved_model_lists_every_signature_and_summarises_serving_default(two_signatures, tmp_path):
    summary = inspect_model(two_signatures, tmp_path)
    assert summary["signatures"] == ["embed", "serving_default"]
    assert summary["signature"] == "serving_default"
    assert [(t["name"], t["shape"]) for t in summary["inputs"]] == [("x", [None, 4])]
    assert [(t["name"], t["shape"]) for t in summary["outputs"]] == [("y", [None, 3])]


def test_another_signature_is_summarised_by_its_own_keys(two_signatures, tmp_path):
    summary = inspect_model(two_signatures, tmp_path, signature="embed")
    assert summary["signature"] == "embed" and summary["signatures"] == ["embed", "serving_default"]
    assert [(t["name"], t["shape"]) for t in summary["inputs"]] == [("tokens", [None, 2])]
    assert sorted((t["name"], tuple(t["shape"])) for t in summary["outputs"]) == [("norm", (None,)),
                                                                                  ("vector", (None, 5))]


def test_an_unknown_signature_is_refused_naming_the_available_ones(two_signatures, tmp_path):
    with pytest.raises(ModelRejected, match=r"expected a signature named 'encode'; found \['embed', "
                                            r"'serving_default'\]"):
        load_checked(two_signatures, tmp_path, "encode")


def test_a_single_signature_is_the_default_and_several_without_serving_default_are_refused(tmp_path):
    (tmp_path / "one").mkdir()
    only = build_two_signature_saved_model(tmp_path / "one", {"embed": "embed"})
    summary = inspect_model(only, tmp_path / "work_one")
    assert summary["signature"] == "embed" and summary["signatures"] == ["embed"]
    assert [t["name"] for t in summary["inputs"]] == ["tokens"]
    (tmp_path / "two").mkdir()
    several = build_two_signature_saved_model(tmp_path / "two", {"embed": "embed", "score": "serve"})
    with pytest.raises(ModelRejected, match=r"expected a 'serving_default' signature or a single one; "
                                            r"found \['embed', 'score'\]"):
        inspect_model(several, tmp_path / "work_two")
    assert inspect_model(several, tmp_path / "work_three", "score")["outputs"][0]["name"] == "y"


def test_a_keras_model_takes_no_signature(tmp_path):
    from tests.conftest import CANCER_MODEL

    with pytest.raises(ModelRejected, match=r"expected no signature for a Keras model .*; found signature 'embed'"):
        load_checked(CANCER_MODEL, tmp_path, "embed")


def test_a_plain_tf_module_reports_its_variables_as_parameters(two_signatures, tmp_path):
    expected = int((two_signatures.parent / "parameters.txt").read_text())
    assert expected == 4 * 3 + 3 + 2 * 5
    assert inspect_model(two_signatures, tmp_path)["parameter_count"] == expected


def test_a_keras_export_counts_each_weight_once(tmp_path):
    """A Keras export's object graph holds every variable twice (``variables`` and ``_all_variables``)."""
    import keras

    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(5, activation="relu")(inputs)))
    model.export(str(tmp_path / "export"), format="tf_saved_model", verbose=False)
    archive = shutil.make_archive(str(tmp_path / "export"), "zip", root_dir=tmp_path, base_dir="export")
    assert inspect_model(Path(archive), tmp_path / "work")["parameter_count"] == model.count_params() == 47


def test_a_custom_layer_from_user_code_is_named_and_refused(tmp_path, monkeypatch):
    import keras

    @keras.saving.register_keras_serializable(package="MyPackage")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Dense(2)(Doubler()(inputs))).save(tmp_path / "custom.keras")
    # The loader runs in a fresh process that never imported the uploader's code: unregister the class.
    monkeypatch.delitem(keras.saving.get_custom_objects(), "MyPackage>Doubler")
    assert custom_keras_classes(tmp_path / "custom.keras") == ["MyPackage>Doubler"]
    with pytest.raises(ModelRejected) as refused:
        load_keras(tmp_path / "custom.keras")
    message = str(refused.value)
    assert message.startswith("custom.keras: expected only Keras's built-in layers and functions; "
                              "found custom 'MyPackage>Doubler'")
    assert "never imports code from an upload" in message and "Functional" not in message


def test_a_custom_layer_in_a_legacy_h5_is_named_from_keras_error(tmp_path, monkeypatch):
    import keras

    @keras.saving.register_keras_serializable(package="MyPackage")
    class Tripler(keras.layers.Layer):
        def call(self, x):
            return x * 3

    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Dense(2)(Tripler()(inputs))).save(tmp_path / "custom.h5")
    monkeypatch.delitem(keras.saving.get_custom_objects(), "MyPackage>Tripler")
    with pytest.raises(ModelRejected, match=r"found custom 'MyPackage>Tripler', defined in the uploader's own code"):
        load_keras(tmp_path / "custom.h5")


def test_built_in_layers_are_not_taken_for_custom_ones():
    from tests.conftest import DIGITS_MODEL

    assert custom_keras_classes(DIGITS_MODEL) == []


def _transpose_conv_tflite(folder: Path) -> Path:
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(inputs))
    path = folder / "transpose_conv.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def _as_mediapipe_custom_op(source: Path, target: Path) -> Path:
    """Rewrite the file's TRANSPOSE_CONV as MediaPipe's custom Convolution2DTransposeBias (inputs: input,
    filter, bias; options: TfLiteTransposeConvParams padding=SAME, strides 2), the op selfie_segmentation uses."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(source))
    (code,) = model.operatorCodes
    assert code.builtinCode == schema.BuiltinOperator.TRANSPOSE_CONV
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = "Convolution2DTransposeBias"
    graph = model.subgraphs[0]
    (op,) = graph.operators
    _output_shape, weights, image = [int(i) for i in op.inputs[:3]]
    bias_buffer = schema.BufferT()
    bias_buffer.data = np.frombuffer(np.full(4, 0.5, np.float32).tobytes(), np.uint8)
    model.buffers.append(bias_buffer)
    bias = schema.TensorT()
    bias.shape, bias.type, bias.buffer, bias.name = np.array([4], np.int32), schema.TensorType.FLOAT32, \
        len(model.buffers) - 1, "bias"
    graph.tensors.append(bias)
    op.inputs = np.array([image, weights, len(graph.tensors) - 1], np.int32)
    op.builtinOptionsType, op.builtinOptions = 0, None
    op.customOptions = np.frombuffer(struct.pack("<iii", 1, 2, 2), np.uint8)
    flatbuffer_utils.write_model(model, str(target))
    return target


@pytest.fixture(scope="module")
def transpose_conv_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("custom_op")
    builtin = _transpose_conv_tflite(folder)
    return builtin, _as_mediapipe_custom_op(builtin, folder / "mediapipe_op.tflite")


def test_a_custom_op_the_default_runtime_provides_is_described(transpose_conv_files, tmp_path):
    builtin, custom = transpose_conv_files
    with pytest.raises(ModelRejected, match="unresolved custom op: Convolution2DTransposeBias"):
        load_interpreter(custom, xnnpack=False)  # why describe no longer opens without default delegates
    summary, _ = load_checked(custom, tmp_path)
    assert [layer["type"] for layer in summary["layers"]] == ["Convolution2DTransposeBias"]
    assert summary["parameter_count"] == 4 * 3 * 3 * 3 + 4  # filter and bias
    assert audit_ops(custom).op_counts == {"Convolution2DTransposeBias": 1}
    assert weight_stats(custom) == []  # not a kernel op this tool reads
    image = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
    name = summary["inputs"][0]["name"]
    expected = predict(builtin, {name: image}, [name], ["output_0"])["output_0"]
    found = predict(custom, {name: image}, [name], ["output_0"])["output_0"]
    np.testing.assert_allclose(found, expected + 0.5, atol=1e-5)  # the rewrite is faithful: same op plus bias


def test_described_ops_are_the_models_own_not_delegate_nodes(tmp_path):
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 1))
    features = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    path = tmp_path / "small_cnn.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(
        keras.Model(inputs, keras.layers.Dense(2)(features))).convert())
    own = [op["op_name"] for op in load_interpreter(path, xnnpack=False)._get_ops_details()]
    assert "DELEGATE" not in own and {"CONV_2D", "FULLY_CONNECTED"} <= set(own)
    assert [layer["type"] for layer in describe(path)["layers"]] == own  # XNNPACK on, yet the model's own ops
    assert sum(audit_ops(path).op_counts.values()) == len(own)
    assert [entry["op"].split("#")[0] for entry in weight_stats(path)] == ["CONV_2D", "FULLY_CONNECTED"]


def test_a_tflite_signature_is_chosen_by_name(tmp_path):
    """The converter keys each concrete function's signature by the function's name (TF 2.21's
    from_saved_model kept only serving_default when asked for two keys)."""
    import tensorflow as tf

    class TwoHeads(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(tf.ones((4, 3)))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serving_default(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tf.matmul(x, self.kernel)}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="tokens")])
        def embed(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"vector": tf.matmul(tokens, self.kernel, transpose_b=True), "norm": tf.reduce_sum(tokens, 1)}

    module = TwoHeads()
    functions = [module.serving_default.get_concrete_function(), module.embed.get_concrete_function()]
    path = tmp_path / "two_heads.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions(functions, module).convert())
    default = describe(path)
    assert default["signatures"] == ["embed", "serving_default"] and default["signature"] == "serving_default"
    assert [t["name"] for t in default["inputs"]] == ["x"]
    embed = describe(path, "embed")
    assert embed["signature"] == "embed" and [t["name"] for t in embed["inputs"]] == ["tokens"]
    assert sorted(t["name"] for t in embed["outputs"]) == ["norm", "vector"]
    with pytest.raises(ModelRejected, match=r"expected a signature named 'encode'; found \['embed', "):
        describe(path, "encode")
