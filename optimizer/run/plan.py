"""What a run will do, decided before any model is converted: a pure function of the request and of facts
about the model and data (no TensorFlow, no files), so it is unit-tested on its own.

The plan orders the variants (float32 first: every fidelity figure is measured against it), says which are
skipped or failed before anything runs and why, and which worker produces each of the others, with the
post-training conversions split in two balanced shares for the two conversion workers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from optimizer.errors import InvalidOption
from optimizer.variants import SourceFormat, VariantKind, VariantSpec, default_kinds


@dataclass(frozen=True)
class PlanFacts:
    """What the plan needs to know about the model and the data."""

    source: SourceFormat
    trainable: bool  # a Keras model (.keras or .h5): training variants can fine-tune it
    model_format: str
    has_calibration: bool
    has_calibration_labels: bool
    classification: bool  # labelled classification data for evaluation


@dataclass(frozen=True)
class Refusal:
    status: str  # "skipped" (not applicable) or "failed" (applicable, but the inputs do not allow it)
    reason: str


@dataclass(frozen=True)
class RunPlan:
    variants: tuple[VariantSpec, ...]
    refused: dict[str, Refusal] = field(default_factory=dict)
    cached: frozenset[str] = frozenset()  # taken from the variant store: not produced again

    @property
    def made(self) -> list[VariantSpec]:
        """Every variant that will have a file: produced now or taken from the store."""
        return [s for s in self.variants if s.name not in self.refused]

    @property
    def produced(self) -> list[VariantSpec]:
        return [s for s in self.made if s.name not in self.cached]

    def by_worker(self, task: str) -> list[VariantSpec]:
        """The produced variants of one worker task: convert, train or diagnose."""
        return [s for s in self.produced if s.info.worker_task == task]

    def conversion_shares(self) -> tuple[list[VariantSpec], list[VariantSpec]]:
        return split_conversions(self.by_worker("convert"))


def choose_variants(specs: list[VariantSpec] | None, source: SourceFormat) -> list[VariantSpec]:
    """The requested variants (default: every kind for the source), float32 first as the reference."""
    chosen = list(specs or [VariantSpec(kind) for kind in default_kinds(source)])
    if VariantKind.FLOAT32 not in {s.kind for s in chosen}:
        chosen.insert(0, VariantSpec(VariantKind.FLOAT32))
    names = [s.name for s in chosen]
    if len(set(names)) != len(names):
        raise InvalidOption(f"variant names must be unique; found {names}")
    return sorted(chosen, key=lambda s: s.kind is not VariantKind.FLOAT32)


def refusal(spec: VariantSpec, facts: PlanFacts) -> Refusal | None:
    """Why this variant cannot be produced from these inputs, or None."""
    info = spec.info
    if facts.source not in info.sources:
        return Refusal("skipped", f"cannot be made from a {facts.source.value} model")
    if info.needs_training and not facts.trainable:
        return Refusal("skipped", f"training needs a Keras model (.keras or .h5); found a {facts.model_format}")
    if info.needs_training and not facts.has_calibration_labels:
        return Refusal("failed", "training needs labelled training data: expected labels for the calibration "
                                 "split (y, or y_calib); found none")
    if info.needs_calibration and not facts.has_calibration:
        return Refusal("skipped", "needs calibration data; none was given")
    if spec.kind is VariantKind.MIXED_INT8 and not facts.classification:
        return Refusal("failed", "the selective search needs labelled classification data for evaluation; "
                                 "found none")
    return None


def plan_run(specs: list[VariantSpec] | None, facts: PlanFacts) -> RunPlan:
    chosen = choose_variants(specs, facts.source)
    refused = {s.name: r for s in chosen if (r := refusal(s, facts)) is not None}
    return RunPlan(tuple(chosen), refused)


def split_conversions(specs: list[VariantSpec]) -> tuple[list[VariantSpec], list[VariantSpec]]:
    """Two shares of about equal work for the two conversion workers. float32 goes first in the first share
    (every fidelity figure waits for its outputs); a conversion family stays whole, so its members share one
    float conversion and calibration; the rest is balanced largest first, counting a conversion as 1, a
    calibration as 1 more and each further family member as 0.3; kinds slow to evaluate go early."""
    units: list[list[VariantSpec]] = []
    families: dict[tuple[str, str], list[VariantSpec]] = {}
    for spec in specs:
        key = (spec.info.conversion_family, json.dumps(spec.options, sort_keys=True))
        if key[0] and key in families:
            families[key].append(spec)
        else:
            units.append(families.setdefault(key, [spec]) if key[0] else [spec])

    def cost(unit: list[VariantSpec]) -> float:
        return 1 + unit[0].info.needs_calibration + 0.3 * (len(unit) - 1)

    shares: list[list[VariantSpec]] = [[], []]
    loads = [0.0, 0.0]
    for unit in sorted(units, key=lambda u: (u[0].kind is not VariantKind.FLOAT32, -cost(u))):
        target = 0 if unit[0].kind is VariantKind.FLOAT32 else loads.index(min(loads))
        shares[target].extend(unit)
        loads[target] += cost(unit)
    order = {spec.name: index for index, spec in enumerate(specs)}
    for share in shares:
        share.sort(key=lambda s: (s.kind is not VariantKind.FLOAT32, not s.info.slow_to_run, order[s.name]))
    return shares[0], shares[1]


