"""Which variant to ship, by the run's own evidence: differences its statistics call "same" or "within noise"
never decide, and neither do sizes within 2% of each other.

A variant is a candidate when it was produced and measured, meets the :class:`Budget`, carries no flag (a
collapsed training, a false integer-only claim) and is not significantly less accurate than float32.
Candidates are then narrowed criterion by criterion in the user's :class:`Priority` (size first by default,
then latency, then accuracy): at each step a candidate stays unless another one is *really* better on that
criterion (a smaller file by 2% or more; a latency the statistics call faster; an accuracy the statistics
call significantly higher). The result is a :class:`Recommendation`: the variant, one sentence of reasoning,
and the figures of the headline cards.

UI-free and light: no plotting, no scipy (what the Compare page and the HTML report import).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import pandas as pd

from optimizer.errors import InvalidOption
from optimizer.report.format import (
    format_bytes,
    format_latency,
    format_number,
    format_p,
    format_percent,
    format_points,
    format_ratio,
)
from optimizer.report.results import VariantResult, reference_of

# The verdicts optimizer.run.finalize writes (from optimizer.measure.stats).
WITHIN_NOISE, SIGNIFICANT = "within noise", "significant"  # accuracy_verdict
FASTER, SLOWER, SAME = "faster", "slower", "same"  # latency_verdict
# The measurement could not resolve the difference (below the target's resolution): like "same", never decides.
UNRESOLVED = "unresolved"
# Sizes are exact, but a file less than 2% smaller is not worth choosing for.
SAME_SIZE = 0.02
# Two latencies differ only when their median intervals do not overlap and the medians are this far apart:
# the rule of optimizer.measure.stats.compare_latency (PRACTICAL_LATENCY_CHANGE there; not imported, since
# that module loads scipy).
PRACTICAL_LATENCY_CHANGE = 0.05
# Without a statistical test (regression, fidelity, a run without statistics), quality differences smaller
# than these do not decide, and larger losses against float32 exclude a variant.
UNTESTED_POINTS = 0.01  # accuracy or top-1 agreement: one percentage point
UNTESTED_ERROR_RISE = 0.05  # MAE: 5% of float32's
UNTESTED_SNR_DB = 1.0


class Priority(StrEnum):
    """What matters most when choosing a variant."""

    SIZE = "size"
    LATENCY = "latency"
    ACCURACY = "accuracy"

    @property
    def order(self) -> tuple[Priority, ...]:
        """The criteria in the order they decide: this one first, then the others."""
        rest = {Priority.SIZE: (Priority.LATENCY, Priority.ACCURACY),
                Priority.LATENCY: (Priority.SIZE, Priority.ACCURACY),
                Priority.ACCURACY: (Priority.SIZE, Priority.LATENCY)}
        return (self, *rest[self])


@dataclass(frozen=True)
class Budget:
    """Limits a variant must meet to be shippable; None means no limit."""

    max_size_bytes: float | None = None
    max_latency_ms_p95: float | None = None
    max_accuracy_drop: float | None = None  # in accuracy units (0.01 = one point)

    @classmethod
    def of(cls, max_size_kb: float | None, max_p95_ms: float | None, max_accuracy_drop_points: float | None) -> Budget:
        """From the limits as people give them (KB = 1024 bytes; the drop in accuracy points)."""
        return cls(max_size_bytes=None if max_size_kb is None else max_size_kb * 1024, max_latency_ms_p95=max_p95_ms,
                   max_accuracy_drop=None if max_accuracy_drop_points is None else max_accuracy_drop_points / 100)

    @property
    def limited(self) -> bool:
        """At least one limit is set."""
        return any(v is not None for v in (self.max_size_bytes, self.max_latency_ms_p95, self.max_accuracy_drop))

    def misses(self, variant: VariantResult, judge_accuracy: bool = True) -> tuple[str, ...]:
        """Why ``variant`` fails the budget, one phrase per limit it misses (empty when it passes). The
        accuracy limit applies only when ``judge_accuracy`` (the run has accuracy changes at all)."""
        missed: list[str] = []
        size, p95, delta = variant.size_bytes, variant.latency_ms_p95, variant.accuracy_delta
        if self.max_size_bytes is not None and (size is None or size > self.max_size_bytes):
            missed.append("no file size" if size is None else
                          f"{format_bytes(size)}, over the {format_bytes(self.max_size_bytes)} size limit")
        if self.max_latency_ms_p95 is not None and (p95 is None or p95 > self.max_latency_ms_p95):
            missed.append("no p95 latency" if p95 is None else
                          f"p95 {format_latency(p95)}, over the {format_latency(self.max_latency_ms_p95)} limit")
        if self.max_accuracy_drop is not None and judge_accuracy and (
                delta is None or delta < -self.max_accuracy_drop):
            missed.append("no accuracy change against float32" if delta is None else
                          f"accuracy {format_points(delta)}, beyond the "
                          f"{format_points(self.max_accuracy_drop).lstrip('+')} drop allowed")
        return tuple(missed)

    def passes(self, frame: pd.DataFrame) -> pd.Series:
        """One bool per row of a results frame: the row meets every limit."""
        judge = "accuracy_delta" in frame.columns and bool(frame["accuracy_delta"].notna().any())
        return pd.Series([not self.misses(v, judge) for v in variants_of(frame)], index=frame.index, dtype=bool)


def variants_of(frame: pd.DataFrame) -> list[VariantResult]:
    """The typed rows of a results frame (NaN cells read as missing)."""
    return [VariantResult.from_row({str(k): (None if isinstance(v, float) and math.isnan(v) else v)
                                    for k, v in record.items()})
            for record in frame.to_dict("records")]


# --- How two variants compare, by the run's evidence ----------------------------------------------------------

Tone = Literal["good", "bad", "neutral"]


@dataclass(frozen=True)
class Quality:
    """A variant's quality against float32: the figure it is judged on, and the direction of its difference
    (+1 better, -1 worse, 0 no real difference, None unknown) with whether a statistical test said so."""

    figure: str  # "accuracy", "mae", "fidelity_top1_agreement", "fidelity_snr_db", or "" (none)
    value: float | None
    direction: int | None
    tested: bool


def _untested_direction(difference: float | None, tolerance: float) -> int | None:
    """+1/-1 when ``difference`` (positive = better) is beyond ``tolerance``, 0 within it, None when unknown."""
    if difference is None:
        return None
    return 0 if abs(difference) <= tolerance else (1 if difference > 0 else -1)


def _accuracy_quality(variant: VariantResult, reference: VariantResult | None) -> Quality:
    delta = variant.accuracy_delta
    if delta is None and reference is not None and reference.accuracy is not None and variant.accuracy is not None:
        delta = variant.accuracy - reference.accuracy
    if variant is reference:
        return Quality("accuracy", variant.accuracy, 0, True)
    if variant.accuracy_verdict == WITHIN_NOISE:
        return Quality("accuracy", variant.accuracy, 0, True)
    if variant.accuracy_verdict == SIGNIFICANT:
        low = variant.accuracy_delta_ci_low
        better = delta > 0 if delta is not None else low is not None and low > 0
        return Quality("accuracy", variant.accuracy, 1 if better else -1, True)
    return Quality("accuracy", variant.accuracy, _untested_direction(delta, UNTESTED_POINTS), False)


def quality_of(variant: VariantResult, reference: VariantResult | None) -> Quality:
    """How ``variant``'s quality compares with float32's: by its accuracy verdict when the run tested it,
    otherwise by its figure against float32's beyond a practical tolerance; without labels, by fidelity
    (whose direction against float32 is unknown: it only ranks variants among themselves)."""
    if variant.accuracy is not None:
        return _accuracy_quality(variant, reference)
    if variant.mae is not None:
        base = reference.mae if reference is not None else None
        rise = variant.mae / base - 1 if base else None
        direction = 0 if variant is reference else _untested_direction(None if rise is None else -rise,
                                                                         UNTESTED_ERROR_RISE)
        return Quality("mae", variant.mae, direction, False)
    if variant.fidelity_top1_agreement is not None:
        return Quality("fidelity_top1_agreement", variant.fidelity_top1_agreement, None, False)
    if variant.fidelity_snr_db is not None:
        return Quality("fidelity_snr_db", variant.fidelity_snr_db, None, False)
    return Quality("", None, None, False)


def _quality_gap(a: Quality, b: Quality) -> float | None:
    """How much better ``a``'s figure is than ``b``'s beyond the untested tolerance (positive), or None."""
    if a.figure != b.figure or a.value is None or b.value is None:
        return None
    if a.figure == "mae":
        return (b.value - a.value) / b.value - UNTESTED_ERROR_RISE if b.value else None
    gap = a.value - b.value
    if math.isnan(gap):  # inf - inf: two lossless SNRs
        return None
    return gap - (UNTESTED_SNR_DB if a.figure == "fidelity_snr_db" else UNTESTED_POINTS)


class Evidence:
    """The pairwise comparisons of one run's variants: is one really smaller, faster, more accurate?"""

    def __init__(self, variants: Sequence[VariantResult]) -> None:
        self.reference = reference_of(variants)
        self._quality = {v.name: quality_of(v, self.reference) for v in variants}

    def quality(self, variant: VariantResult) -> Quality:
        return self._quality.get(variant.name) or quality_of(variant, self.reference)

    @staticmethod
    def smaller(a: VariantResult, b: VariantResult) -> bool:
        """``a``'s file is at least 2% smaller than ``b``'s."""
        return a.size_bytes is not None and b.size_bytes is not None and b.size_bytes >= a.size_bytes * (
            1 + SAME_SIZE) and b.size_bytes > a.size_bytes

    def faster(self, a: VariantResult, b: VariantResult) -> bool:
        """``a`` is really faster than ``b``: float32's verdict when one of them is float32, otherwise their
        median intervals (apart, medians 5% or more apart), otherwise their verdicts against float32. When the
        run could not resolve either one's latency against float32 ("unresolved"), latency does not decide."""
        if UNRESOLVED in (a.latency_verdict, b.latency_verdict):
            return False
        if b is self.reference and a.latency_verdict is not None:
            return a.latency_verdict == FASTER
        if a is self.reference and b.latency_verdict is not None:
            return b.latency_verdict == SLOWER
        high, low, median_a, median_b = (a.latency_ms_p50_ci_high, b.latency_ms_p50_ci_low, a.latency_ms_p50,
                                         b.latency_ms_p50)
        if high is not None and low is not None and median_a is not None and median_b is not None:
            return high < low and median_a <= median_b * (1 - PRACTICAL_LATENCY_CHANGE)
        ranks = {FASTER: -1, SAME: 0, SLOWER: 1}
        rank_a = 0 if a is self.reference else ranks.get(a.latency_verdict or "")
        rank_b = 0 if b is self.reference else ranks.get(b.latency_verdict or "")
        return rank_a is not None and rank_b is not None and rank_a < rank_b

    def more_accurate(self, a: VariantResult, b: VariantResult) -> bool:
        """``a`` is really more accurate than ``b``: by their directions against float32 when both are known
        (two significant gains: by non-overlapping intervals of the change), else by their figures beyond the
        untested tolerance."""
        qa, qb = self.quality(a), self.quality(b)
        if qa.direction is not None and qb.direction is not None:
            if qa.direction != qb.direction:
                return qa.direction > qb.direction
            low, high = a.accuracy_delta_ci_low, b.accuracy_delta_ci_high
            return qa.direction == 1 and qa.tested and qb.tested and low is not None and high is not None \
                and low > high
        gap = _quality_gap(qa, qb)
        return gap is not None and gap > 0

    def beats(self, criterion: Priority) -> Callable[[VariantResult, VariantResult], bool]:
        return {Priority.SIZE: self.smaller, Priority.LATENCY: self.faster,
                Priority.ACCURACY: self.more_accurate}[criterion]

    def exclusion(self, variant: VariantResult) -> str | None:
        """Why ``variant`` may not be recommended whatever the budget (None when it may)."""
        if not variant.ok:
            return f"{variant.status or 'not produced'}: {variant.failed_reason}"
        if not variant.measured:
            return "not benchmarked"
        if variant.error:
            return f"flagged: {variant.error}"
        quality = self.quality(variant)
        if quality.direction == -1:
            return f"{'significantly ' if quality.tested else ''}less accurate than float32 " \
                   f"({_quality_change(variant, quality, self.reference)})"
        return None


