"""The vocabulary of variants, as data: which kinds exist, what each needs, and a validated spec per variant.

A :class:`VariantSpec` round-trips through ``to_dict``/``from_dict`` so the CLI, stored runs, JSON and the
app's session state share one representation. New kinds plug in by adding one :class:`KindInfo` row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


class SourceFormat(StrEnum):
    """What a kind can be produced from: a TensorFlow model (Keras/SavedModel) or a float .tflite."""

    TENSORFLOW = "tensorflow"
    TFLITE = "tflite"


@dataclass(frozen=True)
class KindInfo:
    kind: VariantKind
    label: str
    sources: frozenset[SourceFormat]
    needs_calibration: bool
    expect_integer_only: bool
    summary: str
    option_defaults: dict[str, Any] = field(default_factory=dict)


_BOTH = frozenset({SourceFormat.TENSORFLOW, SourceFormat.TFLITE})
_TF = frozenset({SourceFormat.TENSORFLOW})
_TFLITE = frozenset({SourceFormat.TFLITE})

KINDS: dict[VariantKind, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(VariantKind.FLOAT32, "float32 baseline", _BOTH, False, False,
                 "Reference: unchanged weights and float compute."),
        KindInfo(VariantKind.FLOAT16, "float16 weights", _TF, False, False,
                 "Halves the file; CPU dequantizes to float32, so latency stays the same."),
        KindInfo(VariantKind.DYNAMIC_RANGE, "dynamic-range int8", _TF, False, False,
                 "int8 weights, float activations: ~4x smaller; can be slower on conv nets, faster on Dense."),
        KindInfo(VariantKind.INT8, "full int8, float I/O", _TF, True, True,
                 "int8 weights and activations with float in/out: ~4x smaller and usually the fastest on CPU.",
                 {"calibration_samples": 200}),
        KindInfo(VariantKind.INT8_IO, "full int8, int8 I/O", _TF, True, True,
                 "As full int8, with int8 input/output tensors for integer-only accelerators.",
                 {"calibration_samples": 200}),
        KindInfo(VariantKind.INT16X8, "int16 activations, int8 weights", _TF, True, True,
                 "Better accuracy than int8 for sensitive models; reference kernels make it slow on CPU.",
                 {"calibration_samples": 200}),
        KindInfo(VariantKind.AEQ_DYNAMIC_INT8, "dynamic int8 (ai-edge-quantizer)", _TFLITE, False, False,
                 "ai-edge-quantizer's dynamic_wi8_afp32 recipe on the uploaded .tflite."),
        KindInfo(VariantKind.AEQ_WEIGHT_ONLY_INT8, "weight-only int8 (ai-edge-quantizer)", _TFLITE, False, False,
                 "ai-edge-quantizer's weight_only_wi8_afp32: int8 storage, float compute."),
        KindInfo(VariantKind.AEQ_STATIC_INT8, "static int8 (ai-edge-quantizer)", _TFLITE, True, True,
                 "ai-edge-quantizer's static_wi8_ai8: calibrated int8 weights and activations.",
                 {"calibration_samples": 200}),
    )
}


def default_kinds(source: SourceFormat) -> list[VariantKind]:
    """Every kind that can be produced from this source, in table order."""
    return [kind for kind, info in KINDS.items() if source in info.sources]


@dataclass(frozen=True)
class VariantSpec:
    """One variant to produce: a kind plus its options (validated on construction)."""

    kind: VariantKind
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        try:
            kind = VariantKind(self.kind)
        except ValueError:
            known = ", ".join(k.value for k in VariantKind)
            raise InvalidOption(f"variant kind: expected one of {known}; found {self.kind!r}") from None
        object.__setattr__(self, "kind", kind)
        info = KINDS[kind]
        unknown = set(self.options) - set(info.option_defaults)
        if unknown:
            allowed = ", ".join(sorted(info.option_defaults)) or "none"
            raise InvalidOption(
                f"variant {kind.value}: unknown option(s) {', '.join(sorted(unknown))}; allowed: {allowed}"
            )
        merged = {**info.option_defaults, **self.options}
        samples = merged.get("calibration_samples")
        if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool) or samples < 1):
            raise InvalidOption(
                f"variant {kind.value}: calibration_samples must be a whole number >= 1; found {samples!r}"
            )
        object.__setattr__(self, "options", merged)
        if not self.name:
            object.__setattr__(self, "name", kind.value)

    @property
    def info(self) -> KindInfo:
        return KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "name": self.name, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantSpec:
        if not isinstance(data, dict) or "kind" not in data:
            raise InvalidOption(f"variant spec: expected a mapping with a 'kind'; found {data!r}")
        return cls(kind=data["kind"], options=dict(data.get("options") or {}), name=data.get("name", ""))


def parse_variant_list(text: str, source: SourceFormat) -> list[VariantSpec]:
    """Parse a comma-separated list of kinds (CLI ``--variants``); ``all``/empty means every kind for the source."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or names == ["all"]:
        return [VariantSpec(kind) for kind in default_kinds(source)]
    specs = [VariantSpec(name) for name in names]  # type: ignore[arg-type]
    for spec in specs:
        if source not in spec.info.sources:
            can = ", ".join(k.value for k in default_kinds(source))
            raise InvalidOption(
                f"variant {spec.kind.value} cannot be made from a {source.value} model; possible: {can}"
            )
    if VariantKind.FLOAT32 not in {s.kind for s in specs}:
        specs.insert(0, VariantSpec(VariantKind.FLOAT32))  # fidelity is measured against it
    return specs
