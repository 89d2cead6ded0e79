"""A self-contained HTML report of one run: the recommendation and its headline figures, the table for people,
the trade-off charts and the manifest."""

from __future__ import annotations

import html
import json
from typing import Any

import plotly.io as pio

from optimizer.report.charts import (
    latency_distribution_figure,
    per_class_accuracies,
    per_class_delta_figure,
    quality_metric,
    tradeoff_figure,
)
from optimizer.report.op_profile import op_profile_html
from optimizer.report.recommend import Budget, Priority, Recommendation, recommend_variant
from optimizer.report.results import VariantResult, per_output_columns, to_frame
from optimizer.report.tables import human_table

# The report's table: the default columns of the human table plus these (and every output's column group).
REPORT_EXTRAS = ["gzip_bytes", "latency_ms_p95", "memory_peak_bytes", "mae", "fidelity_top1_agreement",
                 "fidelity_snr_db", "integer_only", "conversion_s"]
_TONE_COLOURS = {"good": "#1a7f37", "bad": "#cf222e", "neutral": "#57606a"}


def headline_html(recommendation: Recommendation) -> str:
    """The recommended variant, its one sentence of reasoning and its cards (size, latency, accuracy)."""
    if recommendation.variant is None:
        return f'<h2>No recommendation</h2><p class="reason">{html.escape(recommendation.reason)}</p>'
    cards = "".join(
        f'<div class="card"><div class="label">{html.escape(card.label)}</div>'
        f'<div class="value">{html.escape(card.value)}</div>'
        f'<div class="delta" style="color:{_TONE_COLOURS[card.tone]}">{html.escape(card.delta)}</div></div>'
        for card in recommendation.cards)
    priority = html.escape(recommendation.priority.value)
    return (f"<h2>Recommended: <code>{html.escape(recommendation.variant.name)}</code></h2>"
            f'<p class="reason">{html.escape(recommendation.reason)} <small>(what matters most: {priority})</small>'
            f'</p><div class="cards">{cards}</div>')


def _table_html(rows: list[dict[str, Any]], budget: Budget | None) -> str:
    extra = REPORT_EXTRAS + list(per_output_columns(rows))
    table = human_table(rows, budget, extra)
    for column in table.columns:  # flags as words (a True/False column reads like code)
        if table[column].map(lambda v: isinstance(v, bool)).any():
            table[column] = table[column].map(lambda v: {True: "yes", False: "no"}.get(v, v) if isinstance(v, bool)
                                              else v)
    return str(table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0))


def html_report(rows: list[dict[str, Any]], manifest: dict[str, Any], budget: Budget | None = None,
                output: str | None = None, priority: Priority | str = Priority.SIZE) -> str:
    """The report page: the recommendation by ``priority`` within ``budget`` first, then the table; the quality
    charts plot the run's accuracy output, or ``output`` of a model with several outputs (whose table also has
    each output's column group, ``"<output>: <figure>"``)."""
    frame = to_frame(rows)
    recommendation = recommend_variant([VariantResult.from_row(row) for row in rows], budget, priority)
    quality = quality_metric(frame, output) or quality_metric(frame)
    figures = [tradeoff_figure(frame, "size_bytes", "latency_ms_p50", budget, priority=priority)]
    if quality is not None:
        figures += [tradeoff_figure(frame, "latency_ms_p50", quality.column, budget, priority=priority),
                    tradeoff_figure(frame, "size_bytes", quality.column, budget, priority=priority)]
    figures.append(latency_distribution_figure(rows))
    if any(per_class_accuracies(r, output) for r in rows):
        figures.append(per_class_delta_figure(rows, (manifest.get("data") or {}).get("class_names"), output))
    charts = [pio.to_html(f, full_html=False, include_plotlyjs="inline" if i == 0 else False)
              for i, f in enumerate(figures)]
    table = _table_html(rows, budget)
    model = manifest.get("model", {})
    title = f"TFLite Optimization Studio report: {html.escape(str(model.get('file_name', 'model')))}"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}}pre{{background:#f6f6f6;padding:1em}}
.cards{{display:flex;gap:1em;margin:1em 0 2em}}.card{{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}}
.card .label{{color:#57606a;font-size:.9em}}.card .value{{font-size:1.6em}}.card .delta{{font-size:.9em}}</style>
</head><body><h1>{title}</h1>
<p>Created {html.escape(str(manifest.get('created_at', '')))}; CPU {html.escape(str(manifest.get('cpu', '')))};
threads {manifest.get('threads', '')}.</p>
{headline_html(recommendation)}
{table}
{''.join(charts)}
{op_profile_html(rows)}
<h2>Manifest</h2><pre>{html.escape(json.dumps(manifest, indent=2, default=str))}</pre>
</body></html>"""