def _quality_change(variant: VariantResult, quality: Quality, reference: VariantResult | None) -> str:
    """The change of ``variant``'s quality figure against float32, in words: "-2.1 pts, p=0.003",
    "MAE +12%, not tested"."""
    if quality.figure == "accuracy":
        delta = variant.accuracy_delta
        if delta is None and reference is not None and reference.accuracy is not None and quality.value is not None:
            delta = quality.value - reference.accuracy
        test = format_p(variant.mcnemar_p) if quality.tested else "not tested"
        return ", ".join(part for part in (format_points(delta), test) if part)
    if quality.figure == "mae" and reference is not None and reference.mae and quality.value is not None:
        return f"MAE {quality.value / reference.mae - 1:+.0%}, not tested"
    return "not tested"


# --- The recommendation ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    """One headline figure of the recommended variant: "Size 92 KB, 3.7× smaller than float32" (good)."""

    label: str
    value: str
    delta: str
    tone: Tone


@dataclass(frozen=True)
class Recommendation:
    """The variant to ship (None when none qualifies), one sentence of reasoning, every variant left out and
    why, and the headline cards (size, latency, accuracy)."""

    variant: VariantResult | None
    reason: str
    priority: Priority
    reference: VariantResult | None = None
    excluded: tuple[tuple[str, str], ...] = ()  # (variant, why it was not considered)
    cards: tuple[Card, ...] = ()

    @property
    def name(self) -> str | None:
        return self.variant.name if self.variant is not None else None


