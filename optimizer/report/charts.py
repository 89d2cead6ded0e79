"""Pure plot builders: result rows (a DataFrame) in, ``plotly.graph_objects.Figure`` out.

They know which metrics are lower-is-better, draw the Pareto front, and fade what fails a budget, so
the app, the HTML report and scripts draw the same charts; how they read (one colour per variant, % and log
axes, labels that do not overlap, box axes set by the whiskers) comes from :mod:`optimizer.report.style`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from optimizer.errors import InvalidOption
from optimizer.report.recommend import Budget as Budget  # re-exported: they live in recommend.py
from optimizer.report.recommend import Priority
from optimizer.report.recommend import recommend as recommend
from optimizer.report.style import (
    FRONT_COLOUR,
    axis_layout,
    box_axis,
    hover_format,
    label_positions,
    percent_range,
    variant_colour,
)


@dataclass(frozen=True)
class Metric:
    column: str
    label: str
    lower_is_better: bool


METRICS = {
    "size_bytes": Metric("size_bytes", "File size (bytes)", True),
    "gzip_bytes": Metric("gzip_bytes", "gzip size (bytes)", True),
    "latency_ms_p50": Metric("latency_ms_p50", "Latency p50 (ms)", True),
    "latency_ms_p95": Metric("latency_ms_p95", "Latency p95 (ms)", True),
    "accuracy": Metric("accuracy", "Accuracy", False),
    "top5_accuracy": Metric("top5_accuracy", "Top-5 accuracy", False),
    "exact_match": Metric("exact_match", "Exact match", False),
    "mae": Metric("mae", "Mean absolute error", True),
    "rmse": Metric("rmse", "Root mean squared error", True),
    "fidelity_top1_agreement": Metric("fidelity_top1_agreement", "Top-1 agreement with float32", False),
    "fidelity_snr_db": Metric("fidelity_snr_db", "SNR against float32 (dB)", False),
    "fidelity_rmse": Metric("fidelity_rmse", "RMSE against float32", True),
    "memory_peak_bytes": Metric("memory_peak_bytes", "Peak memory (bytes)", True),
}
QUALITY_FIGURES = ("accuracy", "mae")  # a labelled output's headline figure: accuracy, or MAE for regression
_OK_COLOUR, _FLAG_COLOUR, PICK_COLOUR = "#1f77b4", "#d62728", "#2ca02c"
RING_PX = 26  # the ring around a trade-off chart's recommended point (diameter, px)


def metric_of(column: str) -> Metric:
    """The metric a frame column holds: one of METRICS, or one output's figure of a model with several outputs
    (``"<output>: <figure>"``, e.g. ``"ink: mae"``, labelled "ink: Mean absolute error")."""
    if column in METRICS:
        return METRICS[column]
    output, separator, figure = column.rpartition(": ")
    if separator and output and figure in METRICS:
        known = METRICS[figure]
        return Metric(column, f"{output}: {known.label}", known.lower_is_better)
    raise InvalidOption(f"metric: expected one of {sorted(METRICS)} or '<output>: <figure>'; found {column!r}")


def quality_metric(frame: pd.DataFrame, output: str | None = None) -> Metric | None:
    """The quality axis: accuracy for classifiers, MAE for regression, None without labels. With ``output``,
    that output's own column of a model with several outputs (``"<output>: accuracy"`` or ``"<output>: mae"``)."""
    prefix = f"{output}: " if output else ""
    for name in QUALITY_FIGURES:
        column = prefix + name
        if column in frame.columns and frame[column].notna().any():
            return metric_of(column)
    return None


