"""How the charts read, shared by every figure builder: one colour per variant, accuracy axes in percent,
log axes for figures that span more than 10x, point labels placed so they do not overlap, and box-plot axes
set by the whiskers (an outlier never flattens the boxes).

Pure functions of plain numbers and names (no Plotly objects): they return values and layout dicts.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# One colour per variant kind (a variant named after its kind gets it too); other names are hashed into the
# same palette, so a variant has the same colour in every chart of every run. Pure green and red are left
# out: they mark the recommended variant and flagged layers.
KIND_COLOURS = {
    "float32": "#1f77b4", "float16": "#17becf", "dynamic_range": "#ff7f0e", "int8": "#9467bd",
    "int8_io": "#e377c2", "int16x8": "#8c564b", "aeq_dynamic_int8": "#ffbb78", "aeq_weight_only_int8": "#c5b0d5",
    "aeq_static_int8": "#f7b6d2", "qat": "#bcbd22", "prune": "#393b79", "prune_int8": "#637939",
    "prune_2x4": "#8c6d31", "cluster": "#843c39", "pqat": "#7b4173", "cqat": "#5254a3",
    "sparse_cluster": "#6b6ecf", "finetune_control": "#9c9ede", "mixed_int8": "#e7ba52",
}
_PALETTE = tuple(KIND_COLOURS.values())
FRONT_COLOUR = "#222222"  # the Pareto front: dark, over the coloured points
# Figures stored as fractions of 1 (plotted in %), and figures whose values may span orders of magnitude.
FRACTION_FIGURES = {"accuracy", "top5_accuracy", "exact_match", "fidelity_top1_agreement"}
SCALE_FIGURES = {"size_bytes", "gzip_bytes", "memory_peak_bytes", "memory_model_bytes", "latency_ms_p50",
                 "latency_ms_p95"}
LOG_SPAN = 10.0  # a log axis once the largest value is more than this many times the smallest


def variant_colour(name: str, kind: str | None = None) -> str:
    """The colour of a variant in every chart: its kind's (or its name's, when it is named after a kind);
    any other name gets a fixed colour from the same palette (a hash of the name, stable across runs)."""
    for key in (name, kind or ""):
        if key in KIND_COLOURS:
            return KIND_COLOURS[key]
    return _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)]


def figure_of(column: str) -> str:
    """The figure a column holds: ``"ink: mae"`` -> ``"mae"``, ``"accuracy"`` -> ``"accuracy"``."""
    return column.rpartition(": ")[2]


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def wants_log(values: Sequence[float | None]) -> bool:
    """A log axis: every value positive and the largest more than LOG_SPAN times the smallest."""
    found = _finite(values)
    return bool(found) and min(found) > 0 and max(found) / min(found) > LOG_SPAN


def percent_range(values: Sequence[float | None]) -> tuple[float, float]:
    """An axis for fractions of 1 shown in %: from a round value a little below the lowest one to 100%
    (never above; never below 0)."""
    found = _finite(values) or [1.0]
    lowest = min(min(found), 1.0)
    bottom = lowest - max(0.01, 0.15 * (1.0 - lowest))
    step = 0.01 if 1.0 - bottom <= 0.1 else 0.05
    return max(0.0, math.floor(round(bottom / step, 9)) * step), 1.0


def _tick_text(value: float, in_bytes: bool) -> str:
    if in_bytes and value >= 1e3:
        return f"{value / 1e6:g}M" if value >= 1e6 else f"{value / 1e3:g}k"
    return f"{value:g}"


def log_axis(low: float, high: float, in_bytes: bool = False) -> dict[str, Any]:
    """A log axis ticked at 1, 2 and 5 x 10^k between ``low`` and ``high`` (1 x 10^k alone over more than four
    decades), labelled as plain numbers (``0.02``, ``200k``) instead of Plotly's small 2..9 digits."""
    if low <= 0 or high <= low:
        raise ValueError(f"log_axis: expected 0 < low < high; found {low!r}, {high!r}")
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    mantissas = (1,) if last - first > 4 else (1, 2, 5)
    ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in mantissas if low <= m * 10.0 ** e <= high]
    return {"type": "log", "tickvals": ticks, "ticktext": [_tick_text(t, in_bytes) for t in ticks]}