@dataclass(frozen=True)
class _Decision:
    """What set the chosen variant apart from its closest rival: the criterion (None: the only candidate, or
    a tie on every criterion) and the rival; ``step`` is the criterion's place in the priority order."""

    criterion: Priority | None = None
    rival: VariantResult | None = None
    step: int = 0


def _goodness(variant: VariantResult, evidence: Evidence) -> float:
    """The quality figure with higher = better (MAE negated), -inf when missing."""
    quality = evidence.quality(variant)
    if quality.value is None:
        return -math.inf
    return -quality.value if quality.figure == "mae" else quality.value


def _raw_key(priority: Priority, evidence: Evidence) -> Callable[[VariantResult], tuple[float | str, ...]]:
    """Order by the raw figures in the priority's order (ties that the evidence could not break)."""
    def figure(variant: VariantResult, criterion: Priority) -> float:
        value = {Priority.SIZE: variant.size_bytes, Priority.LATENCY: variant.latency_ms_p50,
                 Priority.ACCURACY: -_goodness(variant, evidence)}[criterion]
        return math.inf if value is None else float(value)

    return lambda variant: (*(figure(variant, c) for c in priority.order), variant.name)


def _narrow(candidates: Sequence[VariantResult], priority: Priority,
            evidence: Evidence) -> tuple[VariantResult, _Decision]:
    """Keep, criterion by criterion, the candidates no other candidate really beats; the last criterion that
    left someone out names the closest of those left out as the rival."""
    key = _raw_key(priority, evidence)
    group, decision = list(candidates), _Decision()
    for step, criterion in enumerate(priority.order):
        beats = evidence.beats(criterion)
        kept = [v for v in group if not any(beats(other, v) for other in group if other is not v)] or group
        dropped = [v for v in group if all(v is not k for k in kept)]
        if dropped:
            decision = _Decision(criterion, min(dropped, key=key), step)
        group = kept
    ranked = sorted(group, key=key)
    if len(ranked) > 1:
        decision = _Decision(None, ranked[1], len(priority.order))
    return ranked[0], decision


