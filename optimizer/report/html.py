"""A self-contained HTML report of one run: the table, the trade-off charts and the manifest."""

from __future__ import annotations

import html
import json
from typing import Any

import plotly.io as pio

from optimizer.report.charts import (
    Budget,
    latency_distribution_figure,
    per_class_accuracies,
    per_class_delta_figure,
    quality_metric,
    tradeoff_figure,
)
from optimizer.report.results import per_output_columns, to_frame

REPORT_COLUMNS = ["variant", "status", "size_bytes", "gzip_bytes", "latency_ms_p50", "latency_ms_p95",
                  "memory_peak_bytes", "accuracy", "mae", "accuracy_delta", "fidelity_top1_agreement",
                  "fidelity_snr_db", "integer_only", "conversion_s", "error"]


def html_report(rows: list[dict[str, Any]], manifest: dict[str, Any], budget: Budget | None = None,
                output: str | None = None) -> str:
    """The report page; the quality charts plot the run's accuracy output, or ``output`` of a model with several
    outputs (whose table also has each output's column group, ``"<output>: <figure>"``)."""
    frame = to_frame(rows)
    quality = quality_metric(frame, output) or quality_metric(frame)
    figures = [tradeoff_figure(frame, "size_bytes", "latency_ms_p50", budget)]
    if quality is not None:
        figures += [tradeoff_figure(frame, "latency_ms_p50", quality.column, budget),
                    tradeoff_figure(frame, "size_bytes", quality.column, budget)]
    figures.append(latency_distribution_figure(rows))
    if any(per_class_accuracies(r, output) for r in rows):
        figures.append(per_class_delta_figure(rows, (manifest.get("data") or {}).get("class_names"), output))
    charts = [pio.to_html(f, full_html=False, include_plotlyjs="inline" if i == 0 else False)
              for i, f in enumerate(figures)]
    known = REPORT_COLUMNS[:-2] + list(per_output_columns(rows)) + REPORT_COLUMNS[-2:]
    columns = [c for c in known if c in frame.columns and frame[c].notna().any()]
    table = frame[columns].to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)
    model = manifest.get("model", {})
    title = f"TFLite Optimization Studio report: {html.escape(str(model.get('file_name', 'model')))}"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}}pre{{background:#f6f6f6;padding:1em}}</style>
</head><body><h1>{title}</h1>
<p>Created {html.escape(str(manifest.get('created_at', '')))}; CPU {html.escape(str(manifest.get('cpu', '')))};
threads {manifest.get('threads', '')}.</p>
{table}
{''.join(charts)}
<h2>Manifest</h2><pre>{html.escape(json.dumps(manifest, indent=2, default=str))}</pre>
</body></html>"""