def axis_layout(column: str, values: Sequence[float | None]) -> dict[str, Any]:
    """Plotly axis settings for ``column``'s values: a fixed range with % ticks for a fraction, a log axis
    for a size or latency spanning more than 10x, nothing special otherwise."""
    figure = figure_of(column)
    if figure in FRACTION_FIGURES:
        low, high = percent_range(values)
        return {"range": [low, high], "tickformat": ".0%" if high - low >= 0.05 - 1e-9 else ".1%"}
    if figure in SCALE_FIGURES and wants_log(values):
        found = _finite(values)
        return log_axis(min(found) / 1.5, max(found) * 1.5, in_bytes=figure.endswith("_bytes"))
    return {}


def hover_format(column: str) -> str:
    """The d3 format of ``column``'s values in a hover text."""
    figure = figure_of(column)
    if figure in FRACTION_FIGURES:
        return ".2%"
    return ",.0f" if figure.endswith("_bytes") else ".4g"


# --- Point labels that do not overlap ------------------------------------------------------------------------

# Preferred first; Plotly's textposition values. "middle center" would sit on the marker.
LABEL_POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "top left",
                   "bottom right", "bottom left")
PLOT_PX = (640.0, 330.0)  # the plotting area a chart gets (width, height), to size labels against it
_CHAR_PX, _LINE_PX = 7.0, 14.0  # one character of a label, one line
# The room a label keeps from the other labels: the charts are drawn by Plotly and by ECharts, whose
# geometry differs from this model's by a few pixels, so boxes that merely touch here could overlap there.
CLEARANCE_PX = 3.0
_PASSES = 4  # rounds of moving labels that still collide, after the greedy placement


@dataclass(frozen=True)
class _Box:
    left: float
    right: float
    bottom: float
    top: float

    def overlap(self, other: _Box) -> float:
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.top, other.top) - max(self.bottom, other.bottom)
        return width * height if width > 0 and height > 0 else 0.0

    def grown(self, px: float) -> _Box:
        """The box with ``px`` pixels more on every side."""
        dx, dy = px / PLOT_PX[0], px / PLOT_PX[1]
        return _Box(self.left - dx, self.right + dx, self.bottom - dy, self.top + dy)

    def outside(self) -> float:
        """How far the box sticks out of the plotting area (0..1 on each side)."""
        return max(0.0, -self.left) + max(0.0, self.right - 1) + max(0.0, -self.bottom) + max(0.0, self.top - 1)


def plotted_range(values: Sequence[float], log: bool, fixed: Sequence[float] | None = None) -> tuple[float, float]:
    """The span an axis shows (log10 units on a log axis): its fixed range, or the data's padded as Plotly's
    autorange does, so a chart drawn by another library (ECharts) has the geometry the labels were placed in."""
    if fixed is not None:
        return float(fixed[0]), float(fixed[1])
    data = [math.log10(v) if log else v for v in values]
    pad = 0.08 * (max(data) - min(data)) if data else 0.0
    return (min(data) - pad, max(data) + pad) if data else (0.0, 1.0)


def _normalised(values: Sequence[float], log: bool, fixed: Sequence[float] | None) -> list[float]:
    """Values as fractions of the plotted axis (:func:`plotted_range`)."""
    data = [math.log10(v) if log else v for v in values]
    low, high = plotted_range(values, log, fixed)
    return [0.5 if high <= low else (v - low) / (high - low) for v in data]


def _label_box(x: float, y: float, text: str, position: str, radius_px: float) -> _Box:
    width, height = (len(text) * _CHAR_PX) / PLOT_PX[0], _LINE_PX / PLOT_PX[1]
    offset = radius_px / 0.8 + 1  # Plotly's own offset of a point's text from its centre (drawing.textPointPosition)
    gap_x, gap_y = offset / PLOT_PX[0], offset / PLOT_PX[1]
    vertical, horizontal = position.split()
    centre_x = {"left": x - gap_x - width / 2, "center": x, "right": x + gap_x + width / 2}[horizontal]
    centre_y = {"bottom": y - gap_y - height / 2, "middle": y, "top": y + gap_y + height / 2}[vertical]
    return _Box(centre_x - width / 2, centre_x + width / 2, centre_y - height / 2, centre_y + height / 2)


def _marker_box(x: float, y: float, radius_px: float) -> _Box:
    half_x, half_y = radius_px / PLOT_PX[0], radius_px / PLOT_PX[1]
    return _Box(x - half_x, x + half_x, y - half_y, y + half_y)


