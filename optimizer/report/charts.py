"""Pure plot builders: result rows (a DataFrame) in, ``plotly.graph_objects.Figure`` out.

They know which metrics are lower-is-better, draw the Pareto front, and grey out what fails a budget, so
the app, the HTML report and scripts draw the same charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from optimizer.errors import InvalidOption


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
_OK_COLOUR, _OUT_COLOUR, _FRONT_COLOUR, _PICK_COLOUR = "#1f77b4", "#c7c7c7", "#d62728", "#2ca02c"


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


@dataclass(frozen=True)
class Budget:
    """Limits a variant must meet to be shippable; None means no limit."""

    max_size_bytes: float | None = None
    max_latency_ms_p95: float | None = None
    max_accuracy_drop: float | None = None  # in accuracy units (0.01 = one point)

    def passes(self, frame: pd.DataFrame) -> pd.Series:
        mask = pd.Series(True, index=frame.index)
        if self.max_size_bytes is not None:
            mask &= frame["size_bytes"] <= self.max_size_bytes
        if self.max_latency_ms_p95 is not None:
            mask &= frame["latency_ms_p95"] <= self.max_latency_ms_p95
        if self.max_accuracy_drop is not None and "accuracy_delta" in frame and frame["accuracy_delta"].notna().any():
            mask &= frame["accuracy_delta"].fillna(-1.0) >= -self.max_accuracy_drop
        return mask


def recommend(frame: pd.DataFrame, budget: Budget) -> str | None:
    """The measured variant within budget with the lowest p95 latency (smaller file breaks ties)."""
    data = measured(frame)
    data = data[budget.passes(data)]
    if data.empty:
        return None
    return str(data.sort_values(["latency_ms_p95", "size_bytes"]).iloc[0]["variant"])


def tradeoff_figure(frame: pd.DataFrame, x: str, y: str, budget: Budget | None = None,
                    bubble: str | None = None) -> go.Figure:
    """One point per measured variant, the Pareto front as a line, budget failures in grey, the
    recommended variant ringed; ``x`` and ``y`` name the columns to plot (any :func:`metric_of` knows, such as
    ``"ink: mae"``), ``bubble`` sizes points by another column (e.g. file size)."""
    x_metric, y_metric = metric_of(x), metric_of(y)
    data = measured(frame).dropna(subset=[x, y])
    budget = budget or Budget()
    inside = budget.passes(data)
    pick = recommend(frame, budget)
    figure = go.Figure()
    for mask, name, colour in ((inside, "within budget", _OK_COLOUR), (~inside, "outside budget", _OUT_COLOUR)):
        part = data[mask]
        if part.empty:
            continue
        marker: dict[str, Any] = {"color": colour, "size": 12, "line": {"width": 1, "color": "#333"}}
        if bubble:
            scale = float(data[bubble].max()) or 1.0
            marker["size"] = (10 + 40 * part[bubble] / scale).tolist()
        figure.add_trace(go.Scatter(
            x=part[x], y=part[y], mode="markers+text", text=part["variant"], textposition="top center",
            name=name, marker=marker, customdata=part[["variant"]],
            hovertemplate=f"%{{customdata[0]}}<br>{x_metric.label}: %{{x}}<br>{y_metric.label}: %{{y}}<extra></extra>"))
    front = pareto_front(data, x_metric, y_metric)
    if len(front) > 1:
        figure.add_trace(go.Scatter(x=front[x], y=front[y], mode="lines", name="Pareto front",
                                    line={"color": _FRONT_COLOUR, "dash": "dash"}, hoverinfo="skip"))
    if pick is not None and pick in set(data["variant"]):
        chosen = data[data["variant"] == pick]
        figure.add_trace(go.Scatter(x=chosen[x], y=chosen[y], mode="markers", name=f"recommended: {pick}",
                                    marker={"size": 26, "color": "rgba(0,0,0,0)",
                                            "line": {"width": 3, "color": _PICK_COLOUR}}, hoverinfo="skip"))
    arrow = {True: " (lower is better)", False: " (higher is better)"}
    figure.update_layout(
        title=f"{y_metric.label} vs {x_metric.label}", xaxis_title=x_metric.label + arrow[x_metric.lower_is_better],
        yaxis_title=y_metric.label + arrow[y_metric.lower_is_better], legend={"orientation": "h", "y": -0.2},
        margin={"t": 50, "b": 40}, height=460)
    return figure


def latency_distribution_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Box plot of every timed run per variant (the spread behind the medians)."""
    figure = go.Figure()
    for row in rows:
        if row.get("status") == "ok" and row.get("timings_ms"):
            figure.add_trace(go.Box(y=row["timings_ms"], name=row["variant"], boxpoints="outliers"))
    runtime = next((f"{r['runtime']} {r['runtime_version']}, {r['threads']} thread(s)"
                    for r in rows if r.get("runtime")), "")
    figure.update_layout(title=f"Latency of each timed run ({runtime})", yaxis_title="ms", showlegend=False,
                         height=420)
    return figure


