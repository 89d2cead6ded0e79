"""A trade-off chart (:class:`optimizer.report.charts.Tradeoff`) as an Apache ECharts option, for Streamlit's
``st.echarts_chart``: the Compare page's first chart. Streamlit's ECharts bundle is a quarter of the size of its
Plotly bundle (1.1 MB against 4.6 MB of JavaScript to fetch, parse and compile), which is what decides how soon the
page is usable (benchmarks/README.md); the HTML report and the other charts stay Plotly.

It draws what :func:`optimizer.report.charts.plotly_tradeoff` draws: the same points, colours, label positions,
Pareto front, recommended ring and axes (accuracies in %, log axes ticked at 1, 2 and 5 x 10^k), with sizes in
KB or MB (ECharts takes no tick-label callbacks, so the values are scaled instead of the labels).
Options are plain JSON: no JavaScript functions, as ``st.echarts_chart`` requires.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optimizer.report.charts import PICK_COLOUR, RING_PX, Metric, Tradeoff, TradeoffPoint, axis_title
from optimizer.report.format import byte_unit
from optimizer.report.style import FRACTION_FIGURES, FRONT_COLOUR, figure_of, hover_format, plotted_range

HEIGHT_PX = 460
_FADED = 0.35  # the opacity of a point outside the budget, as in the Plotly chart
_LABEL_GAP_PX = 2  # between a label and its marker's edge


@dataclass(frozen=True)
class _Scale:
    """How an axis's values are shown: multiplied by ``factor`` (100 for a fraction in %, 1/1024 for KB), with
    ``suffix`` after each tick (``%``) and ``unit`` in the axis name (``KB``)."""
    factor: float = 1.0
    suffix: str = ""
    unit: str = ""


def _scale(metric: Metric, values: Sequence[float]) -> _Scale:
    figure = figure_of(metric.column)
    if figure in FRACTION_FIGURES:
        return _Scale(100.0, "%")
    if figure.endswith("_bytes"):
        unit, size = byte_unit(max(values, default=0.0))
        return _Scale(1.0 / size, unit=unit)
    return _Scale()


def _label(metric: Metric, scale: _Scale) -> str:
    """The metric's label in the unit it is drawn in: "File size (KB)" for one stored in bytes."""
    return metric.label.replace("(bytes)", f"({scale.unit})") if scale.unit else metric.label


def _name(metric: Metric, scale: _Scale) -> str:
    return axis_title(Metric(metric.column, _label(metric, scale), metric.lower_is_better))


def _axis(metric: Metric, plotly_axis: dict[str, Any], values: Sequence[float], scale: _Scale,
          horizontal: bool) -> dict[str, Any]:
    """An ECharts value or log axis spanning what the Plotly axis spans (:func:`plotted_range`, the geometry
    the labels were placed in), in the scaled unit."""
    log = plotly_axis.get("type") == "log"
    low, high = plotted_range(values, log, plotly_axis.get("range"))
    if high <= low:  # one value: a little either side of it
        pad = 0.1 if log else 0.05 * abs(low) or 1.0
        low, high = low - pad, high + pad
    if log:
        low, high = 10.0 ** low, 10.0 ** high
    axis: dict[str, Any] = {
        "type": "log" if log else "value", "name": _name(metric, scale), "nameLocation": "middle",
        "nameGap": 32 if horizontal else 58, "min": _rounded(low * scale.factor), "max": _rounded(high * scale.factor),
        "splitLine": {"show": True, "lineStyle": {"color": "#e5e5e5"}},
        # The ends of a linear axis are where the data's padding puts them (0.0437...): no label there.
        "axisLabel": {"formatter": "{value}" + scale.suffix, "hideOverlap": True,
                      "showMinLabel": log, "showMaxLabel": log},
    }
    if log:
        axis["logBase"] = 10
        ticks = [_rounded(t * scale.factor) for t in plotly_axis.get("tickvals") or []]
        if ticks:
            axis["axisLabel"]["customValues"] = ticks
            axis["axisTick"] = {"customValues": ticks}
            axis["splitLine"]["customValues"] = ticks
    return axis


def _rounded(value: float) -> float:
    """Four significant digits: what a tick or an axis end needs, without float noise in the labels."""
    return float(f"{value:.4g}") if math.isfinite(value) and value else value


