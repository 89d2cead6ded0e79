"""Every variant carries the exact Python code that reproduces it outside this tool.

A recipe is written next to the variant's .tflite (``variants/<name>.py``) and reads the run's own copies
of the inputs (``input/`` and ``work/``), so the run folder can be zipped and rerun anywhere with the pinned
packages. Post-training recipes are plain converter code; training recipes carry the bridge and technique
code verbatim (tfmot calls with their parameters) followed by the call that produced the variant.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.produce.calibration import representative_dataset_code
from optimizer.variants import INT8, VariantKind, VariantSpec


@dataclass(frozen=True)
class RecipeInputs:
    """What a recipe reads from its run folder: the model file, the data files by tensor name (paths relative
    to the run folder), each labelled output's task, the seed."""

    model_file: str
    model_format: str
    saved_model_dir: str | None = None
    signature: str | None = None
    calibration: dict[str, str] = field(default_factory=dict)  # input name -> work/calib_x*.npy
    labels: dict[str, str] = field(default_factory=dict)  # output name -> work/calib_y*.npy
    tasks: dict[str, str] = field(default_factory=dict)
    seed: int = 0

    def loads(self, files: dict[str, str]) -> dict[str, str]:
        """{tensor name: the expression that loads its array in the recipe}."""
        return {name: f"np.load(RUN / {path!r})" for name, path in files.items()}

    def loads_literal(self, files: dict[str, str]) -> str:
        return "{" + ", ".join(f"{name!r}: {expression}" for name, expression in self.loads(files).items()) + "}"

_HEADER = '''"""Recipe for variant {name!r} ({label}), written by TFLite Optimization Studio.

Reproduces {name}.tflite from this run's inputs: run `python {name}.py` (any working directory); it writes
{name}.recipe.tflite beside this file. Needs the packages pinned in the studio's requirements.txt.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUN = HERE.parent
OUTPUT = HERE / "{name}.recipe.tflite"
'''

_LOAD_KERAS = '''
import tempfile

import keras
import tensorflow as tf

model = keras.saving.load_model(RUN / "input" / {model_file!r}, compile=False, safe_mode=True)
export_dir = Path(tempfile.mkdtemp()) / "export"
model.export(str(export_dir), format="tf_saved_model", verbose=False)
'''

_LOAD_SAVED_MODEL = '''
import tensorflow as tf

export_dir = RUN / {saved_model_dir!r}  # the audited, extracted upload
'''


def _converter_line(inputs: RecipeInputs) -> str:
    keys = f", signature_keys=[{inputs.signature!r}]" if inputs.model_format == "saved_model_zip" and \
        inputs.signature else ""
    return f"converter = tf.lite.TFLiteConverter.from_saved_model(str(export_dir){keys})\n"

def _aeq(spec: VariantSpec, inputs: RecipeInputs) -> str:
    recipe = spec.info.aeq_recipe
    count = spec.options.get("calibration_samples", 200)
    code = f'''
from ai_edge_litert.interpreter import Interpreter
from ai_edge_quantizer import quantizer, recipe

float_model = RUN / "input" / {inputs.model_file!r}
engine = quantizer.Quantizer(str(float_model))
engine.load_quantization_recipe(recipe.{recipe}())
calibration_result = None
if engine.need_calibration:
    samples = {inputs.loads_literal(inputs.calibration)}  # by the signature's input names
    samples = {{name: (a.astype(np.float32) if a.dtype.kind == "f" else a)[:{count}] for name, a in samples.items()}}
    signature = next(iter(Interpreter(model_path=str(float_model)).get_signature_list()))
    count = len(next(iter(samples.values())))
    calibration_result = engine.calibrate({{signature: [{{name: a[i:i + 1] for name, a in samples.items()}}
                                                       for i in range(count)]}})
OUTPUT.write_bytes(bytes(engine.quantize(calibration_result).quantized_model))
print("wrote", OUTPUT)
'''
    return code


def _module_source(module: Any) -> str:
    """A module's source, made standalone: the studio's errors become ValueError, and the names it imports
    from other studio modules come from the one namespace the recipe executes them all in."""
    source = inspect.getsource(module)
    source = re.sub(r"^from optimizer\.errors import (.+)$", lambda m: " = ".join(
        [*(name.strip() for name in m.group(1).split(",")), "ValueError"]), source, flags=re.M)
    return re.sub(r"^from optimizer\.\S+ import .+$", "", source, flags=re.M)


