"""The options of one run, shared by the library call, the command line and the job request."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from optimizer.errors import InvalidOption
from optimizer.measure.evaluate import Task
from optimizer.records import check_known_fields
from optimizer.run.isolation import DEFAULT_LIMITS, WorkerLimits

if TYPE_CHECKING:
    from optimizer.targets.base import TargetSpec


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
    targets: list[str] = field(default_factory=list)  # ssh://USER@HOST[:PORT] beyond local (always measured)
    ssh_key: str | None = None  # the path of a private key for the ssh targets (never its contents)
    target_python: str = "python3"  # the Python that runs the agent on ssh targets
    latency_precision: float = 0.05  # rounds go on until every median's 95% interval is within +-5%...
    latency_time_cap_s: float = 20.0  # ...or this long per target has passed (past the minimum)
    cache_dir: str | None = None  # the variant store (optimizer.run.cache); None: every variant is produced anew
    remeasure: bool = False  # with a store: time every variant again instead of reusing its stored latency
    measure_latency: bool = True  # False: produce and evaluate only (a Ray task; latency is measured elsewhere)

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 64:
            raise InvalidOption(f"threads: expected 1..64; found {self.threads}")
        if self.timed_runs < 50:
            raise InvalidOption(f"timed_runs: expected at least 50 for stable percentiles; found {self.timed_runs}")
        if self.warmup_runs < 0:
            raise InvalidOption(f"warmup_runs: expected 0 or more; found {self.warmup_runs}")
        if not 0 < self.eval_fraction < 1:
            raise InvalidOption(f"eval_fraction: expected a value in (0, 1); found {self.eval_fraction}")
        if not 0 < self.latency_precision < 1:
            raise InvalidOption(f"latency_precision: expected a fraction in (0, 1); found {self.latency_precision}")
        if self.latency_time_cap_s < 0:
            raise InvalidOption(f"latency_time_cap_s: expected 0 or more seconds; found {self.latency_time_cap_s}")
        self._check_targets()
        if self.task is not None:
            object.__setattr__(self, "task", str(self.task))
            parse_tasks(self.task)  # refuses unknown tasks now, before any worker starts

    def _check_targets(self) -> None:
        from optimizer.targets.base import parse_target

        object.__setattr__(self, "targets", [str(t) for t in self.targets])
        for uri in self.targets:
            if parse_target(uri, self.ssh_key, self.target_python).is_local:
                raise InvalidOption("targets: local is always measured; list only ssh:// targets")

    def target_specs(self) -> list[TargetSpec]:
        """local first, then every ssh target (normalised, e.g. port 22 added), each once."""
        from optimizer.targets.base import LOCAL, parse_target

        specs = [parse_target(LOCAL)]
        for uri in self.targets:
            spec = parse_target(uri, self.ssh_key, self.target_python)
            if spec not in specs:
                specs.append(spec)
        return specs

    def tasks_for(self, outputs: list[str]) -> dict[str, Task]:
        """The task override of each output named here (one bare task applies to every output)."""
        parsed = parse_tasks(self.task)
        if None in parsed:
            return dict.fromkeys(outputs, parsed[None])
        unknown = sorted(str(name) for name in set(parsed) - set(outputs))
        if unknown:
            raise InvalidOption(f"task: the model has no output {unknown[0]!r}; its outputs are {outputs}")
        return {name: task for name, task in parsed.items() if name is not None}

    def __hash__(self) -> int:  # the targets list is the one unhashable field
        return hash(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in vars(self).items()))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "limits": asdict(self.limits), "targets": list(self.targets)}

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