def recommend_variant(variants: Sequence[VariantResult], budget: Budget | None = None,
                      priority: Priority | str = Priority.SIZE) -> Recommendation:
    """The variant to ship among ``variants`` (one run's), by the evidence, within ``budget``, choosing by
    ``priority`` first (see the module docstring)."""
    try:
        priority = Priority(priority)
    except ValueError:
        raise InvalidOption(f"priority: expected one of {[p.value for p in Priority]}; found {priority!r}") from None
    budget = budget or Budget()
    evidence = Evidence(variants)
    judge_accuracy = any(v.accuracy_delta is not None for v in variants)
    excluded: list[tuple[str, str]] = []
    over_budget = False
    candidates = []
    for variant in variants:
        why = evidence.exclusion(variant)
        missed = budget.misses(variant, judge_accuracy) if why is None else ()
        over_budget |= bool(missed)
        if why or missed:
            excluded.append((variant.name, why or "; ".join(missed)))
        else:
            candidates.append(variant)
    if not candidates:
        return Recommendation(None, _nothing_sentence(variants, dict(excluded), over_budget), priority,
                              evidence.reference, tuple(excluded))
    chosen, decision = _narrow(candidates, priority, evidence)
    reason = _sentence(chosen, decision, evidence, priority, bool(excluded))
    return Recommendation(chosen, reason, priority, evidence.reference, tuple(excluded), _cards(chosen, evidence))