def _training(spec: VariantSpec, inputs: RecipeInputs) -> str:
    from optimizer import tensors, variants
    from optimizer.produce import bridge, calibration, training

    training_source = _module_source(training).split("\ndef train_task(")[0]
    vendored = {"tensors": _module_source(tensors), "variants": _module_source(variants),
                "calibration": _module_source(calibration), "bridge": _module_source(bridge),
                "training": training_source}
    return f'''
import sys
import types

# The studio's own code for tensors by name, the variant spec, the Keras 3 -> tf_keras bridge and the tfmot
# techniques, verbatim (see optimizer/tensors.py, variants.py, produce/calibration.py, bridge.py and
# training.py), so this file needs nothing else.
VENDORED = {json.dumps(vendored)}
studio = types.ModuleType("studio")
sys.modules["studio"] = studio
for _name in VENDORED:  # one namespace: training uses the spec types, calibration the tensor helpers
    exec(compile(VENDORED[_name], "studio_" + _name, "exec"), studio.__dict__)
VariantSpec, to_tf_keras = studio.VariantSpec, studio.to_tf_keras
train_variant, convert_trained = studio.train_variant, studio.convert_trained

import keras
import tf_keras

model = keras.saving.load_model(RUN / "input" / {inputs.model_file!r}, compile=False, safe_mode=True)
x = {inputs.loads_literal(inputs.calibration)}  # by input name
y = {inputs.loads_literal(inputs.labels)}  # by labelled output name
tasks = {inputs.tasks!r}
spec = VariantSpec.from_dict({json.dumps(spec.to_dict())})
twin, _ = to_tf_keras(model, {{name: a[:16] for name, a in x.items()}})  # the verified tf_keras copy, then the seed
tf_keras.utils.set_random_seed({inputs.seed})
trained = train_variant(spec, lambda: twin, x, y, tasks, print)
OUTPUT.write_bytes(convert_trained(trained, x, {int(spec.options.get("calibration_samples") or 200)}))
print("wrote", OUTPUT)
'''


def _selective(spec: VariantSpec, inputs: RecipeInputs, float_layers: list[str]) -> str:
    return f'''
debug = {{name: array[:{64}] for name, array in calibration.items()}}
options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes={float_layers!r})
{_converter_line(inputs)}{INT8.as_code()}debugger = tf.lite.experimental.QuantizationDebugger(
    converter=converter,
    debug_dataset=lambda: ({{n: a[i:i + 1] for n, a in debug.items()}} for i in range(len(next(iter(debug.values()))))),
    debug_options=options)
OUTPUT.write_bytes(bytes(debugger.get_nondebug_quantized_model()))
print("wrote", OUTPUT)
'''


def recipe_for(spec: VariantSpec, inputs: RecipeInputs, float_layers: list[str] | None = None) -> str:
    """The runnable script that reproduces ``spec`` from the run folder's inputs."""
    header = _HEADER.format(name=spec.name, label=spec.info.label)
    if spec.info.aeq_recipe or (inputs.model_format == "tflite" and spec.kind is VariantKind.FLOAT32):
        if spec.kind is VariantKind.FLOAT32:
            upload = f'RUN / "input" / {inputs.model_file!r}'
            return header + f"\nOUTPUT.write_bytes(({upload}).read_bytes())  # the upload\n"
        return header + _aeq(spec, inputs)
    if spec.info.needs_training:
        return header + _training(spec, inputs)
    load = (_LOAD_SAVED_MODEL.format(saved_model_dir=inputs.saved_model_dir)
            if inputs.model_format == "saved_model_zip" else _LOAD_KERAS.format(model_file=inputs.model_file))
    calibration = representative_dataset_code(inputs.loads(inputs.calibration),
                                              int(spec.options.get("calibration_samples", 200)))
    if spec.kind is VariantKind.MIXED_INT8:
        return header + load + calibration + _selective(spec, inputs, float_layers or [])
    if spec.info.converter is None:
        raise ValueError(f"kind {spec.kind}: no converter settings to write a recipe from")
    body = "\n" + _converter_line(inputs)
    body += spec.info.converter.as_code()
    body += 'OUTPUT.write_bytes(converter.convert())\nprint("wrote", OUTPUT)\n'
    return header + load + (calibration if spec.info.needs_calibration else "") + body


def write_recipe(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path
