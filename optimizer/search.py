"""Budget-driven search: Optuna proposes variants (a kind and its options), each batch of proposals is measured
as one ordinary run, and the search ends with the Pareto set and the variant to ship within the budget, or with
which limit could not be met and how close it came.

Objectives, all minimised: file size, p95 latency and the accuracy drop against float32 (in points). The limits
are Optuna constraints (a trial is feasible when every limit holds). Pruning: a proposal whose kind stores its
weights like a kind already measured over the size limit (a file's size does not depend on calibration,
sparsity or clusters) is pruned without being produced. A proposal equal to an earlier one is answered from it.
The study is kept in ``<out>/search.db`` (SQLite), so a stopped search resumes where it stopped; the variant
store (:mod:`optimizer.run.cache`) makes float32 and repeated points cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optimizer.errors import InvalidOption
from optimizer.report.format import format_bytes
from optimizer.report.recommend import Budget, Priority, Recommendation, recommend_variant
from optimizer.report.results import VariantResult
from optimizer.sweep import point_name
from optimizer.variants import KINDS, SourceFormat, VariantKind, VariantSpec, default_kinds

# The options a search varies, and the values it may try (the kinds' own validation still applies).
PARAMETERS: dict[str, tuple[Any, ...]] = {
    "calibration_samples": (50, 100, 200, 400),
    "sparsity": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "clusters": (4, 8, 16, 32, 64),
    "epochs": (1, 2, 3, 4),
}
# Kinds a search never proposes: the reference itself, the slow selective search, a control without a technique.
NOT_SEARCHED = {VariantKind.FLOAT32, VariantKind.MIXED_INT8, VariantKind.FINETUNE_CONTROL}
# How a kind stores its weights: the raw file size of one kind tells the size of every kind of its family.
WEIGHT_STORAGE: dict[str, str] = {
    **{kind: "float32" for kind in (VariantKind.FLOAT32, VariantKind.PRUNE, VariantKind.PRUNE_2X4,
                                    VariantKind.CLUSTER, VariantKind.SPARSE_CLUSTER)},
    VariantKind.FLOAT16: "float16"}  # every other kind stores int8 weights

RunBatch = Callable[[list[VariantSpec], Path], list[dict[str, Any]]]
TrialCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class SearchRequest:
    budget: Budget
    trials: int = 30
    batch: int = 4  # proposals measured per run (one TensorFlow start per batch)
    kinds: tuple[str, ...] = ()  # empty: every searchable kind the model allows
    training: bool = False  # also the fine-tuning kinds (minutes per trial)
    seed: int = 0
    priority: Priority = Priority.SIZE

    def __post_init__(self) -> None:
        if self.trials < 1 or self.batch < 1:
            raise InvalidOption(f"search: trials and batch must be >= 1; found {self.trials} and {self.batch}")

    def to_dict(self) -> dict[str, Any]:
        """As a job request stores it (JSON)."""
        return {"budget": asdict(self.budget), "trials": self.trials, "batch": self.batch, "kinds": list(self.kinds),
                "training": self.training, "seed": self.seed, "priority": str(self.priority)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchRequest:
        try:
            return cls(Budget(**data.get("budget") or {}), trials=int(data.get("trials", 30)),
                       batch=int(data.get("batch", 4)), kinds=tuple(data.get("kinds") or ()),
                       training=bool(data.get("training")), seed=int(data.get("seed", 0)),
                       priority=Priority(data.get("priority", "size")))
        except (TypeError, ValueError) as exc:
            raise InvalidOption(f"search request: expected budget, trials, batch, kinds, training, seed and "
                                f"priority; found {sorted(data)} ({exc})") from None


def searchable_kinds(source: SourceFormat, request: SearchRequest) -> list[str]:
    """The kinds the search chooses among, in table order; named kinds are checked against the source."""
    allowed = default_kinds(source, training=request.training)
    chosen = list(request.kinds) or allowed
    refused = [k for k in chosen if k not in allowed or k in NOT_SEARCHED]
    if refused:
        possible = ", ".join(k for k in allowed if k not in NOT_SEARCHED)
        raise InvalidOption(f"search --kinds: {', '.join(refused)} cannot be searched here; possible: {possible}")
    return [k for k in chosen if k not in NOT_SEARCHED]


def propose(trial: Any, kinds: Sequence[str]) -> VariantSpec:
    """One proposal: a kind, then each of its searched options (Optuna's define-by-run space)."""
    kind = trial.suggest_categorical("kind", list(kinds))
    options = {name: trial.suggest_categorical(f"{kind}.{name}", list(values))
               for name, values in PARAMETERS.items() if name in KINDS[kind].option_defaults}
    return VariantSpec(kind, options, name=point_name(kind, options))


@dataclass
class SearchResult:
    """Every trial (its proposal, state and figures), the Pareto set, and the recommendation within the budget."""

    trials: list[dict[str, Any]]
    pareto: list[str]
    recommendation: Recommendation
    shortfall: list[str] = field(default_factory=list)  # per limit: how close the search came, when unmet
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per distinct measured variant, float32 first
    pareto_within_budget: bool = False  # the Pareto set is of feasible trials (else of every measured one)


def _objectives(row: dict[str, Any]) -> tuple[float, float, float] | None:
    size, p95, delta = row.get("size_bytes"), row.get("latency_ms_p95"), row.get("accuracy_delta")
    if row.get("status") != "ok" or size is None or p95 is None:
        return None
    return float(size), float(p95), (-100.0 * float(delta) + 0.0) if delta is not None else 0.0  # no -0.0


def _violations(values: Sequence[float], budget: Budget) -> list[float]:
    """Optuna's constraints (<= 0 is met): how far each figure is over its limit, 0 when there is no limit."""
    limits = (budget.max_size_bytes, budget.max_latency_ms_p95,
              None if budget.max_accuracy_drop is None else 100.0 * budget.max_accuracy_drop)
    return [0.0 if limit is None else value - limit for value, limit in zip(values, limits, strict=True)]


class _Search:
    def __init__(self, request: SearchRequest, kinds: list[str], out: Path, run_batch: RunBatch,
                 on_trial: TrialCallback, cancel: threading.Event | None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.request, self.kinds, self.out, self.run_batch = request, kinds, out, run_batch
        self.on_trial, self.cancel = on_trial, cancel
        out.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(out / 'search.db').resolve()}"
        self.study = optuna.create_study(study_name="search", storage=storage, directions=["minimize"] * 3,
                                         load_if_exists=True)
        # Limits go in with Trial.set_constraint before each tell. A resumed search seeds its sampler past the
        # stored trials, so it does not propose the first run's opening points again.
        self.study.sampler = optuna.samplers.TPESampler(seed=request.seed + len(self.study.trials))
        self.rows: dict[str, dict[str, Any]] = {}  # by variant name, from every batch
        self.oversized: set[str] = set()  # weight storages measured over the size limit

    def done(self) -> int:
        import optuna

        finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=finished))

    def run(self) -> None:
        batch_number = len(list(self.out.glob("batch-*")))
        while (left := self.request.trials - self.done()) > 0:
            if self.cancel is not None and self.cancel.is_set():
                return
            proposals = [(trial, propose(trial, self.kinds)) for trial in
                         (self.study.ask() for _ in range(min(left, self.request.batch)))]
            to_run = {spec.name: spec for trial, spec in proposals
                      if spec.name not in self.rows and not self._pruned(spec)}
            if to_run:
                batch_number += 1
                for row in self.run_batch([VariantSpec(VariantKind.FLOAT32), *to_run.values()],
                                          self.out / f"batch-{batch_number:03d}"):
                    self.rows.setdefault(row["variant"], row)
            for trial, spec in proposals:
                self._tell(trial, spec)

    def _pruned(self, spec: VariantSpec) -> bool:
        return WEIGHT_STORAGE.get(spec.kind, "int8") in self.oversized

    def _tell(self, trial: Any, spec: VariantSpec) -> None:
        import optuna

        event: dict[str, Any] = {"trial": trial.number, "variant": spec.name, "kind": str(spec.kind),
                                 "options": dict(trial.params)}
        row = self.rows.get(spec.name)
        values = _objectives(row) if row is not None else None
        if row is None and self._pruned(spec):
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            event.update(state="pruned", reason="its weights are stored like a kind already over the size limit")
        elif values is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            event.update(state="failed", reason=(row or {}).get("error") or "not measured")
        else:
            violations = _violations(values, self.request.budget)
            trial.set_user_attr("variant", spec.name)
            trial.set_user_attr("violations", violations)
            for limit, violation in zip(("size", "latency_p95", "accuracy_drop"), violations, strict=True):
                trial.set_constraint(limit, violation)
            self.study.tell(trial, list(values))
            if violations[0] > 0:
                self.oversized.add(WEIGHT_STORAGE.get(spec.kind, "int8"))
            event.update(state="complete", size_bytes=values[0], latency_ms_p95=values[1],
                         accuracy_drop_points=values[2], feasible=all(v <= 0 for v in violations))
        self.on_trial(event)