def scored_outputs(frame: pd.DataFrame) -> list[str]:
    """The outputs of a model with several outputs that have a quality column of their own (labelled outputs),
    in column order; empty for a model with one output."""
    outputs: list[str] = []
    for column in map(str, frame.columns):
        output, separator, figure = column.rpartition(": ")
        if separator and figure in QUALITY_FIGURES and frame[column].notna().any() and output not in outputs:
            outputs.append(output)
    return outputs


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that were produced and measured (status ok with a latency)."""
    ok = frame[frame["status"] == "ok"]
    return ok[ok["latency_ms_p50"].notna()] if "latency_ms_p50" in ok.columns else ok


def pareto_front(frame: pd.DataFrame, x: Metric, y: Metric) -> pd.DataFrame:
    """Rows no other row beats on both metrics (each in its own direction), sorted along x."""
    if x.column not in frame.columns or y.column not in frame.columns:
        return frame.iloc[0:0]
    data = frame.dropna(subset=[x.column, y.column])
    if data.empty:
        return data
    xs = data[x.column] if x.lower_is_better else -data[x.column]
    ys = data[y.column] if y.lower_is_better else -data[y.column]
    keep = []
    for i in range(len(data)):
        dominated = ((xs <= xs.iloc[i]) & (ys <= ys.iloc[i]) & ((xs < xs.iloc[i]) | (ys < ys.iloc[i]))).any()
        keep.append(not dominated)
    return data[pd.Series(keep, index=data.index)].sort_values(x.column)


def _marker_sizes(data: pd.DataFrame, bubble: str | None) -> pd.Series:
    """Each point's marker diameter (px): 12, or 10..50 by the ``bubble`` column."""
    if not bubble or bubble not in data.columns:
        return pd.Series(12.0, index=data.index)
    scale = float(data[bubble].max()) or 1.0
    return (10 + 40 * data[bubble].astype(float) / scale).fillna(12.0)


def _kinds(data: pd.DataFrame) -> list[str | None]:
    return [str(k) if isinstance(k, str) else None for k in data["kind"]] if "kind" in data.columns \
        else [None] * len(data)


