"""Typed records that cross the seams between the stages of a run: progress events with their stage, and
the layout of one run folder. Everything here is plain data (JSON round-trip), no TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from optimizer.errors import InvalidOption


def check_known_fields(record_type: type[Any], data: dict[str, Any], what: str) -> None:
    """Refuse a stored or sent mapping with fields the record type does not have (naming them)."""
    known = {f.name for f in fields(record_type)}
    unknown = set(data) - known
    if unknown:
        raise InvalidOption(f"{what}: unknown fields {sorted(unknown)}; known: {sorted(known)}")


class Stage(StrEnum):
    """Every stage a run, or one of its variants, reports (the one list the CLI, the store and the app use)."""

    QUEUED = "queued"
    STARTING = "starting"
    INSPECTING = "inspecting"
    INSPECTED = "inspected"
    CHECKING_DATA = "checking data"
    EXPORTING = "exporting"
    EXPORTED = "exported"
    CONVERTING = "converting"
    TRAINING = "training"
    SEARCHING = "searching"
    CALIBRATION_STUDY = "calibration study"
    CONVERTED = "converted"
    EVALUATING = "evaluating"
    BENCHMARKING = "benchmarking"
    MEASURED = "measured"
    FAILED = "failed"
    DONE = "done"
    WORKING = "working"  # a stage this list does not know (e.g. from an extra kind's worker), kept in details


# How far along a variant is at each stage, for progress bars.
VARIANT_SHARE: dict[Stage, float] = {Stage.CONVERTING: 0.15, Stage.CONVERTED: 0.35, Stage.EVALUATING: 0.5,
                                     Stage.BENCHMARKING: 0.8, Stage.MEASURED: 1.0, Stage.FAILED: 1.0}


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: a run-wide stage (``variant`` None) or one variant's. ``details`` carries what a
    stage adds (the model summary once inspected, the export folder once exported, a conversion outcome)."""

    stage: Stage
    variant: str | None = None
    status: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None and k != "details"}
        return {**data, "stage": str(self.stage), **self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressEvent:
        known = {"stage", "variant", "status", "epoch", "epochs"}
        outcome = data.get("outcome") or {}
        details = {k: v for k, v in data.items() if k not in known}
        stage = str(data.get("stage", ""))
        if stage not in Stage.__members__.values():
            stage, details = Stage.WORKING, {**details, "reported_stage": stage}
        return cls(stage=Stage(stage), variant=data.get("variant") or outcome.get("name"),
                   status=data.get("status"), epoch=data.get("epoch"), epochs=data.get("epochs"), details=details)


@dataclass(frozen=True)
class RunLayout:
    """The one object that knows where a run keeps its files (the CLI's --out, or a job's folder)."""

    root: Path

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def variants_dir(self) -> Path:
        return self.root / "variants"

    @property
    def outputs_dir(self) -> Path:
        return self.work_dir / "outputs"

    def outputs_of(self, variant: str) -> Path:
        """A variant's outputs on the evaluation inputs, by output name (see :mod:`optimizer.tensors`)."""
        return self.outputs_dir / f"{variant}.npz"

    def relative(self, path: Path) -> str:
        """A path inside the run as stored in its results (relative to the run folder when it is inside)."""
        root = self.root.resolve()
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a model, by its name."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    scale: float = 0.0  # a quantized .tflite tensor's scale: its data is given as real (float) values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorInfo:
        return cls(str(data.get("name", "")), tuple(data.get("shape") or ()), str(data.get("dtype", "")),
                   float(data.get("scale") or 0.0))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        return {**data, "scale": self.scale} if self.scale else data

    @property
    def data_dtype(self) -> str:
        """The dtype its data is kept in: the tensor's own for integer inputs (token ids, uint8 pixels), float32
        for float tensors and for quantized ones (the runtime quantizes real values with the tensor's scale)."""
        return self.dtype if self.dtype.startswith(("int", "uint", "bool")) and not self.scale else "float32"


@dataclass(frozen=True)
class ModelSummary:
    """What intake found in an upload: format, source kind, tensors by name, size, hash, parameters, layers."""

    file_name: str
    format: str
    source: str
    file_size_bytes: int
    sha256: str
    parameter_count: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    layers: tuple[dict[str, Any], ...] = ()
    signature: str | None = None  # the SavedModel / .tflite signature the run uses
    signatures: tuple[str, ...] = ()  # every signature the file has
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSummary:
        """From the JSON an intake worker returns."""
        return cls(file_name=str(data["file_name"]), format=str(data["format"]), source=str(data["source"]),
                   file_size_bytes=int(data["file_size_bytes"]), sha256=str(data["sha256"]),
                   parameter_count=int(data.get("parameter_count") or 0),
                   inputs=tuple(TensorInfo.from_dict(t) for t in data["inputs"]),
                   outputs=tuple(TensorInfo.from_dict(t) for t in data["outputs"]),
                   layers=tuple(data.get("layers") or ()), signature=data.get("signature"),
                   signatures=tuple(data.get("signatures") or ()), raw=dict(data))

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def single_input(self) -> bool:
        return len(self.inputs) == 1

    def output_named(self, name: str) -> TensorInfo:
        for tensor in self.outputs:
            if tensor.name == name:
                return tensor
        raise InvalidOption(f"output: the model has no output {name!r}; it has {self.output_names}")

    def manifest(self) -> dict[str, Any]:
        return {"file_name": self.file_name, "format": self.format, "source": self.source,
                "file_size_bytes": self.file_size_bytes, "sha256": self.sha256,
                "parameter_count": self.parameter_count, "inputs": [t.to_dict() for t in self.inputs],
                "outputs": [t.to_dict() for t in self.outputs], "signature": self.signature,
                "signatures": list(self.signatures)}


@dataclass(frozen=True)
class DataReport:
    """The checked data of a run, keyed by the model's tensor names: the calibration and evaluation arrays of
    each input, and the labels of each labelled output (``.npy`` files in the run's work folder), plus the
    facts shown to the user (source, split, sample counts, classes, notes, the data's hash)."""

    source: str
    calibration: dict[str, str]  # input name -> .npy path
    evaluation: dict[str, str]
    calibration_labels: dict[str, str]  # output name -> .npy path
    evaluation_labels: dict[str, str]
    facts: dict[str, Any]  # split, calibration_samples, eval_samples, sample_shape, labelled, classes, notes

    @classmethod
    def from_prepared(cls, report: dict[str, Any]) -> DataReport:
        """From the report of :func:`optimizer.intake.data.prepare_data`."""
        files = ("calibration", "evaluation", "calibration_labels", "evaluation_labels")
        return cls(source=str(report["source"]), calibration=dict(report["calibration"]),
                   evaluation=dict(report["evaluation"]), calibration_labels=dict(report["calibration_labels"]),
                   evaluation_labels=dict(report["evaluation_labels"]),
                   facts={k: v for k, v in report.items() if k not in files})

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def labelled_outputs(self) -> list[str]:
        return list(self.evaluation_labels)


# What each worker task is sent (as JSON on its stdin): typed at both ends of the pipe.
@dataclass(frozen=True)
class _Payload:
    """A worker payload: plain fields, sent as a JSON object; unknown fields are refused on arrival."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        check_known_fields(cls, data, cls.__name__)
        return cls(**data)


@dataclass(frozen=True)
class InspectPayload(_Payload):
    """Inspect (and, for the preparer, export) one model file inside a work folder."""

    model_path: str
    workdir: str
    signature: str | None = None  # a SavedModel's or .tflite's signature; None: serving_default


@dataclass(frozen=True)
class ProducePayload(_Payload):
    """A producing worker's share (convert, train, diagnose): the model, where the variants go, the run's data
    files by tensor name (see :class:`DataReport`), each labelled output's task, and the specs to make."""

    model_path: str
    format: str
    workdir: str
    out_dir: str
    seed: int = 0
    signature: str | None = None
    calibration: dict[str, str] = field(default_factory=dict)  # input name -> .npy
    calibration_labels: dict[str, str] = field(default_factory=dict)  # output name -> .npy
    evaluation: dict[str, str] = field(default_factory=dict)
    evaluation_labels: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)  # labelled output name -> task
    accuracy_output: str | None = None  # the output an accuracy budget is measured on
    specs: tuple[dict[str, Any], ...] = ()
    export_dir: str | None = None

    def share(self, specs: list[Any], export_dir: str | None) -> ProducePayload:
        """This payload for one share of variant specs (VariantSpec objects), converting from ``export_dir``."""
        return replace(self, specs=tuple(s.to_dict() for s in specs), export_dir=export_dir)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "specs": list(self.specs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return super().from_dict({**data, "specs": tuple(data.get("specs") or ())})


@dataclass(frozen=True)
class EvaluatePayload(_Payload):
    """Run one variant over the evaluation inputs (by input name), save its outputs (by output name), and
    score each labelled output against its labels and every output against the float32 reference's."""

    model_path: str
    inputs: dict[str, str]  # input name -> .npy
    input_names: list[str]  # the model's inputs and outputs, in its own order (see optimizer.tensors.bind)
    output_names: list[str]
    outputs_path: str
    threads: int = 1
    labels: dict[str, str] = field(default_factory=dict)  # output name -> .npy
    tasks: dict[str, str] = field(default_factory=dict)
    reference_path: str | None = None


@dataclass(frozen=True)
class BenchmarkPayload(_Payload):
    """Time one variant: warm-up runs, then timed runs, on the first evaluation sample of each input (uniform
    random values without data)."""

    model_path: str
    samples: dict[str, str] = field(default_factory=dict)  # input name -> .npy
    input_names: list[str] = field(default_factory=list)
    threads: int = 1
    warmup_runs: int = 10
    timed_runs: int = 50