def per_class_accuracies(row: dict[str, Any], output: str | None = None) -> dict[str, Any] | None:
    """A row's accuracy per class: of its headline output, or of ``output`` (from the row's ``per_output``)."""
    figures = ((row.get("per_output") or {}).get(output) or {}) if output else row
    found = figures.get("per_class_accuracy")
    return found if isinstance(found, dict) and found else None


def per_class_delta_figure(rows: list[dict[str, Any]], class_names: list[str] | None = None,
                           output: str | None = None) -> go.Figure:
    """Per-class accuracy change of each variant against float32 (classification outputs only): of the
    headline output, or of ``output`` of a model with several outputs."""
    reference = next((r for r in rows if r.get("kind") == "float32" and per_class_accuracies(r, output)), None)
    figure = go.Figure()
    if reference is not None:
        before = per_class_accuracies(reference, output) or {}
        classes = sorted(before, key=int)
        labels = [class_names[int(c)] if class_names and int(c) < len(class_names) else c for c in classes]
        for row in rows:
            after = per_class_accuracies(row, output)
            if row is reference or not after:
                continue
            figure.add_trace(go.Bar(x=labels, y=[100 * (after.get(c, 0.0) - before[c]) for c in classes],
                                    name=row["variant"]))
    title = "Accuracy change per class against float32" + (f" (output {output})" if output else "")
    figure.update_layout(title=title, xaxis_title="class", yaxis_title="percentage points", barmode="group",
                         height=420)
    return figure


def layer_error_figure(layers: list[dict[str, Any]]) -> go.Figure:
    """Quantization error of each layer in graph order (RMSE / scale), flagged layers in red, with the level
    of pure rounding noise (1/sqrt(12)) for reference."""
    from optimizer.produce.diagnose import FLAG_FACTOR, NOISE_RMSE_PER_SCALE

    ordered = sorted(layers, key=lambda row: row["graph_order"])
    labels = [f"{row['graph_order']}: {row['op_name']}" for row in ordered]
    figure = go.Figure(go.Bar(
        x=labels, y=[row["rmse_per_scale"] for row in ordered],
        marker={"color": [_FRONT_COLOUR if row["flagged"] else _OK_COLOUR for row in ordered]},
        customdata=[[row["tensor_name"], row["sensitivity_rank"]] for row in ordered],
        hovertemplate="%{customdata[0]}<br>RMSE/scale %{y:.3f}<br>rank %{customdata[1]}<extra></extra>"))
    figure.add_hline(y=NOISE_RMSE_PER_SCALE, line_dash="dot", annotation_text="rounding noise 1/sqrt(12)")
    figure.add_hline(y=FLAG_FACTOR * NOISE_RMSE_PER_SCALE, line_dash="dash", line_color=_FRONT_COLOUR,
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
    figure.update_layout(title="Selective quantization: cost and recovery per layer kept float", height=620,
                         showlegend=False)
    return figure


def calibration_study_figure(points: list[dict[str, Any]], float_accuracy: float | None = None) -> go.Figure:
    """Full-int8 accuracy against the number of calibration samples, one marker per seed."""
    figure = go.Figure(go.Scatter(
        x=[p["calibration_samples"] for p in points], y=[p["accuracy"] for p in points], mode="markers",
        text=[f"seed {p['seed']}" for p in points], marker={"size": 10}, name="int8"))
    if float_accuracy is not None:
        figure.add_hline(y=float_accuracy, line_dash="dot", annotation_text="float32")
    figure.update_layout(title="int8 accuracy by calibration set size", xaxis_title="calibration samples",
                         xaxis_type="log", yaxis_title="accuracy", height=400)
    return figure