def _literal(text: str) -> str:
    """``text`` as an ECharts string template shows it: braces would start a ``{a}``-style placeholder."""
    return text.replace("{", "(").replace("}", ")")


def _hover(chart: Tradeoff, point: TradeoffPoint) -> str:
    """The tooltip: the variant and its two figures, formatted as the Plotly chart's hover text."""
    def line(metric: Metric, value: float) -> str:
        return f"{html.escape(metric.label)}: {format(value, hover_format(metric.column))}"

    return _literal(f"<b>{html.escape(point.variant)}</b><br>{line(chart.x, point.x)}<br>{line(chart.y, point.y)}")


def _point_label(point: TradeoffPoint) -> dict[str, Any]:
    """The label where the Plotly chart puts it (``"top center"``, ``"bottom right"``, ...): straight above,
    below or beside the marker, or past one of its corners."""
    vertical, horizontal = point.label_position.split()
    label: dict[str, Any] = {"show": True, "formatter": _literal(point.variant),
                             "color": "#262730", "fontSize": 12, "distance": _LABEL_GAP_PX,
                             "opacity": 1.0 if point.within_budget else _FADED}
    if horizontal == "center" or vertical == "middle":
        label["position"] = vertical if horizontal == "center" else horizontal
        return label
    size = point.size_px
    label["position"] = [size + _LABEL_GAP_PX if horizontal == "right" else -_LABEL_GAP_PX,
                         -_LABEL_GAP_PX if vertical == "top" else size + _LABEL_GAP_PX]
    label["align"] = "left" if horizontal == "right" else "right"
    label["verticalAlign"] = "bottom" if vertical == "top" else "top"
    return label


def tradeoff_option(chart: Tradeoff) -> dict[str, Any]:
    """The ECharts option of ``chart``: one scatter series per variant (its colour, its label, faded outside
    the budget), the Pareto front as a dark line over them, a green ring under the recommended variant."""
    x_scale = _scale(chart.x, [p.x for p in chart.points])
    y_scale = _scale(chart.y, [p.y for p in chart.points])

    def value(point: TradeoffPoint) -> list[float]:
        return [point.x * x_scale.factor, point.y * y_scale.factor]

    series: list[dict[str, Any]] = []
    if chart.recommended is not None:
        series.append({"type": "scatter", "name": f"recommended: {chart.recommended.variant}",
                       "data": [value(chart.recommended)], "symbolSize": RING_PX, "silent": True, "z": 1,
                       "itemStyle": {"color": "rgba(0,0,0,0)", "borderColor": PICK_COLOUR, "borderWidth": 3}})
    for point in chart.points:
        series.append({
            "type": "scatter", "name": point.variant + ("" if point.within_budget else " (outside budget)"),
            "data": [value(point)], "symbolSize": point.size_px, "z": 2, "label": _point_label(point),
            "itemStyle": {"color": point.colour, "borderColor": "#333", "borderWidth": 1,
                          "opacity": 1.0 if point.within_budget else _FADED},
            "tooltip": {"formatter": _hover(chart, point)}, "emphasis": {"scale": 1.2}})
    if chart.front:
        series.append({"type": "line", "name": "Pareto front", "data": [value(p) for p in chart.front], "z": 3,
                       "silent": True, "symbol": "emptyCircle", "symbolSize": [p.size_px + 4 for p in chart.front],
                       "lineStyle": {"color": FRONT_COLOUR, "width": 3},
                       "itemStyle": {"color": FRONT_COLOUR, "borderWidth": 2}, "animation": False})
    points = chart.points
    return {
        "title": {"text": f"{_label(chart.y, y_scale)} vs {_label(chart.x, x_scale)}", "left": 8, "top": 4,
                  "textStyle": {"fontSize": 16}},
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0, "type": "scroll", "data": [s["name"] for s in series]},
        # Streamlit's theme makes these the outer bounds: the tick labels and axis names are fitted inside them.
        "grid": {"left": 8, "right": 24, "top": 56, "bottom": 36, "outerBoundsMode": "same"},
        "xAxis": _axis(chart.x, chart.x_axis, [p.x for p in points], x_scale, horizontal=True),
        "yAxis": _axis(chart.y, chart.y_axis, [p.y for p in points], y_scale, horizontal=False),
        "series": series,
        "animation": False,
    }
