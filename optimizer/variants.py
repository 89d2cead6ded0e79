"""The vocabulary of variants, as data: which kinds exist, what each needs, and a validated spec per variant.

A :class:`VariantSpec` round-trips through ``to_dict``/``from_dict`` so the CLI, stored runs, JSON and the
app's session state share one representation. New kinds plug in by adding one :class:`KindInfo` row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from optimizer.errors import InvalidOption


class VariantKind(StrEnum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    DYNAMIC_RANGE = "dynamic_range"
    INT8 = "int8"
    INT8_IO = "int8_io"
    INT16X8 = "int16x8"
    # For an uploaded float .tflite, through ai-edge-quantizer recipes.
    AEQ_DYNAMIC_INT8 = "aeq_dynamic_int8"
    AEQ_WEIGHT_ONLY_INT8 = "aeq_weight_only_int8"
    AEQ_STATIC_INT8 = "aeq_static_int8"
    # Training-time (tfmot), for Keras models with labelled training data.
    QAT = "qat"
    PRUNE = "prune"
    PRUNE_INT8 = "prune_int8"
    PRUNE_2X4 = "prune_2x4"
    CLUSTER = "cluster"
    PQAT = "pqat"
    CQAT = "cqat"
    SPARSE_CLUSTER = "sparse_cluster"
    FINETUNE_CONTROL = "finetune_control"
    # Diagnosis: the k most sensitive layers kept float, found by search against an accuracy budget.
    MIXED_INT8 = "mixed_int8"


class SourceFormat(StrEnum):
    """What a kind can be produced from: a TensorFlow model (Keras/SavedModel) or a float .tflite."""

    TENSORFLOW = "tensorflow"
    TFLITE = "tflite"


@dataclass(frozen=True)
class ConverterSettings:
    """What a TFLiteConverter is told for one kind, as data. The conversion (:meth:`apply`) and the recipe
    printed next to the variant (:meth:`as_code`) are made from the same fields, so they cannot differ."""

    optimize: bool = False  # optimizations = [tf.lite.Optimize.DEFAULT]
    supported_types: tuple[str, ...] = ()  # names of tf dtypes, e.g. ("float16",)
    calibrate: bool = False  # a representative dataset (the kind then needs calibration data)
    supported_ops: tuple[str, ...] = ()  # names of tf.lite.OpsSet members
    io_dtype: str | None = None  # inference input and output type, e.g. "int8"
    # Speed only, the same bytes (tested): TF 2.21's MLIR quantizer calibrates int16x8 once more for nothing.
    skip_redundant_calibration: bool = False

    def apply(self, converter: Any, representative_dataset: Callable[[], Any] | None) -> None:
        import tensorflow as tf

        if self.optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.supported_types:
            converter.target_spec.supported_types = [getattr(tf, name) for name in self.supported_types]
        if self.calibrate:
            if representative_dataset is None:
                raise InvalidOption("these converter settings need a representative dataset; none was given")
            converter.representative_dataset = representative_dataset
        if self.supported_ops:
            converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, name) for name in self.supported_ops]
        if self.io_dtype:
            converter.inference_input_type = converter.inference_output_type = getattr(tf, self.io_dtype)
        if self.skip_redundant_calibration:
            converter.experimental_new_quantizer = False

    def as_code(self) -> str:
        """The same settings as the lines one writes by hand (``converter`` and ``representative_dataset``)."""
        lines = []
        if self.optimize:
            lines.append("converter.optimizations = [tf.lite.Optimize.DEFAULT]")
        if self.supported_types:
            types = ", ".join(f"tf.{name}" for name in self.supported_types)
            lines.append(f"converter.target_spec.supported_types = [{types}]")
        if self.calibrate:
            lines.append("converter.representative_dataset = representative_dataset")
        if self.supported_ops:
            ops = ", ".join(f"tf.lite.OpsSet.{name}" for name in self.supported_ops)
            lines.append(f"converter.target_spec.supported_ops = [{ops}]")
        if self.io_dtype:
            lines.append(f"converter.inference_input_type = tf.{self.io_dtype}")
            lines.append(f"converter.inference_output_type = tf.{self.io_dtype}")
        return "".join(line + "\n" for line in lines)


# Full integer quantization: the one set of settings int8, selective int8 and the int8 training kinds share.
INT8 = ConverterSettings(optimize=True, calibrate=True, supported_ops=("TFLITE_BUILTINS_INT8",))


@dataclass(frozen=True)
class KindInfo:
    """Everything one variant kind is: what it needs, how it is produced, how the UI describes it and its
    option defaults. One row of :data:`KINDS` per kind."""

    kind: str
    label: str
    sources: frozenset[SourceFormat]
    needs_calibration: bool
    expect_integer_only: bool
    summary: str
    option_defaults: dict[str, Any] = field(default_factory=dict)
    needs_training: bool = False  # fine-tunes a Keras model with tfmot: needs labels and a .keras/.h5
    worker_task: str = "convert"  # which worker produces it: convert, train or diagnose
    # Kinds of one family ask the converter for the same float graph and calibration, which a conversion
    # worker then does once for all of them: they belong in the same worker.
    conversion_family: str = ""
    # Runs on slow (reference) kernels on x86, so its evaluation is long: converted early, it is evaluated
    # while the other variants convert instead of after them.
    slow_to_run: bool = False
    listed: bool = True  # offered in default runs and the app (False for a kind only tests use)
    converter: ConverterSettings | None = None  # a TensorFlow post-training conversion: its settings
    aeq_recipe: str | None = None  # an ai-edge-quantizer recipe function name, for a float .tflite

    @property
    def quantizes(self) -> bool:
        """Its variants store quantized weights (a variant that does not quantized nothing, and is told so)."""
        return bool((self.converter is not None and self.converter.optimize) or self.aeq_recipe
                    or self.expect_integer_only)

    def __post_init__(self) -> None:
        if self.worker_task == "convert" and self.kind != "float32" and (self.converter is None) == (
                self.aeq_recipe is None):
            raise InvalidOption(f"kind {self.kind}: a converted kind has converter settings or an "
                                "ai-edge-quantizer recipe (exactly one)")
        if self.converter is not None and self.converter.calibrate != self.needs_calibration:
            raise InvalidOption(f"kind {self.kind}: needs_calibration must match its converter settings")


_TRAINING_DEFAULTS: dict[str, Any] = {"epochs": 4, "batch_size": 32, "learning_rate": 5e-4,
                                      "calibration_samples": 200}
_BOTH = frozenset({SourceFormat.TENSORFLOW, SourceFormat.TFLITE})
_TF = frozenset({SourceFormat.TENSORFLOW})
_TFLITE = frozenset({SourceFormat.TFLITE})

KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(VariantKind.FLOAT32, "float32 baseline", _BOTH, False, False,
                 "Reference: unchanged weights and float compute.", converter=ConverterSettings()),
        KindInfo(VariantKind.FLOAT16, "float16 weights", _TF, False, False,
                 "Halves the file; CPU dequantizes to float32, so latency stays the same.",
                 converter=ConverterSettings(optimize=True, supported_types=("float16",))),
        KindInfo(VariantKind.DYNAMIC_RANGE, "dynamic-range int8", _TF, False, False,
                 "int8 weights, float activations: ~4x smaller; can be slower on conv nets, faster on Dense.",
                 converter=ConverterSettings(optimize=True)),
        KindInfo(VariantKind.INT8, "full int8, float I/O", _TF, True, True,
                 "int8 weights and activations with float in/out: ~4x smaller and usually the fastest on CPU.",
                 {"calibration_samples": 200}, conversion_family="int8", converter=INT8),
        KindInfo(VariantKind.INT8_IO, "full int8, int8 I/O", _TF, True, True,
                 "As full int8, with int8 input/output tensors for integer-only accelerators.",
                 {"calibration_samples": 200}, conversion_family="int8",
                 converter=replace(INT8, io_dtype="int8")),
        KindInfo(VariantKind.INT16X8, "int16 activations, int8 weights", _TF, True, True,
                 "Better accuracy than int8 for sensitive models; reference kernels make it slow on CPU.",
                 {"calibration_samples": 200}, slow_to_run=True,
                 converter=ConverterSettings(
                     optimize=True, calibrate=True, skip_redundant_calibration=True,
                     supported_ops=("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",))),
        KindInfo(VariantKind.AEQ_DYNAMIC_INT8, "dynamic int8 (ai-edge-quantizer)", _TFLITE, False, False,
                 "ai-edge-quantizer's dynamic_wi8_afp32 recipe on the uploaded .tflite.",
                 aeq_recipe="dynamic_wi8_afp32"),
        KindInfo(VariantKind.AEQ_WEIGHT_ONLY_INT8, "weight-only int8 (ai-edge-quantizer)", _TFLITE, False, False,
                 "ai-edge-quantizer's weight_only_wi8_afp32: int8 storage, float compute.",
                 aeq_recipe="weight_only_wi8_afp32"),
        KindInfo(VariantKind.AEQ_STATIC_INT8, "static int8 (ai-edge-quantizer)", _TFLITE, True, True,
                 "ai-edge-quantizer's static_wi8_ai8: calibrated int8 weights and activations.",
                 {"calibration_samples": 200}, aeq_recipe="static_wi8_ai8"),
        KindInfo(VariantKind.MIXED_INT8, "selective int8 (sensitive layers float)", _TF, True, False,
                 "int8 except the layers the quantization debugger finds most sensitive, kept float until the "
                 "accuracy drop is within budget; with the per-layer error table and a calibration study.",
                 {"calibration_samples": 200, "accuracy_budget": 1.0, "max_float_layers": 8,
                  "calibration_study": True}, worker_task="diagnose"),
        *(KindInfo(kind, label, _TF, True, integer, summary, {**_TRAINING_DEFAULTS, **extra}, needs_training=True,
                   worker_task="train")
          for kind, label, integer, summary, extra in (
            (VariantKind.QAT, "quantization-aware training (int8)", True,
             "Fine-tunes with fake quantization, then full int8: recovers accuracy int8 PTQ lost; same speed.", {}),
            (VariantKind.PRUNE, "magnitude pruning (float)", False,
             "Zeroes the smallest weights: only the gzip size shrinks; no x86 kernel runs it faster.",
             {"sparsity": 0.5, "schedule": "polynomial"}),
            (VariantKind.PRUNE_INT8, "magnitude pruning + int8", True,
             "Pruned, then full int8: small on disk and compressed; speed as int8.",
             {"sparsity": 0.5, "schedule": "polynomial"}),
            (VariantKind.PRUNE_2X4, "2:4 structured pruning (float)", False,
             "Two of every four weights zero on eligible layers; no TFLite x86 kernel speeds 2:4 up.", {}),
            (VariantKind.CLUSTER, "weight clustering (float)", False,
             "Each kernel shares a few values: compresses well (gzip); same size and speed raw.",
             {"clusters": 16}),
            (VariantKind.PQAT, "pruning-preserving QAT (int8)", True,
             "Pruning, then QAT that keeps the zeros: sparse and int8.", {"sparsity": 0.5}),
            (VariantKind.CQAT, "cluster-preserving QAT (int8)", True,
             "Clustering, then QAT that keeps the clusters: compressible and int8.", {"clusters": 16}),
            (VariantKind.SPARSE_CLUSTER, "sparsity-preserving clustering (float)", False,
             "Pruning, then clustering that keeps the zeros.", {"sparsity": 0.5, "clusters": 16}),
            (VariantKind.FINETUNE_CONTROL, "fine-tune control (float)", False,
             "The same fine-tune with no technique: tells the technique's effect from more training's.", {}),
        )),
    )
}


def option_defaults() -> dict[str, Any]:
    """Each option's default across the kinds that have it (the app's widgets start from these)."""
    defaults: dict[str, Any] = {}
    for info in KINDS.values():
        for name, value in info.option_defaults.items():
            defaults.setdefault(name, value)
    return defaults


EXTRA_KINDS_VARIABLE = "STUDIO_EXTRA_KINDS"


def register_kind(info: KindInfo) -> None:
    """Add a kind beyond the built-in ones (one row). Worker processes learn it from the modules named in
    ``$STUDIO_EXTRA_KINDS`` (comma-separated, importable, set by whoever runs the tool), which call this."""
    if info.kind in KINDS and KINDS[info.kind] != info:
        raise InvalidOption(f"kind {info.kind}: already registered with other settings")
    KINDS[info.kind] = info


def _load_extra_kinds() -> None:
    import importlib
    import os

    for module in filter(None, (m.strip() for m in os.environ.get(EXTRA_KINDS_VARIABLE, "").split(","))):
        importlib.import_module(module)


def default_kinds(source: SourceFormat, training: bool = False) -> list[str]:
    """The plain conversions for this source, in table order; with ``training``, also the training and
    diagnosis kinds (they cost minutes, so a default run leaves them out)."""
    return [kind for kind, info in KINDS.items()
            if info.listed and source in info.sources and (training or info.worker_task == "convert")]


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_training_options(kind: str, options: dict[str, Any]) -> None:
    """Ranges of the fine-tune options, with the option named in the message."""
    name = str(kind)
    if "epochs" in options and not (_whole(options["epochs"]) and 1 <= options["epochs"] <= 1000):
        raise InvalidOption(f"variant {name}: epochs must be a whole number in 1..1000; found {options['epochs']!r}")
    if "batch_size" in options and not (_whole(options["batch_size"]) and options["batch_size"] >= 1):
        raise InvalidOption(f"variant {name}: batch_size must be a whole number >= 1; found {options['batch_size']!r}")
    if "learning_rate" in options and not (isinstance(options["learning_rate"], int | float)
                                           and 0 < options["learning_rate"] <= 1):
        raise InvalidOption(f"variant {name}: learning_rate must be in (0, 1]; found {options['learning_rate']!r}")
    if "sparsity" in options and not (isinstance(options["sparsity"], int | float) and 0 < options["sparsity"] < 1):
        raise InvalidOption(f"variant {name}: sparsity must be in (0, 1); found {options['sparsity']!r}")
    if "accuracy_budget" in options and not (isinstance(options["accuracy_budget"], int | float)
                                             and 0 <= options["accuracy_budget"] <= 100):
        raise InvalidOption(f"variant {name}: accuracy_budget (points) must be in 0..100; "
                            f"found {options['accuracy_budget']!r}")
    if "max_float_layers" in options and not (_whole(options["max_float_layers"]) and options["max_float_layers"] >= 1):
        raise InvalidOption(f"variant {name}: max_float_layers must be a whole number >= 1; "
                            f"found {options['max_float_layers']!r}")
    if "schedule" in options and options["schedule"] not in ("polynomial", "constant"):
        raise InvalidOption(f"variant {name}: schedule must be 'polynomial' or 'constant'; "
                            f"found {options['schedule']!r}")
    if "clusters" in options and not (_whole(options["clusters"]) and 2 <= options["clusters"] <= 256):
        raise InvalidOption(f"variant {name}: clusters must be a whole number in 2..256; found {options['clusters']!r}")


# CLI shorthands: prune50 = prune at 50% sparsity, cluster8 = clustering to 8 clusters, and so on.
ALIASES: dict[str, tuple[VariantKind, dict[str, Any]]] = {
    **{f"prune{p}": (VariantKind.PRUNE, {"sparsity": p / 100}) for p in (50, 75, 90)},
    **{f"prune{p}_int8": (VariantKind.PRUNE_INT8, {"sparsity": p / 100}) for p in (50, 75, 90)},
    **{f"cluster{n}": (VariantKind.CLUSTER, {"clusters": n}) for n in (8, 16, 32)},
}


_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class VariantSpec:
    """One variant to produce: a kind plus its options (validated on construction)."""

    kind: str  # a VariantKind for the built-in kinds
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        kind = kind_named(self.kind)
        object.__setattr__(self, "kind", kind)
        info = KINDS[kind]
        unknown = set(self.options) - set(info.option_defaults)
        if unknown:
            allowed = ", ".join(sorted(info.option_defaults)) or "none"
            raise InvalidOption(
                f"variant {kind}: unknown option(s) {', '.join(sorted(unknown))}; allowed: {allowed}"
            )
        merged = {**info.option_defaults, **self.options}
        samples = merged.get("calibration_samples")
        if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool) or samples < 1):
            raise InvalidOption(
                f"variant {kind}: calibration_samples must be a whole number >= 1; found {samples!r}"
            )
        _check_training_options(kind, merged)
        object.__setattr__(self, "options", merged)
        if not self.name:
            object.__setattr__(self, "name", str(kind))
        if not (isinstance(self.name, str) and _SAFE_NAME.fullmatch(self.name)):
            raise InvalidOption(f"variant name: expected 1-64 letters, digits, '_' or '-' (it names the variant's "
                                f"files); found {self.name!r}")

    @property
    def info(self) -> KindInfo:
        return KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "name": self.name, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantSpec:
        if not isinstance(data, dict) or "kind" not in data:
            raise InvalidOption(f"variant spec: expected a mapping with a 'kind'; found {data!r}")
        return cls(kind=data["kind"], options=dict(data.get("options") or {}), name=data.get("name", ""))


def kind_named(name: str) -> str:
    """The registered kind of this name (the VariantKind member for a built-in kind)."""
    if name in VariantKind.__members__.values():
        return VariantKind(name)
    if name in KINDS:
        return str(name)
    known = ", ".join(k for k, info in KINDS.items() if info.listed)
    raise InvalidOption(f"variant kind: expected one of {known}; found {name!r}")


def spec_with_options(kind: str, options: dict[str, Any], name: str = "") -> VariantSpec:
    """A spec taking from ``options`` only what its kind accepts (None means 'use the default')."""
    allowed = KINDS[kind].option_defaults if kind in KINDS else {}
    chosen = {k: v for k, v in options.items() if k in allowed and v is not None}
    return VariantSpec(kind, chosen, name=name)


def check_sources(specs: list[VariantSpec], source: SourceFormat) -> None:
    """Refuse a kind that cannot be made from this source (a training kind from a .tflite, for instance)."""
    for spec in specs:
        if source not in spec.info.sources:
            can = ", ".join(default_kinds(source))
            raise InvalidOption(
                f"variant {spec.kind} cannot be made from a {source.value} model; possible: {can}"
            )


def parse_variant_list(text: str, source: SourceFormat,
                       training_options: dict[str, Any] | None = None) -> list[VariantSpec]:
    """Parse a comma-separated list of kinds or aliases (CLI ``--variants``); ``all``/empty means every
    post-training kind for the source. ``training_options`` (epochs, sparsity, ...) apply where a kind has them."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or names == ["all"]:
        return [VariantSpec(kind) for kind in default_kinds(source)]
    specs = []
    for name in names:
        kind, options = ALIASES.get(name, (name, {}))
        given = {k: v for k, v in (training_options or {}).items() if v is not None}
        specs.append(spec_with_options(kind, {**options, **given}, name=name))
    check_sources(specs, source)
    if VariantKind.FLOAT32 not in {s.kind for s in specs}:
        specs.insert(0, VariantSpec(VariantKind.FLOAT32))  # fidelity is measured against it
    return specs


_load_extra_kinds()
