"""Charts of a parameter sweep: each swept option against accuracy, gzip size, size and latency, one line per
kind (and model), float32 as a dashed reference line. Pure: rows in, Plotly figures out.

Which options were swept is read from the rows themselves (an option whose value differs between two rows of
one kind), so a sweep run from the app, the CLI or a search reads the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from optimizer.report.charts import metric_of
from optimizer.report.style import axis_layout, hover_format, variant_colour

SWEEP_FIGURES = ("accuracy", "gzip_bytes", "size_bytes", "latency_ms_p50")
_DASHES = ("solid", "dot", "dash", "longdash", "dashdot")


def swept_options(rows: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """``{kind: [option, ...]}``: the options whose values differ between ok rows of the same kind."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") == "ok" and isinstance(row.get("options"), dict):
            by_kind.setdefault(str(row.get("kind")), []).append(row["options"])
    swept = {}
    for kind, options in by_kind.items():
        names = sorted({name for o in options for name in o
                        if len({repr(other.get(name)) for other in options}) > 1})
        if names:
            swept[kind] = names
    return swept


def _model(row: dict[str, Any]) -> str:
    return str(row.get("model") or "")


def parameter_figure(rows: Sequence[dict[str, Any]], option: str, figure: str) -> go.Figure:
    """``figure`` against ``option``: one line per kind that sweeps it (one dash style per model), points
    sorted by the option's value; float32's value as a dashed horizontal line per model."""
    metric = metric_of(figure)
    swept = swept_options(rows)
    models = list(dict.fromkeys(_model(r) for r in rows))
    chart = go.Figure()
    values: list[float | None] = []
    for kind in (k for k, names in swept.items() if option in names):
        for model_index, model in enumerate(models):
            points = sorted(((r["options"][option], r.get(figure), r["variant"]) for r in rows
                             if str(r.get("kind")) == kind and _model(r) == model and r.get("status") == "ok"
                             and r.get(figure) is not None), key=lambda p: p[0])
            if not points:
                continue
            values += [p[1] for p in points]
            chart.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                name=f"{kind}" + (f" ({model})" if len(models) > 1 else ""), customdata=[[p[2]] for p in points],
                line={"color": variant_colour(kind, kind), "dash": _DASHES[model_index % len(_DASHES)]},
                hovertemplate=f"%{{customdata[0]}}<br>{option}: %{{x}}<br>{metric.label}: "
                              f"%{{y:{hover_format(figure)}}}<extra></extra>"))
    for model_index, model in enumerate(models):
        reference = next((r.get(figure) for r in rows if r.get("kind") == "float32" and _model(r) == model
                          and r.get(figure) is not None), None)
        if reference is not None:
            values.append(reference)
            chart.add_hline(y=reference, line={"color": variant_colour("float32"), "dash": "dash", "width": 1},
                            annotation_text="float32" + (f" ({model})" if len(models) > 1 else ""),
                            annotation_position="top left" if model_index % 2 == 0 else "bottom left")
    arrow = " (lower is better)" if metric.lower_is_better else " (higher is better)"
    chart.update_layout(title=f"{metric.label} by {option}", xaxis_title=option, yaxis_title=metric.label + arrow,
                        height=380, margin={"t": 50, "b": 40}, legend={"orientation": "h", "y": -0.25})
    chart.update_yaxes(**axis_layout(figure, values))
    return chart


def sweep_figures(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, go.Figure]]:
    """Every (option, figure, chart) of a sweep: each swept option against each of SWEEP_FIGURES the rows have."""
    options = list(dict.fromkeys(name for names in swept_options(rows).values() for name in names))
    present = [f for f in SWEEP_FIGURES if any(r.get(f) is not None for r in rows)]
    return [(option, figure, parameter_figure(rows, option, figure)) for option in options for figure in present]
