"""Typed records that cross the seams between the stages of a run: progress events with their stage, and
the layout of one run folder. Everything here is plain data (JSON round-trip), no TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


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
        return cls(stage=Stage(data["stage"]), variant=data.get("variant") or outcome.get("name"),
                   status=data.get("status"), epoch=data.get("epoch"), epochs=data.get("epochs"),
                   details={k: v for k, v in data.items() if k not in known})


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
        return self.outputs_dir / f"{variant}.npy"

    def variant_file(self, variant: str) -> Path:
        return self.variants_dir / f"{variant}.tflite"

    @property
    def runner_log(self) -> Path:
        return self.root / "runner.log"

    def relative(self, path: Path) -> str:
        """A path inside the run as stored in its results (relative to the run folder when it is inside)."""
        root = self.root.resolve()
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
