"""The results table for people: named columns with their units, the quality figure next to the variant, a
status that says why a variant failed, and numbers scaled to a unit chosen by their magnitude (KB or MB, µs or
ms). Missing values stay missing (None), so a table shows an empty cell, never "None" or "nan".

A few columns are shown by default; the rest (and, for a model with several outputs, each output's column
group ``"<output>: <figure>"``) are extras a user can add. The raw table (``StoredRun.table``) keeps every
stored column as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from optimizer.report.format import (
    byte_unit,
    format_p,
    format_ratio,
    latency_unit,
    number_or_none,
    round_significant,
)
from optimizer.report.recommend import FASTER, SLOWER, Budget
from optimizer.report.results import PER_OUTPUT_FIGURES, VariantResult, reference_of, to_frame


@dataclass(frozen=True)
class HumanColumn:
    """A stored column as people read it: its title (the unit is added from ``scale``) and how it is scaled:
    bytes, latency (ms), percent (of a fraction), points (a change of a fraction), seconds, dB, count, number,
    flag or text."""

    key: str
    title: str
    scale: str


# Shown by default, after the variant, its quality figure and its status.
DEFAULT_COLUMNS = (
    HumanColumn("size_bytes", "Size", "bytes"),
    HumanColumn("size_factor", "× smaller than float32", "factor"),
    HumanColumn("latency_ms_p50", "Latency p50", "latency"),
    HumanColumn("latency_vs_float32", "Latency vs float32", "text"),
    HumanColumn("accuracy_delta", "Accuracy change", "points"),
    HumanColumn("accuracy_vs_float32", "Accuracy vs float32", "text"),
)
# What a user can add.
EXTRA_COLUMNS = (
    HumanColumn("gzip_bytes", "gzip size", "bytes"),
    HumanColumn("latency_ms_p95", "Latency p95", "latency"),
    HumanColumn("latency_ms_p50_ci_low", "Latency p50 95% CI low", "latency"),
    HumanColumn("latency_ms_p50_ci_high", "Latency p50 95% CI high", "latency"),
    HumanColumn("memory_model_bytes", "Model memory", "bytes"),
    HumanColumn("memory_peak_bytes", "Peak memory", "bytes"),
    HumanColumn("mcnemar_p", "McNemar p", "number"),
    HumanColumn("accuracy_delta_ci_low", "Accuracy change 95% CI low", "points"),
    HumanColumn("accuracy_delta_ci_high", "Accuracy change 95% CI high", "points"),
    HumanColumn("flips", "Prediction flips", "count"),
    HumanColumn("mae", "MAE", "number"),
    HumanColumn("fidelity_top1_agreement", "Top-1 agreement with float32", "percent"),
    HumanColumn("fidelity_rmse", "RMSE against float32", "number"),
    HumanColumn("fidelity_snr_db", "SNR against float32", "db"),
    HumanColumn("integer_only", "Integer only", "flag"),
    HumanColumn("weights_zero_fraction", "Zero weights", "percent"),
    HumanColumn("weights_max_unique", "Distinct weight values", "count"),
    HumanColumn("conversion_s", "Conversion", "seconds"),
    HumanColumn("training_s", "Training", "seconds"),
)
# The quality figure shown next to the variant: the first of these that any variant has.
QUALITY_COLUMNS = (
    HumanColumn("accuracy", "Accuracy", "percent"),
    HumanColumn("mae", "MAE", "number"),
    HumanColumn("fidelity_top1_agreement", "Top-1 agreement with float32", "percent"),
    HumanColumn("fidelity_snr_db", "SNR against float32", "db"),
)
# The scale of each figure of a per-output column group.
FIGURE_SCALES = {"accuracy": "percent", "top5_accuracy": "percent", "exact_match": "percent",
                 "fidelity_top1_agreement": "percent", "accuracy_delta": "points", "accuracy_verdict": "text",
                 "flips": "count", "fidelity_snr_db": "db"}
# The figures of each output shown by default for a model with several outputs (the rest are extras).
DEFAULT_FIGURES = ("accuracy", "accuracy_delta", "accuracy_verdict", "mae", "mae_delta")
_UNIT_SUFFIX = {"percent": " (%)", "points": " (pts)", "seconds": " (s)", "db": " (dB)"}
_FLAGS = {"failed": "✗", "skipped": "✗"}
REFERENCE = "reference"  # what float32's own "vs float32" cells say


def _rounded(digits: int, factor: float = 1.0) -> Callable[[Any], float | None]:
    def scale(value: Any) -> float | None:
        number = number_or_none(value)
        if number is None or not math.isfinite(number):
            return number
        return round(number * factor, digits) + 0.0
    return scale


def _scaled(values: pd.Series, column: HumanColumn, latency: tuple[str, float]) -> tuple[str, list[Any]]:
    """A column's title with its unit, and its values in that unit (None where missing)."""
    scale = column.scale
    if scale == "bytes":
        unit, size = byte_unit(max((n for v in values if (n := number_or_none(v)) is not None), default=None))
        return f"{column.title} ({unit})", [round_significant(number_or_none(v) and v / size) for v in values]
    if scale == "latency":
        unit, size = latency
        return f"{column.title} ({unit})", [round_significant(number_or_none(v) and v / size) for v in values]
    if scale in ("text", "flag"):
        return column.title, [None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else v
                              for v in values]
    if scale == "count":
        return column.title, [None if (n := number_or_none(v)) is None else int(n) for v in values]
    convert = {"percent": _rounded(2, 100.0), "points": _rounded(2, 100.0), "seconds": _rounded(2),
               "db": _rounded(1), "factor": _rounded(2)}.get(scale, round_significant)
    return column.title + _UNIT_SUFFIX.get(scale, ""), [convert(v) for v in values]


