"""The options of one run, shared by the library call, the command line and the job request."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from optimizer.errors import InvalidOption
from optimizer.measure.evaluate import Task
from optimizer.records import check_known_fields
from optimizer.run.isolation import DEFAULT_LIMITS, WorkerLimits


@dataclass(frozen=True)
class RunOptions:
    """How a run measures (threads, timed and warm-up runs), reads the data (label column, split) and what
    it may use (worker limits). Validated on construction; round-trips through ``to_dict``/``from_dict``."""

    threads: int = 1
    warmup_runs: int = 10
    timed_runs: int = 50
    task: str | None = None  # "classification" for every labelled output, or "digit=classification,ink=regression"
    seed: int = 0
    eval_fraction: float = 0.5
    label_column: str = "label"
    signature: str | None = None  # a SavedModel's signature to convert; None: serving_default
    accuracy_output: str | None = None  # the output whose metric is the run's accuracy; None: the first labelled
    limits: WorkerLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 64:
            raise InvalidOption(f"threads: expected 1..64; found {self.threads}")
        if self.timed_runs < 50:
            raise InvalidOption(f"timed_runs: expected at least 50 for stable percentiles; found {self.timed_runs}")
        if self.warmup_runs < 0:
            raise InvalidOption(f"warmup_runs: expected 0 or more; found {self.warmup_runs}")
        if not 0 < self.eval_fraction < 1:
            raise InvalidOption(f"eval_fraction: expected a value in (0, 1); found {self.eval_fraction}")
        if self.task is not None:
            object.__setattr__(self, "task", str(self.task))
            parse_tasks(self.task)  # refuses unknown tasks now, before any worker starts

    def tasks_for(self, outputs: list[str]) -> dict[str, Task]:
        """The task override of each output named here (one bare task applies to every output)."""
        parsed = parse_tasks(self.task)
        if None in parsed:
            return dict.fromkeys(outputs, parsed[None])
        unknown = sorted(str(name) for name in set(parsed) - set(outputs))
        if unknown:
            raise InvalidOption(f"task: the model has no output {unknown[0]!r}; its outputs are {outputs}")
        return {name: task for name, task in parsed.items() if name is not None}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "limits": asdict(self.limits)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        check_known_fields(cls, data, "run options")
        options = cls(**{k: v for k, v in data.items() if k != "limits"})
        return replace(options, limits=WorkerLimits(**data["limits"])) if data.get("limits") else options


def _task(value: str) -> Task:
    try:
        return Task(value.strip())
    except ValueError:
        raise InvalidOption(f"task: expected one of {', '.join(Task)}; found {value.strip()!r}") from None


def parse_tasks(text: str | None) -> dict[str | None, Task]:
    """``"regression"`` -> {None: regression} (every output); ``"digit=classification,ink=regression"`` -> by
    output name. Empty or None: no override."""
    if not text or not text.strip():
        return {}
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) == 1 and "=" not in parts[0]:
        return {None: _task(parts[0])}
    parsed: dict[str | None, Task] = {}
    for part in parts:
        name, sep, task = part.partition("=")
        if not sep or not name.strip():
            raise InvalidOption(f"task: expected output=task pairs separated by commas; found {part!r}")
        parsed[name.strip()] = _task(task)
    return parsed