def _clash(box: _Box, markers: Sequence[_Box], labels: Sequence[_Box]) -> float:
    """How badly a label box collides: its overlap with other points' markers and, with :data:`CLEARANCE_PX`
    around it, with the labels placed before, and a little for leaving the plotting area (so a label at the top
    of the chart goes below its point)."""
    room = box.grown(CLEARANCE_PX)
    return sum(box.overlap(marker) for marker in markers) + sum(room.overlap(label) for label in labels) + \
        0.01 * box.outside()


def label_positions(xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                    sizes_px: Sequence[float] | None = None, log_x: bool = False, log_y: bool = False,
                    x_range: Sequence[float] | None = None, y_range: Sequence[float] | None = None) -> list[str]:
    """A ``textposition`` per point, chosen so labels overlap neither each other nor other points' markers
    where that can be helped: greedily, in the points' order (the least overlap when nothing is free), then a
    few passes that move a label wherever it now collides less with all the others (a dense cluster the greedy
    order boxed in). ``sizes_px`` are marker diameters; ``x_range``/``y_range`` a fixed axis range (log10 units
    on a log axis)."""
    px, py = _normalised(xs, log_x, x_range), _normalised(ys, log_y, y_range)
    radii = [s / 2 for s in sizes_px] if sizes_px is not None else [6.0] * len(px)
    markers = [_marker_box(x, y, r) for x, y, r in zip(px, py, radii, strict=True)]
    candidates = [[_label_box(x, y, str(text), position, radius) for position in LABEL_POSITIONS]
                  for x, y, text, radius in zip(px, py, texts, radii, strict=True)]
    chosen: list[int] = []
    for index, boxes in enumerate(candidates):
        others = markers[:index] + markers[index + 1:]
        placed = [candidates[i][c] for i, c in enumerate(chosen)]
        costs = [_clash(box, others, placed) for box in boxes]
        chosen.append(costs.index(min(costs)))  # the first of equal costs: the preferred position
    for _ in range(_PASSES):
        moved = False
        for index, boxes in enumerate(candidates):
            others = markers[:index] + markers[index + 1:]
            placed = [candidates[i][c] for i, c in enumerate(chosen) if i != index]
            costs = [_clash(box, others, placed) for box in boxes]
            if min(costs) < costs[chosen[index]] - 1e-12:  # strictly better: no two labels swapping forever
                chosen[index], moved = costs.index(min(costs)), True
        if not moved:
            break
    return [LABEL_POSITIONS[c] for c in chosen]


# --- Box plots: the axis set by the whiskers ------------------------------------------------------------------

def whiskers(values: Sequence[float]) -> tuple[float, float]:
    """The ends of a box plot's whiskers (Tukey's, as Plotly draws them): the most extreme values within
    1.5 interquartile ranges of the quartiles."""
    data = np.asarray(_finite(values), dtype=float)
    if data.size == 0:
        raise ValueError("whiskers: expected at least one finite value")
    q1, q3 = np.percentile(data, [25, 75])
    reach = 1.5 * (q3 - q1)
    inside = data[(data >= q1 - reach) & (data <= q3 + reach)]
    return float(inside.min()), float(inside.max())


def box_axis(series: Sequence[Sequence[float]]) -> tuple[dict[str, Any], int, float]:
    """The value axis of box plots of ``series``: a range covering every whisker (log when they span more
    than 10x), the number of points beyond it (outliers left out), and the largest value."""
    ends = [whiskers(values) for values in series if _finite(values)]
    if not ends:
        return {}, 0, 0.0
    low, high = min(e[0] for e in ends), max(e[1] for e in ends)
    everything = [v for values in series for v in _finite(values)]
    if low > 0 and high / low > LOG_SPAN:
        pad = 10 ** (0.05 * (math.log10(high) - math.log10(low)))
        bottom, top = low / pad, high * pad
        axis = {**log_axis(bottom, top), "range": [math.log10(bottom), math.log10(top)]}
    else:
        pad = 0.08 * (high - low) or 0.05 * abs(high) or 1.0
        bottom, top = (max(0.0, low - pad) if low >= 0 else low - pad), high + pad
        axis = {"range": [bottom, top]}
    beyond = sum(1 for v in everything if v > top or v < bottom)
    return axis, beyond, max(everything)