def status_text(variant: VariantResult) -> str:
    """"ok", "✗ failed: why", "✗ skipped: why", or "⚠ ok: note" for an ok variant whose row is flagged."""
    if variant.ok:
        if variant.error:
            return f"⚠ ok: {variant.error}"
        return "ok" if variant.measured else "ok (not benchmarked)"
    return f"{_FLAGS.get(variant.status, '✗')} {variant.status or 'not produced'}: {variant.failed_reason}"


def _latency_vs_float32(variant: VariantResult, reference: VariantResult | None) -> str | None:
    verdict, median = variant.latency_verdict, variant.latency_ms_p50
    base = reference.latency_ms_p50 if reference is not None else None
    if verdict in (FASTER, SLOWER) and base and median:
        return f"{format_ratio(base / median if verdict == FASTER else median / base)} {verdict}"
    return verdict


def _accuracy_vs_float32(variant: VariantResult) -> str | None:
    verdict = variant.accuracy_verdict
    if not verdict:
        return None
    p_value = format_p(variant.mcnemar_p)
    return f"{verdict} ({p_value})" if p_value else verdict


def _derived(frame: pd.DataFrame, variants: Sequence[VariantResult]) -> pd.DataFrame:
    """The frame with the columns computed for people: the size factor and the two verdicts in words."""
    reference = reference_of(variants)
    ratios = [number_or_none(v.raw.get("size_ratio")) for v in variants]
    latency = [_latency_vs_float32(v, reference) for v in variants]
    accuracy = [_accuracy_vs_float32(v) for v in variants]
    return frame.assign(size_factor=[1 / r if r else None for r in ratios],
                        latency_vs_float32=_with_reference(latency, variants, reference),
                        accuracy_vs_float32=_with_reference(accuracy, variants, reference))


def _with_reference(cells: list[str | None], variants: Sequence[VariantResult],
                    reference: VariantResult | None) -> list[str | None]:
    """float32's own cell of a "vs float32" column says "reference", when another variant has a verdict."""
    if not any(cells):
        return cells
    return [REFERENCE if v is reference else cell for v, cell in zip(variants, cells, strict=True)]


def _group_column(key: str) -> HumanColumn:
    """A per-output column ``"<output>: <figure>"`` keeps its name (the unit is added)."""
    return HumanColumn(key, key, FIGURE_SCALES.get(key.rpartition(": ")[2], "number"))