def describe_trial(event: dict[str, Any]) -> str:
    """One finished trial in words, as the CLI prints it and the app's progress shows it."""
    if event.get("state") == "complete":
        figures = (f"{format_bytes(float(event['size_bytes']))}, p95 {float(event['latency_ms_p95']):.3f} ms, "
                   f"drop {float(event['accuracy_drop_points']):.2f} points, "
                   + ("within budget" if event.get("feasible") else "over budget"))
    else:
        figures = f"{event.get('state')}: {event.get('reason')}"
    return f"trial {event['trial']} {event['variant']}: {figures}"


def run_search(request: SearchRequest, source: SourceFormat, out: Path, run_batch: RunBatch,
               on_trial: TrialCallback = lambda event: None, cancel: threading.Event | None = None) -> SearchResult:
    """Search until ``request.trials`` trials are stored in ``out/search.db`` (earlier ones count: resuming),
    measuring proposals with ``run_batch(specs, folder)`` (a run of float32 plus the proposals)."""
    search = _Search(request, searchable_kinds(source, request), out, run_batch, on_trial, cancel)
    search.run()
    return summarise(search, request)


def summarise(search: _Search, request: SearchRequest) -> SearchResult:
    import optuna

    trials = [{"trial": t.number, "state": t.state.name.lower(), "variant": t.user_attrs.get("variant"),
               **{k.split(".")[-1]: v for k, v in t.params.items()},
               **({} if t.values is None else {"size_bytes": t.values[0], "latency_ms_p95": t.values[1],
                                               "accuracy_drop_points": t.values[2]}),
               "feasible": t.values is not None and all(v <= 0 for v in t.user_attrs.get("violations", [1]))}
              for t in search.study.get_trials(deepcopy=False)]
    complete = search.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    feasible = [t for t in complete if all(v <= 0 for v in t.user_attrs["violations"])]
    pareto = pareto_front([(t.user_attrs["variant"], tuple(t.values)) for t in feasible or complete])
    rows = sorted(search.rows.values(), key=lambda r: r.get("kind") != VariantKind.FLOAT32)
    variants = [VariantResult.from_row(r) for r in rows]
    recommendation = recommend_variant(variants, request.budget, request.priority)
    shortfall = [] if recommendation.variant is not None else shortfalls(variants, request.budget)
    return SearchResult(trials, pareto, recommendation, shortfall, rows, bool(feasible))