def recommend(frame: pd.DataFrame, budget: Budget, priority: Priority | str = Priority.SIZE) -> str | None:
    """The name of the recommended variant of a results frame (what the trade-off charts ring), or None."""
    return recommend_variant(variants_of(frame), budget, priority).name


# --- The reasoning, in words ----------------------------------------------------------------------------------

def _size_fact(variant: VariantResult, reference: VariantResult | None) -> str:
    if reference is None or not reference.size_bytes or not variant.size_bytes:
        return format_bytes(variant.size_bytes) or "size unknown"
    if not Evidence.smaller(variant, reference) and not Evidence.smaller(reference, variant):
        return "the same size as float32 (within 2%)"
    factor = reference.size_bytes / variant.size_bytes
    return f"{format_ratio(factor)} smaller than float32" if factor > 1 else \
        f"{format_ratio(1 / factor)} larger than float32"


def _accuracy_fact(variant: VariantResult, evidence: Evidence) -> str:
    quality, reference = evidence.quality(variant), evidence.reference
    if quality.figure == "accuracy":
        if reference is None:
            return f"accuracy {format_percent(quality.value)} (no float32 reference to test against)"
        change = _quality_change(variant, quality, reference)
        if quality.tested and quality.direction == 0:
            delta = variant.accuracy_delta
            shown = format_p(variant.mcnemar_p) if delta is None or abs(delta) < 5e-4 else change
            return f"accuracy within noise ({shown})" if shown else "accuracy within noise"
        if quality.tested and quality.direction == 1:
            return f"significantly more accurate ({change})"
        return f"accuracy {change}"
    if quality.figure == "mae":
        base = f" against {format_number(reference.mae)} for float32" if reference and reference.mae else ""
        return f"MAE {format_number(quality.value)}{base} (not tested)"
    if quality.figure == "fidelity_top1_agreement":
        return f"no labels, so accuracy unknown (top-1 agreement with float32 {format_percent(quality.value)})"
    if quality.figure == "fidelity_snr_db":
        return f"no labels, so accuracy unknown (SNR against float32 {format_number(quality.value)} dB)"
    return "no labels, so accuracy unknown"


