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
    task: Task | None = None
    seed: int = 0
    eval_fraction: float = 0.5
    label_column: str = "label"
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
        if self.task is not None and not isinstance(self.task, Task):
            object.__setattr__(self, "task", _task(self.task))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "task": str(self.task) if self.task else None, "limits": asdict(self.limits)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        check_known_fields(cls, data, "run options")
        options = cls(**{k: v for k, v in data.items() if k != "limits"})
        return replace(options, limits=WorkerLimits(**data["limits"])) if data.get("limits") else options


def _task(value: Any) -> Task:
    try:
        return Task(value)
    except ValueError:
        raise InvalidOption(f"task: expected one of {', '.join(Task)}; found {value!r}") from None