def _axes(data: pd.DataFrame, x: str, y: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The x and y axis settings of a trade-off chart: % for accuracies, log for a size or latency spanning
    more than 10x (see :func:`optimizer.report.style.axis_layout`)."""
    return axis_layout(x, data[x].astype(float).tolist()), axis_layout(y, data[y].astype(float).tolist())


def _label_positions(data: pd.DataFrame, x: str, y: str, sizes: pd.Series,
                     axes: tuple[dict[str, Any], dict[str, Any]]) -> list[str]:
    x_axis, y_axis = axes
    return label_positions(data[x].astype(float).tolist(), data[y].astype(float).tolist(),
                           [str(v) for v in data["variant"]], sizes.tolist(), log_x=x_axis.get("type") == "log",
                           log_y=y_axis.get("type") == "log", x_range=x_axis.get("range"),
                           y_range=y_axis.get("range"))


@dataclass(frozen=True)
class TradeoffPoint:
    variant: str
    x: float
    y: float
    colour: str
    size_px: float  # the marker's diameter
    within_budget: bool
    label_position: str  # where its label goes: one of style.LABEL_POSITIONS (Plotly's textposition values)


@dataclass(frozen=True)
class Tradeoff:
    """What one trade-off chart shows, whichever library draws it: Plotly (:func:`tradeoff_figure`, the HTML
    report and History) or ECharts (:func:`optimizer.report.echarts.tradeoff_option`, the Compare page)."""
    x: Metric
    y: Metric
    points: tuple[TradeoffPoint, ...]
    front: tuple[TradeoffPoint, ...]  # the Pareto front, along x
    recommended: TradeoffPoint | None
    x_axis: dict[str, Any]  # Plotly axis settings (style.axis_layout)
    y_axis: dict[str, Any]

    @property
    def title(self) -> str:
        return f"{self.y.label} vs {self.x.label}"


def axis_title(metric: Metric) -> str:
    return metric.label + (" (lower is better)" if metric.lower_is_better else " (higher is better)")


def tradeoff_of(frame: pd.DataFrame, x: str, y: str, budget: Budget | None = None, bubble: str | None = None,
                priority: Priority | str = Priority.SIZE) -> Tradeoff:
    """One point per measured variant in its own colour (:func:`variant_colour`; marked when it fails the
    budget), labels placed so they do not overlap, the Pareto front, the recommended variant; accuracy axes in
    %, size and latency axes on a log scale when they span more than 10x.
    ``x`` and ``y`` name the columns to plot (any :func:`metric_of` knows, such as ``"ink: mae"``),
    ``bubble`` sizes points by another column (e.g. file size); ``priority`` is the recommendation's (the
    recommended variant is the headline's)."""
    x_metric, y_metric = metric_of(x), metric_of(y)
    data = measured(frame).dropna(subset=[x, y])
    budget = budget or Budget()
    inside = budget.passes(data)
    pick = recommend(frame, budget, priority)
    axes = _axes(data, x, y)
    sizes = _marker_sizes(data, bubble)
    positions = _label_positions(data, x, y, sizes, axes)
    points = {index: TradeoffPoint(str(row["variant"]), float(row[x]), float(row[y]),
                                   variant_colour(str(row["variant"]), kind), float(sizes[index]),
                                   bool(inside[index]), position)
              for (index, row), kind, position in zip(data.iterrows(), _kinds(data), positions, strict=True)}
    front = pareto_front(data, x_metric, y_metric)
    return Tradeoff(x_metric, y_metric, tuple(points.values()), tuple(points[index] for index in front.index),
                    next((p for p in points.values() if p.variant == pick), None), *axes)


def _front_trace(front: Sequence[TradeoffPoint]) -> go.Scatter:
    """The Pareto front: a thick dark line through a ring just around each of its points, drawn over the
    coloured points (the rings stay inside the labels' offset)."""
    return go.Scatter(x=[p.x for p in front], y=[p.y for p in front], mode="lines+markers", name="Pareto front",
                      showlegend=True, line={"color": FRONT_COLOUR, "width": 3},
                      marker={"symbol": "circle-open", "size": [p.size_px + 4 for p in front],
                              "color": FRONT_COLOUR, "line": {"width": 2}},
                      hoverinfo="skip", cliponaxis=False, legendrank=1001)


def tradeoff_figure(frame: pd.DataFrame, x: str, y: str, budget: Budget | None = None,
                    bubble: str | None = None, priority: Priority | str = Priority.SIZE) -> go.Figure:
    """:func:`tradeoff_of` drawn by Plotly: faded points outside the budget, the front over the points, the
    recommended variant ringed (under its point and label)."""
    return plotly_tradeoff(tradeoff_of(frame, x, y, budget, bubble, priority))


def plotly_tradeoff(chart: Tradeoff) -> go.Figure:
    hover = (f"%{{customdata[0]}}<br>{chart.x.label}: %{{x:{hover_format(chart.x.column)}}}<br>"
             f"{chart.y.label}: %{{y:{hover_format(chart.y.column)}}}<extra></extra>")
    figure = go.Figure()
    if chart.recommended is not None:
        pick = chart.recommended
        figure.add_trace(go.Scatter(x=[pick.x], y=[pick.y], mode="markers", name=f"recommended: {pick.variant}",
                                    marker={"size": RING_PX, "color": "rgba(0,0,0,0)",
                                            "line": {"width": 3, "color": PICK_COLOUR}}, hoverinfo="skip",
                                    legendrank=1002))
    for point in chart.points:
        figure.add_trace(go.Scatter(
            x=[point.x], y=[point.y], mode="markers+text", text=[point.variant], textposition=point.label_position,
            name=point.variant + ("" if point.within_budget else " (outside budget)"),
            opacity=1.0 if point.within_budget else 0.35,
            marker={"color": point.colour, "size": point.size_px, "line": {"width": 1, "color": "#333"}},
            customdata=[[point.variant]], hovertemplate=hover, cliponaxis=False))
    if chart.front:
        figure.add_trace(_front_trace(chart.front))
    figure.update_layout(title=chart.title, xaxis_title=axis_title(chart.x), yaxis_title=axis_title(chart.y),
                         legend={"orientation": "h", "y": -0.2}, margin={"t": 50, "b": 40}, height=460)
    figure.update_xaxes(**chart.x_axis)
    figure.update_yaxes(**chart.y_axis)
    return figure


def latency_distribution_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Box plot of every timed run per variant (the spread behind the medians), each in its variant's colour.
    The axis covers every whisker, not the outliers (a log axis when the whiskers span more than 10x); how
    many timed runs lie beyond it is said on the chart."""
    timed = [row for row in rows if row.get("status") == "ok" and row.get("timings_ms")]
    figure = go.Figure()
    for row in timed:
        name = str(row["variant"])
        figure.add_trace(go.Box(y=row["timings_ms"], name=name, boxpoints="outliers",
                                marker_color=variant_colour(name, row.get("kind"))))
    axis, beyond, slowest = box_axis([row["timings_ms"] for row in timed])
    if beyond:
        figure.add_annotation(text=f"{beyond} timed run(s) beyond the axis, not shown (slowest {slowest:.3g} ms)",
                              xref="paper", yref="paper", x=1, y=1.02, xanchor="right", yanchor="bottom",
                              showarrow=False, font={"size": 11, "color": "#555"})
    runtime = next((f"{r['runtime']} {r['runtime_version']}, {r['threads']} thread(s)"
                    for r in rows if r.get("runtime")), "")
    figure.update_layout(title=f"Latency of each timed run ({runtime})", yaxis_title="ms", showlegend=False,
                         height=420)
    figure.update_yaxes(**axis)
    return figure


def per_class_accuracies(row: dict[str, Any], output: str | None = None) -> dict[str, Any] | None:
    """A row's accuracy per class: of its headline output, or of ``output`` (from the row's ``per_output``)."""
    figures = ((row.get("per_output") or {}).get(output) or {}) if output else row
    found = figures.get("per_class_accuracy")
    return found if isinstance(found, dict) and found else None


def _wrapped(names: list[str], per_line: int = 6) -> str:
    """Names joined by commas, a line break every ``per_line`` (an annotation does not wrap by itself)."""
    return ",<br>".join(", ".join(names[i:i + per_line]) for i in range(0, len(names), per_line))


def _no_change_figure(figure: go.Figure, text: str) -> go.Figure:
    """The per-class chart when there is nothing to draw: the reason in words instead of empty axes."""
    figure.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                          font={"size": 15})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="rgba(0,0,0,0)",
                         height=220)
    return figure


def per_class_delta_figure(rows: list[dict[str, Any]], class_names: list[str] | None = None,
                           output: str | None = None) -> go.Figure:
    """Per-class accuracy change of each variant against float32 (classification outputs only): of the
    headline output, or of ``output`` of a model with several outputs. When no variant changed any class
    (or there is no float32 reference), the figure says so in words."""
    reference = next((r for r in rows if r.get("kind") == "float32" and per_class_accuracies(r, output)), None)
    figure = go.Figure()
    title = "Accuracy change per class against float32" + (f" (output {output})" if output else "")
    figure.update_layout(title=title, xaxis_title="class", yaxis_title="percentage points", barmode="group",
                         height=420)
    if reference is None:
        return _no_change_figure(figure, "No per-class accuracy of a float32 reference to compare against.")
    before = per_class_accuracies(reference, output) or {}
    classes = sorted(before, key=int)
    labels = [class_names[int(c)] if class_names and int(c) < len(class_names) else c for c in classes]
    unchanged = []
    for row in rows:
        after = per_class_accuracies(row, output)
        if row is reference or not after:
            continue
        change = [100 * (after.get(c, 0.0) - before[c]) for c in classes]
        if not any(abs(points) > 1e-9 for points in change):
            unchanged.append(str(row["variant"]))
        figure.add_trace(go.Bar(x=labels, y=change, name=row["variant"],
                                marker_color=variant_colour(str(row["variant"]), row.get("kind"))))
    if not figure.data:
        return _no_change_figure(figure, "No variant besides float32 has a per-class accuracy.")
    if len(unchanged) == len(figure.data):
        figure.data = ()
        return _no_change_figure(figure, "<b>No per-class change</b><br>every variant gets each class as right as "
                                         f"float32 does:<br>{_wrapped(unchanged)}")
    if unchanged:
        figure.add_annotation(text=f"No change in any class: {', '.join(unchanged)}", xref="paper", yref="paper",
                              x=0, y=1.02, xanchor="left", yanchor="bottom", showarrow=False,
                              font={"size": 11, "color": "#555"})
    return figure


def layer_error_figure(layers: list[dict[str, Any]]) -> go.Figure:
    """Quantization error of each layer in graph order (RMSE / scale), flagged layers in red, with the level
    of pure rounding noise (1/sqrt(12)) for reference."""
    from optimizer.produce.diagnose import FLAG_FACTOR, NOISE_RMSE_PER_SCALE

    ordered = sorted(layers, key=lambda row: row["graph_order"])
    labels = [f"{row['graph_order']}: {row['op_name']}" for row in ordered]
    figure = go.Figure(go.Bar(
        x=labels, y=[row["rmse_per_scale"] for row in ordered],
        marker={"color": [_FLAG_COLOUR if row["flagged"] else _OK_COLOUR for row in ordered]},
        customdata=[[row["tensor_name"], row["sensitivity_rank"]] for row in ordered],
        hovertemplate="%{customdata[0]}<br>RMSE/scale %{y:.3f}<br>rank %{customdata[1]}<extra></extra>"))
    figure.add_hline(y=NOISE_RMSE_PER_SCALE, line_dash="dot", annotation_text="rounding noise 1/sqrt(12)")
    figure.add_hline(y=FLAG_FACTOR * NOISE_RMSE_PER_SCALE, line_dash="dash", line_color=_FLAG_COLOUR,
                     annotation_text="flag threshold")
    figure.update_layout(title="int8 error by layer (graph order)", yaxis_title="RMSE / quantization scale",
                         height=420)
    return figure


def search_curve_figure(curve: list[dict[str, Any]], float_accuracy: float) -> go.Figure:
    """Accuracy recovered, and what it costs in size and latency, per number of layers kept float
    (three stacked panels sharing the x axis, each metric on its own scale)."""
    from plotly.subplots import make_subplots

    ks = [point["float_layers"] for point in curve]
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                           subplot_titles=("accuracy", "size (bytes)", "latency p50 (ms)"))
    figure.add_trace(go.Scatter(x=ks, y=[p["accuracy"] for p in curve], mode="lines+markers", name="accuracy"),
                     row=1, col=1)
    figure.add_hline(y=float_accuracy, line_dash="dot", annotation_text="float32", row=1, col=1)
    figure.add_trace(go.Scatter(x=ks, y=[p["size_bytes"] for p in curve], mode="lines+markers", name="size"),
                     row=2, col=1)
    figure.add_trace(go.Scatter(x=ks, y=[p.get("latency_ms_p50") for p in curve], mode="lines+markers",
                                name="latency p50"), row=3, col=1)
    figure.update_xaxes(title_text="layers kept float (k)", dtick=1, row=3, col=1)
    figure.update_yaxes(range=list(percent_range([p["accuracy"] for p in curve] + [float_accuracy])),
                        tickformat=".1%", row=1, col=1)
    figure.update_layout(title="Selective quantization: cost and recovery per layer kept float", height=620,
                         showlegend=False)
    return figure


def calibration_study_figure(points: list[dict[str, Any]], float_accuracy: float | None = None) -> go.Figure:
    """Full-int8 accuracy against the number of calibration samples, one marker per seed."""
    figure = go.Figure(go.Scatter(
        x=[p["calibration_samples"] for p in points], y=[p["accuracy"] for p in points], mode="markers",
        text=[f"seed {p['seed']}" for p in points], marker={"size": 10, "color": variant_colour("int8")},
        name="int8", hovertemplate="%{x} samples, %{text}: %{y:.2%}<extra></extra>"))
    if float_accuracy is not None:
        figure.add_hline(y=float_accuracy, line_dash="dot", annotation_text="float32")
    accuracies = [p["accuracy"] for p in points] + ([float_accuracy] if float_accuracy is not None else [])
    figure.update_layout(title="int8 accuracy by calibration set size", xaxis_title="calibration samples",
                         xaxis_type="log", yaxis_title="accuracy", height=400)
    figure.update_yaxes(range=list(percent_range(accuracies)), tickformat=".1%")
    return figure