def pareto_front(points: Sequence[tuple[str, tuple[float, ...]]]) -> list[str]:
    """The names of the points no other point beats on every objective (all minimised), each once."""
    front = [name for name, values in points
             if not any(all(o <= v for o, v in zip(other, values, strict=True)) and other != values
                        for _, other in points)]
    return list(dict.fromkeys(front))


def shortfalls(variants: Sequence[VariantResult], budget: Budget) -> list[str]:
    """For each limit no measured variant met with the others: the best figure reached and by which variant."""
    from optimizer.report.format import format_bytes, format_latency, format_points

    measured = [v for v in variants if v.size_bytes is not None and v.kind != VariantKind.FLOAT32]

    def drop(variant: VariantResult) -> float | None:
        return None if variant.accuracy_delta is None else -variant.accuracy_delta

    def points(value: float) -> str:
        return format_points(-value)

    checks: list[tuple[float | None, Callable[[VariantResult], float | None], Callable[[float], str]]] = [
        (budget.max_size_bytes, lambda v: v.size_bytes, format_bytes),
        (budget.max_latency_ms_p95, lambda v: v.latency_ms_p95, format_latency),
        (budget.max_accuracy_drop, drop, points)]
    said = []
    for limit, figure, shown in checks:
        values = [(value, v.name) for v in measured if (value := figure(v)) is not None]
        if limit is None or not values:
            continue
        best, name = min(values)
        said.append(f"{'met' if best <= limit else 'not met'}: best {shown(best)} ({name}) against the limit "
                    f"{shown(limit)}")
    return said
