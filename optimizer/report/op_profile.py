"""Where the time goes, per op: LiteRT's per-op profiles of every variant on one table, one chart, and sentences
that explain why a variant is slower than float32.

Pure functions of result rows (each with ``row["op_profile"]``, the result of
``optimizer.targets.op_profile.profile_ops``). Ops are aligned across variants by op type and position (the
k-th ``XNNPACK/Convolution`` of int8 sits on the row of the k-th one of float32): output tensor names differ
between conversions, and the ops a quantized variant adds (QUANTIZE, XNNPACK ``Convert``) get rows of their own.
"""

from __future__ import annotations

import html
import zlib
from collections import defaultdict
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative

REFERENCE = "float32"
# Ops that only move data between float and integer: their time is the price of quantizing at the edges.
CONVERSION_OPS = {"QUANTIZE", "DEQUANTIZE", "XNNPACK/Convert"}
# XNNPACK kernel tags and what they mean for the reader.
_KERNEL_NOTES = {"QDU8": "activations quantized on the fly at every run (dynamic range)",
                 "QD8": "activations quantized on the fly at every run (dynamic range)",
                 "F16": "float16 arithmetic", "QC8": "int8 arithmetic", "QS8": "int8 arithmetic",
                 "QU8": "uint8 arithmetic", "F32": "float32 arithmetic"}
_PALETTE = qualitative.Dark24 + qualitative.Light24