def _latency_fact(variant: VariantResult, reference: VariantResult | None) -> str:
    verdict, median = variant.latency_verdict, variant.latency_ms_p50
    base = reference.latency_ms_p50 if reference is not None else None
    if verdict == SAME:
        return "latency the same"
    if verdict == UNRESOLVED:
        return "latency difference too small to resolve on this machine now"
    if verdict in (FASTER, SLOWER) and base and median:
        factor = base / median if verdict == FASTER else median / base
        return f"{format_ratio(factor)} {verdict}"
    untested = " (not compared with float32)" if reference is not None else ""
    return f"latency {format_latency(median)} p50{untested}"


def _facts(variant: VariantResult, evidence: Evidence) -> list[str]:
    reference = evidence.reference
    if variant is reference:
        quality = evidence.quality(variant)
        figure = format_percent(quality.value) if quality.figure in ("accuracy", "fidelity_top1_agreement") \
            else format_number(quality.value)
        shown = [format_bytes(variant.size_bytes), figure and f"{_QUALITY_WORDS.get(quality.figure, '')} {figure}",
                 f"{format_latency(variant.latency_ms_p50)} p50"]
        return [f"the float32 reference ({', '.join(s for s in shown if s)})"]
    return [_size_fact(variant, reference), _accuracy_fact(variant, evidence), _latency_fact(variant, reference)]


_QUALITY_WORDS = {"accuracy": "accuracy", "mae": "MAE", "fidelity_top1_agreement": "top-1 agreement",
                  "fidelity_snr_db": "SNR (dB)"}
_AS_GOOD = {Priority.SIZE: "as small (within 2%)", Priority.LATENCY: "as fast", Priority.ACCURACY: "as accurate"}
_TIE_BREAK = {Priority.SIZE: "the smaller file", Priority.LATENCY: "the lower median latency",
              Priority.ACCURACY: "the better figure"}


def _against(chosen: VariantResult, rival: VariantResult, criterion: Priority, evidence: Evidence) -> str:
    """The two figures that decided: "(91 KB against 92 KB)"."""
    if criterion is Priority.SIZE:
        return f"({format_bytes(chosen.size_bytes)} against {format_bytes(rival.size_bytes)})" \
            if format_bytes(chosen.size_bytes) != format_bytes(rival.size_bytes) else \
            f"({(rival.size_bytes or 0) / (chosen.size_bytes or 1) - 1:.0%} smaller)"
    if criterion is Priority.LATENCY:
        return f"({format_latency(chosen.latency_ms_p50)} against {format_latency(rival.latency_ms_p50)} p50)"
    mine, theirs = evidence.quality(chosen), evidence.quality(rival)
    shown = format_number if mine.figure in ("mae", "fidelity_snr_db") else format_percent
    return f"({shown(mine.value)} against {shown(theirs.value)})"


def _decision_clause(chosen: VariantResult, decision: _Decision, evidence: Evidence, priority: Priority,
                     others_excluded: bool) -> str:
    rival = decision.rival
    if rival is None:
        return "the only variant that qualifies" if others_excluded else ""
    if decision.criterion is None:
        return f"no real difference from {rival.name} in size, latency or accuracy, so {_TIE_BREAK[priority]}"
    against = _against(chosen, rival, decision.criterion, evidence)
    if decision.step == 0:
        if rival is evidence.reference:
            return ""  # the facts against float32 already say it
        verb = {Priority.SIZE: "smaller than", Priority.LATENCY: "really faster than",
                Priority.ACCURACY: "more accurate than"}[decision.criterion]
        return f"{verb} {rival.name} {against}"
    equal = " and ".join(_AS_GOOD[c] for c in priority.order[:decision.step])
    return f"{rival.name} is {equal}, so {decision.criterion.value} decided {against}"


