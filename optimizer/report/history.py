"""What History shows of stored runs: one line per run (date, duration, model, kinds, status), and what differs
between two runs: their inputs, options, versions and machine, and their variants' key figures.

Both read a run store record or a :class:`~optimizer.report.results.StoredRun` and return plain rows and tables
of text, so the page only lays them out.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import pandas as pd

from optimizer.report.format import format_bytes, format_latency, format_number, format_percent, format_points
from optimizer.report.results import StoredRun

# The figures of each variant compared between two runs, in this order.
KEY_FIGURES = ("status", "size_bytes", "gzip_bytes", "latency_ms_p50", "latency_ms_p95", "accuracy", "mae",
               "fidelity_top1_agreement", "fidelity_snr_db")
_FRACTIONS = {"accuracy", "fidelity_top1_agreement"}
# Manifest fields that are not settings (timings, the request with its per-run paths) or that another group
# already compares (options, variants, versions; the model's name and hash are among the inputs).
_NOT_COMPARED = {"created_at", "wall_time_s", "step_s", "export_s", "request", "options", "variants", "kinds",
                 "versions", "threads", "seeds"}
_NOT_COMPARED_MODEL = {"file_name", "sha256", "file_size_bytes"}
SETTINGS_GROUPS = ("inputs", "options", "variants", "versions", "run")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(float(value)) else float(value)


def duration_text(seconds: float | None) -> str:
    """A run's duration as people read it: "8.4 s", "3 min 05 s", "1 h 02 min"; "" when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _kinds(record: dict[str, Any]) -> str:
    """The kinds of a run's variants, in order: from its rows, else what it was asked for."""
    manifest = record.get("manifest") or {}
    specs = [r for r in record.get("rows") or [] if isinstance(r, dict)] or manifest.get("variants") \
        or (record.get("options") or {}).get("variants") or []
    kinds = [str(spec.get("kind") or "") for spec in specs if isinstance(spec, dict)]
    return ", ".join(dict.fromkeys(k for k in kinds if k)) or "default"


def run_overview(record: dict[str, Any]) -> dict[str, Any]:
    """History's line for one stored run: id, date (local time), duration (the manifest's ``wall_time_s``, or
    from start to finish for a run that saved no manifest), status, model, kinds, number of variants, the data
    files' names, the model's hash (first 12 digits), error."""
    manifest = record.get("manifest") or {}
    seconds = _number(manifest.get("wall_time_s"))
    started, finished = _number(record.get("started_at")), _number(record.get("finished_at"))
    if seconds is None and started is not None and finished is not None:
        seconds = finished - started
    created = _number(record.get("created_at"))
    inputs = record.get("inputs") or {}
    return {"run": str(record.get("id") or ""),
            "date": datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if created is not None else "",
            "duration": duration_text(seconds), "status": str(record.get("status") or ""),
            "model": str(record.get("model_name") or ""), "kinds": _kinds(record),
            "variants": len(record.get("rows") or []),
            "data": ", ".join(str(v.get("name")) for k, v in inputs.items() if k != "model" and isinstance(v, dict)),
            "model sha256": str((inputs.get("model") or {}).get("sha256") or "")[:12],
            "error": str(record.get("error") or "")}


# --- What differs between two runs -----------------------------------------------------------------------------

def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``{"a.b.c": text}``; lists and numbers as compact JSON text."""
    if isinstance(value, dict) and value:
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: _text(value)} if prefix else {}


def _settings(run: StoredRun) -> dict[str, dict[str, str]]:
    """A run's settings by group, flattened: inputs (names, hashes, sizes), options, variants (names and each
    one's options), versions, and the rest of the manifest (machine, task, data facts, export, model)."""
    manifest = run.manifest
    options = manifest.get("options") or run.options.get("options") or {}
    specs = [s for s in manifest.get("variants") or run.options.get("variants") or [] if isinstance(s, dict)]
    variants = {"variants": ", ".join(str(s.get("name") or s.get("kind")) for s in specs)}
    variants.update(_flat({str(s.get("name") or s.get("kind")): {"kind": s.get("kind"), **(s.get("options") or {})}
                           for s in specs}))
    model = {k: v for k, v in (manifest.get("model") or {}).items() if k not in _NOT_COMPARED_MODEL}
    rest = {k: v for k, v in manifest.items() if k not in _NOT_COMPARED and k != "model"}
    return {"inputs": _flat(run.inputs), "options": _flat(options), "variants": variants,
            "versions": _flat(run.versions or {}), "run": {**_flat(rest), **_flat({"model": model})}}


def settings_diff(first: StoredRun, second: StoredRun) -> pd.DataFrame:
    """The settings of two runs (A and B) that differ, one row per field: group (inputs, options, variants,
    versions, run), field (dotted, e.g. ``data.sha256``), A and B as text ("" where a run has no such field).
    Paths and timings are not settings: never compared."""
    a, b = _settings(first), _settings(second)
    rows = []
    for group in SETTINGS_GROUPS:
        fields = list(dict.fromkeys([*a[group], *b[group]]))
        rows += [{"group": group, "field": field, "A": a[group].get(field, ""), "B": b[group].get(field, "")}
                 for field in fields if a[group].get(field, "") != b[group].get(field, "")]
    return pd.DataFrame(rows, columns=["group", "field", "A", "B"])


def _shown(figure: str, value: Any) -> str:
    if figure == "status":
        return _text(value)
    if figure.endswith("_bytes"):
        return format_bytes(value)
    if figure.startswith("latency_ms"):
        return format_latency(value)
    return format_percent(value, digits=2) if figure in _FRACTIONS else format_number(value, digits=4)


def _change(figure: str, before: Any, after: Any) -> str:
    """B against A: relative for sizes and latencies, in points for accuracies, a difference otherwise."""
    a, b = _number(before), _number(after)
    if a is None or b is None or figure == "status":
        return ""
    if figure in _FRACTIONS:
        return format_points(b - a, digits=2)
    if (figure.endswith("_bytes") or figure.startswith("latency_ms")) and a:
        return f"{100 * (b - a) / a:+.1f}%"
    return f"{b - a:+.4g}"


def figures_diff(first: StoredRun, second: StoredRun, figures: tuple[str, ...] = KEY_FIGURES) -> pd.DataFrame:
    """The key figures of each variant (by name, in either run) that differ between runs A and B: variant,
    figure, A and B as text, and the change (relative for sizes and latencies, points for accuracies).
    A variant only one run has is one row, "only in A" or "only in B"."""
    names = list(dict.fromkeys([v.name for v in first.variants] + [v.name for v in second.variants]))
    a_rows, b_rows = {v.name: v.raw for v in first.variants}, {v.name: v.raw for v in second.variants}
    rows = []
    for name in names:
        if name not in a_rows or name not in b_rows:
            rows.append({"variant": name, "figure": "", "A": "" if name not in a_rows else "present",
                         "B": "" if name not in b_rows else "present",
                         "change": "only in B" if name not in a_rows else "only in A"})
            continue
        for figure in figures:
            before, after = a_rows[name].get(figure), b_rows[name].get(figure)
            if _shown(figure, before) == _shown(figure, after) and _number(before) == _number(after):
                continue
            rows.append({"variant": name, "figure": figure, "A": _shown(figure, before), "B": _shown(figure, after),
                         "change": _change(figure, before, after)})
    return pd.DataFrame(rows, columns=["variant", "figure", "A", "B", "change"])