# A target's column group (``"<user@host:port>: p50 ms"``, see results.PER_TARGET_FIGURES) as people read it; the
# first three are shown by default beside this host's own latency, the rest are extras.
TARGET_COLUMNS = {"p50 ms": ("Latency p50", "latency"), "latency verdict": ("latency vs float32", "text"),
                  "error": ("not measured because", "text"), "p95 ms": ("Latency p95", "latency"),
                  "resolution %": ("resolution (%)", "number"), "rounds": ("timing rounds", "count"),
                  "first invoke ms": ("first invoke", "latency"), "peak memory bytes": ("Peak memory", "bytes"),
                  "model memory bytes": ("Model memory", "bytes")}
DEFAULT_TARGET_FIGURES = ("p50 ms", "latency verdict", "error")


def _target_columns(frame: pd.DataFrame) -> list[HumanColumn]:
    """Each other target's columns, titled ``"<target>: Latency p50"`` (the unit is added)."""
    columns = []
    for key in (str(c) for c in frame.columns if ": " in str(c)):
        label, _, figure = key.rpartition(": ")
        if figure in TARGET_COLUMNS and label:
            title, scale = TARGET_COLUMNS[figure]
            columns.append(HumanColumn(key, f"{label}: {title}", scale))
    return columns


def _groups(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if ": " in str(c) and str(c).rpartition(": ")[2] in PER_OUTPUT_FIGURES]


@dataclass(frozen=True)
class _Table:
    """Every human column of one run that holds a value, by key: (title, values)."""

    quality: str | None
    columns: dict[str, tuple[str, list[Any]]]
    extras: tuple[str, ...]


def _build(rows: list[dict[str, Any]]) -> tuple[_Table, pd.DataFrame, list[VariantResult]]:
    variants = [VariantResult.from_row(row) for row in rows]
    frame = _derived(to_frame(rows), variants)
    with_values = {c: frame[c].notna().any() and (frame[c] != "").any() for c in frame.columns}
    quality = next((c for c in QUALITY_COLUMNS if with_values.get(c.key)), None)
    known = [c for c in (*DEFAULT_COLUMNS, *EXTRA_COLUMNS) if c.key != (quality.key if quality else None)]
    targets = _target_columns(frame)
    wanted = ([quality] if quality else []) + known + [_group_column(key) for key in _groups(frame)] + targets
    present = [c for c in wanted if with_values.get(c.key)]
    p50 = [number_or_none(v) for v in frame["latency_ms_p50"]] if "latency_ms_p50" in frame else []
    latency = latency_unit(max((v for v in p50 if v is not None), default=None))
    columns = {c.key: _scaled(frame[c.key], c, latency) for c in present}
    defaults = {c.key for c in DEFAULT_COLUMNS} | {k for k in _groups(frame) if k.rpartition(": ")[2] in
                                                   DEFAULT_FIGURES} | {
        c.key for c in targets if c.key.rpartition(": ")[2] in DEFAULT_TARGET_FIGURES}
    extras = tuple(k for k in columns if k not in defaults and k != (quality.key if quality else None))
    return _Table(quality.key if quality else None, columns, extras), frame, variants


def extra_columns(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The columns a user can add to :func:`human_table` (those holding a value), key -> title with unit."""
    table, _, _ = _build(rows)
    return {key: table.columns[key][0] for key in table.extras}


def human_table(rows: list[dict[str, Any]], budget: Budget | None = None, extra: Sequence[str] = ()) -> pd.DataFrame:
    """The results table for people, one row per variant: "Variant", its quality figure (accuracy, MAE or,
    without labels, fidelity), "Status", "Within budget" (when ``budget`` sets a limit), the default columns
    that hold a value, each output's default figures for a model with several outputs, then the ``extra``
    columns asked for (keys of :func:`extra_columns`; unknown or empty ones are left out)."""
    table, frame, variants = _build(rows)
    shown: dict[str, list[Any]] = {"Variant": [v.name for v in variants]}
    if table.quality is not None:
        title, values = table.columns[table.quality]
        shown[title] = values
    shown["Status"] = [status_text(v) for v in variants]
    if budget is not None and budget.limited:
        passes = budget.passes(frame)
        shown["Within budget"] = [bool(ok and v.ok) for ok, v in zip(passes, variants, strict=True)]
    for key, (title, values) in table.columns.items():
        if key != table.quality and (key not in table.extras or key in extra):
            shown[title] = values
    return pd.DataFrame(shown)