def profiled(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(variant name, op profile) of the rows that carry one, in row order."""
    return [(str(row.get("variant")), row["op_profile"]) for row in rows
            if isinstance(row.get("op_profile"), dict) and row["op_profile"].get("ops")]


def _keyed(profile: dict[str, Any]) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    """((op type, k), op) per op in execution order, k counting that type's occurrences from 1."""
    seen: dict[str, int] = defaultdict(int)
    keyed = []
    for op in profile["ops"]:
        seen[op["op"]] += 1
        keyed.append(((op["op"], seen[op["op"]]), op))
    return keyed


def aligned_op_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per op (type + position) across variants, one ``"<variant> ms"`` column per variant (empty where
    a variant has no such op), then the sum of the ops and the invoke time with the profiler off."""
    variants = profiled(rows)
    order: list[tuple[str, int]] = []
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for variant, profile in variants:
        for key, op in _keyed(profile):
            if key not in cells:
                order.append(key)
                cells[key] = {"op": key[0], "#": key[1], "name": op.get("name", ""),
                              "delegated": bool(op.get("delegated"))}
            cells[key][f"{variant} ms"] = float(op["ms"])
    table = pd.DataFrame([cells[key] for key in order],
                         columns=["op", "#", "name", "delegated"] + [f"{v} ms" for v, _ in variants])
    totals = [{"op": "all ops", **{f"{v} ms": float(p.get("ops_total_ms", sum(o["ms"] for o in p["ops"])))
                                   for v, p in variants}},
              {"op": "invoke (profiler off)", **{f"{v} ms": p.get("invoke_ms") for v, p in variants}}]
    return pd.concat([table, pd.DataFrame(totals)], ignore_index=True) if variants else table


def op_type_colour(op: str) -> str:
    """The same colour for an op type in every chart (a hash of its name)."""
    return str(_PALETTE[zlib.crc32(op.encode()) % len(_PALETTE)])


def op_type_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Stacked bars, one per variant: its mean time per invoke split by op type (largest types at the bottom)."""
    variants = profiled(rows)
    totals: dict[str, float] = defaultdict(float)
    for _, profile in variants:
        for entry in profile["by_type"]:
            totals[entry["op"]] += entry["ms"]
    figure = go.Figure()
    names = [v for v, _ in variants]
    for op in sorted(totals, key=lambda o: -totals[o]):
        by_variant = {v: next((e["ms"] for e in p["by_type"] if e["op"] == op), 0.0) for v, p in variants}
        figure.add_bar(name=op, x=names, y=[by_variant[v] for v in names], marker_color=op_type_colour(op),
                       hovertemplate=f"{op}<br>%{{x}}: %{{y:.4f}} ms<extra></extra>")
    figure.update_layout(barmode="stack", title="Where the time goes (LiteRT per-op profile)",
                         yaxis_title="mean ms per invoke", xaxis_title="variant", legend_title="op type")
    return figure


def _by_type(profile: dict[str, Any]) -> dict[str, float]:
    return {entry["op"]: float(entry["ms"]) for entry in profile["by_type"]}


def kernel_note(kernel: str) -> str:
    """What an XNNPACK kernel name says about the arithmetic: 'Convolution (NHWC, QDU8, F32, QC8W) IGEMM' ->
    'activations quantized on the fly ...'; '' when it says nothing we can name."""
    tags = kernel.partition("(")[2].partition(")")[0].replace(" ", "").split(",")
    for tag in ("QDU8", "QD8", "F16", "QC8", "QS8", "QU8"):
        if tag in tags:
            return _KERNEL_NOTES[tag]
    return ""


def _extra_ops_sentence(variant: str, profile: dict[str, Any], reference_profile: dict[str, Any]) -> str | None:
    """The op types the reference never runs (e.g. XNNPACK/Convert, QUANTIZE): what quantizing adds."""
    reference = _by_type(reference_profile)
    total = float(profile.get("ops_total_ms") or sum(o["ms"] for o in profile["ops"])) or 1.0
    reference_ops = set(reference) | set(reference_profile.get("model_op_counts") or {})
    extra = {op: ms for op, ms in _by_type(profile).items() if op not in reference_ops and ms > 0}
    if not extra:
        return None
    ms = sum(extra.values())
    kinds = ", ".join(sorted(extra, key=lambda o: -extra[o]))
    conversion = " (conversions between float and int8 at the edges)" if set(extra) & CONVERSION_OPS else ""
    return (f"{variant}: {ms / total:.0%} of its time in {kinds} ({ms:.3g} ms), ops {REFERENCE} does not "
            f"have{conversion}.")


def _slower_types_sentence(variant: str, profile: dict[str, Any], reference: dict[str, float]) -> str | None:
    mine = _by_type(profile)
    deltas = {op: mine[op] - reference[op] for op in mine if op in reference and mine[op] > reference[op]}
    if not deltas:
        return None
    op = max(deltas, key=lambda o: deltas[o])
    kernels = {o["kernel"] for o in profile["ops"] if o["op"] == op and o.get("kernel")}
    notes = sorted({kernel_note(k) for k in kernels} - {""})
    how = f" (kernel {', '.join(sorted(kernels))}: {'; '.join(notes)})" if notes else ""
    return (f"{variant}: {op} takes {mine[op]:.3g} ms per invoke against {reference[op]:.3g} ms in {REFERENCE}"
            f"{how}.")


def _fallback_sentence(variant: str, profile: dict[str, Any], reference_profile: dict[str, Any]) -> str | None:
    """Op types this variant runs in the interpreter that the reference does not (e.g. a hybrid kernel XNNPACK
    does not take)."""
    mine = {o["op"] for o in profile.get("fallback_ops", [])}
    theirs = {o["op"] for o in reference_profile.get("fallback_ops", [])}
    new = sorted(mine - theirs)
    if not new:
        return None
    ms = sum(o["ms"] for o in profile["ops"] if not o.get("delegated") and o["op"] in new)
    in_reference = set(reference_profile.get("model_op_counts") or {})
    where = (f"where {REFERENCE} runs them in XNNPACK" if set(new) <= in_reference
             else f"ops {REFERENCE} runs in XNNPACK or does not have")
    return f"{variant}: {', '.join(new)} run in the interpreter, outside XNNPACK ({ms:.3g} ms), {where}."


def explain_slowdowns(rows: list[dict[str, Any]]) -> list[str]:
    """For each variant slower than float32 (by ``latency_ms_p50``), where its extra time goes, in sentences;
    nothing when no profiled variant is slower."""
    by_name = {str(r.get("variant")): r for r in rows}
    reference_row = by_name.get(REFERENCE)
    profiles = dict(profiled(rows))
    if reference_row is None or REFERENCE not in profiles or reference_row.get("latency_ms_p50") is None:
        return []
    reference_profile, reference_ms = profiles[REFERENCE], float(reference_row["latency_ms_p50"])
    reference = _by_type(reference_profile)
    sentences = []
    for variant, profile in profiles.items():
        latency = by_name[variant].get("latency_ms_p50")
        if variant == REFERENCE or latency is None or float(latency) <= reference_ms:
            continue
        mine_total = float(profile.get("ops_total_ms", 0))
        their_total = float(reference_profile.get("ops_total_ms", 0))
        if mine_total <= their_total:
            sentences.append(f"{variant}: its ops take no longer than {REFERENCE}'s in the profile ({mine_total:.3g}"
                             f" vs {their_total:.3g} ms), so its higher latency ({float(latency):.3g} vs "
                             f"{reference_ms:.3g} ms) comes from outside the ops or from noise.")
            continue
        sentences += [s for s in (_extra_ops_sentence(variant, profile, reference_profile),
                                  _slower_types_sentence(variant, profile, reference),
                                  _fallback_sentence(variant, profile, reference_profile)) if s]
    return sentences


def op_profile_html(rows: list[dict[str, Any]]) -> str:
    """The report's section: the explanations, the chart (plotly.js comes with the report's first chart) and
    the aligned table; '' for a run without per-op profiles."""
    variants = profiled(rows)
    if not variants:
        return ""
    sentences = "".join(f"<li>{html.escape(s)}</li>" for s in explain_slowdowns(rows))
    table = aligned_op_table(rows).to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)
    return (f"<h2>Where the time goes (per-op profile)</h2><p>{html.escape(str(variants[0][1].get('mechanism')))}"
            f", mean ms per invoke on the local machine.</p><ul>{sentences}</ul>"
            f"{pio.to_html(op_type_figure(rows), full_html=False, include_plotlyjs=False)}{table}")