def _sentence(chosen: VariantResult, decision: _Decision, evidence: Evidence, priority: Priority,
              others_excluded: bool) -> str:
    """One sentence: the chosen variant's facts against float32, then what set it apart."""
    clause = _decision_clause(chosen, decision, evidence, priority, others_excluded)
    return f"{chosen.name}: {', '.join(_facts(chosen, evidence))}{'; ' + clause if clause else ''}."


def _nothing_sentence(variants: Sequence[VariantResult], excluded: dict[str, str], over_budget: bool,
                      shown: int = 4) -> str:
    """Why nothing qualifies, naming the measured variants and what each misses (failed ones are listed
    elsewhere)."""
    measured = [v for v in variants if v.measured]
    if not measured:
        return "No variant was produced and measured, so there is nothing to recommend."
    reasons = [f"{v.name} ({excluded[v.name]})" for v in measured if v.name in excluded]
    more = f"; and {len(reasons) - shown} more" if len(reasons) > shown else ""
    start = "No variant meets the budget" if over_budget else "No variant can be recommended"
    return f"{start}: {'; '.join(reasons[:shown])}{more}."


# --- The headline cards ---------------------------------------------------------------------------------------

def _size_card(variant: VariantResult, reference: VariantResult | None) -> Card:
    value = format_bytes(variant.size_bytes)
    if variant is reference:
        return Card("Size", value, "the float32 reference", "neutral")
    if reference is None or not reference.size_bytes or not variant.size_bytes:
        return Card("Size", value, "", "neutral")
    fact = _size_fact(variant, reference)
    tone: Tone = "neutral" if fact.startswith("the same") else "good" if "smaller" in fact else "bad"
    return Card("Size", value, "same as float32 (within 2%)" if tone == "neutral" else fact, tone)


def _latency_card(variant: VariantResult, reference: VariantResult | None) -> Card:
    value = format_latency(variant.latency_ms_p50)
    if variant is reference:
        return Card("Latency p50", value, "the float32 reference", "neutral")
    verdict = variant.latency_verdict
    if verdict == SAME:
        return Card("Latency p50", value, "same as float32", "neutral")
    if verdict == UNRESOLVED:
        return Card("Latency p50", value, "difference from float32 below what this machine can resolve now",
                    "neutral")
    if verdict in (FASTER, SLOWER):
        return Card("Latency p50", value, f"{_latency_fact(variant, reference)} than float32",
                    "good" if verdict == FASTER else "bad")
    return Card("Latency p50", value, "not compared with float32" if reference is not None else "", "neutral")


_QUALITY_LABELS = {"accuracy": "Accuracy", "mae": "MAE", "fidelity_top1_agreement": "Top-1 agreement",
                   "fidelity_snr_db": "SNR against float32"}


def _quality_card(variant: VariantResult, evidence: Evidence) -> Card:
    quality, reference = evidence.quality(variant), evidence.reference
    label = _QUALITY_LABELS.get(quality.figure, "Accuracy")
    value = format_percent(quality.value) if quality.figure in ("accuracy", "fidelity_top1_agreement") \
        else format_number(quality.value) + (" dB" if quality.figure == "fidelity_snr_db" else "")
    if variant is reference:
        return Card(label, value, "the float32 reference", "neutral")
    if quality.figure.startswith("fidelity") or not quality.figure:
        return Card(label, value or "unknown", "no labels: accuracy unknown", "neutral")
    if reference is None:
        return Card(label, value, "no float32 reference", "neutral")
    change = _quality_change(variant, quality, reference)
    if quality.tested:
        verdict = WITHIN_NOISE if quality.direction == 0 else SIGNIFICANT
        delta, _, test = change.partition(", ")
        change = f"{delta}, {verdict}" + (f" ({test})" if test else "")
    tone: Tone = "good" if quality.direction == 1 else "bad" if quality.direction == -1 else "neutral"
    return Card(label, value, change, tone)


def _cards(variant: VariantResult, evidence: Evidence) -> tuple[Card, ...]:
    return (_size_card(variant, evidence.reference), _latency_card(variant, evidence.reference),
            _quality_card(variant, evidence))
