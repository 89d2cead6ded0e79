"""Compare: results table, trade-off charts with the Pareto front and budgets, distributions, audit, downloads."""

import json
from pathlib import Path

import streamlit as st

from optimizer.report.charts import (
    Budget,
    calibration_study_figure,
    latency_distribution_figure,
    layer_error_figure,
    measured,
    per_class_delta_figure,
    quality_metric,
    recommend,
    search_curve_figure,
    tradeoff_figure,
)
from optimizer.report.html import html_report
from optimizer.report.results import to_frame
from ui import services, widgets

st.set_page_config(page_title="Compare", layout="wide")
st.title("Compare")
store = services.store()
followed = widgets.followed_run(store)
records = store.list()
if not records:
    st.info("No run yet. Run the default comparison from the Home page.")
    st.stop()
default = followed or next((r["id"] for r in records if widgets.has_results(r)), None)
record = widgets.pick_run(store, "Run", key="compare_run", default=default)
if record is None or not widgets.has_results(record):
    if record is not None:
        widgets.run_outcome(record)
    st.stop()

rows, manifest = record["rows"], record["manifest"] or {}
frame = to_frame(rows)
quality = quality_metric(frame)
runtime = next((f"{r['runtime']} {r.get('runtime_version', '')}" for r in rows if r.get("runtime")), "")
st.caption(f"Model `{record['model_name']}` · {manifest.get('cpu', '')} · {runtime} · "
           f"{manifest.get('threads', 1)} thread(s) · data: {(manifest.get('data') or {}).get('source', '')}")
if record["status"] != "done":
    st.warning(f"Run {record['id']} {record['status']}: {record.get('error') or 'no reason was recorded'}. "
               "Shown: the variants measured before it stopped.")
failed = widgets.failed_variants(record)
if failed:
    st.warning(f"{len(failed)} variant(s) did not come out: " +
               "; ".join(f"{f['variant']} ({f['status']}): {f['error'] or 'no reason recorded'}" for f in failed))

with st.expander("Budget", expanded=True):
    left, middle, right = st.columns(3)
    max_kb = left.number_input("Max file size (KB)", min_value=0.0, value=None, key="budget_size_kb")
    max_ms = middle.number_input("Max p95 latency (ms)", min_value=0.0, value=None, key="budget_p95_ms")
    max_drop = right.number_input("Max accuracy drop (points)", min_value=0.0, value=None, key="budget_drop")
budget = Budget(max_size_bytes=max_kb * 1024 if max_kb is not None else None, max_latency_ms_p95=max_ms,
                max_accuracy_drop=max_drop / 100 if max_drop is not None else None)
pick = recommend(frame, budget)
st.markdown(f"**Recommended:** `{pick}` (lowest p95 latency within budget)" if pick
            else "**No variant meets the budget.**")

table = widgets.results_frame(rows)
table.insert(1, "within_budget", budget.passes(frame).where(frame["status"] == "ok", False).values)
st.dataframe(table, hide_index=True, key="results_table")

charts = {"Size vs latency": ("size_bytes", "latency_ms_p50", None)}
if quality is not None:
    charts[f"Latency vs {quality.column}"] = ("latency_ms_p50", quality.column, None)
    charts[f"Size vs {quality.column}"] = ("size_bytes", quality.column, None)
    charts["Combined (bubble = file size)"] = ("latency_ms_p50", quality.column, "size_bytes")
for tab, (x, y, bubble) in zip(st.tabs(list(charts)), charts.values(), strict=True):
    if measured(frame).dropna(subset=[x, y]).empty:
        tab.caption(f"No measured variant has both {x} and {y}.")
    else:
        tab.plotly_chart(tradeoff_figure(frame, x, y, budget, bubble=bubble), key=f"chart_{x}_{y}_{bubble}")

st.plotly_chart(latency_distribution_figure(rows), key="chart_latency_distribution")
if any(r.get("per_class_accuracy") for r in rows):
    st.plotly_chart(per_class_delta_figure(rows, (manifest.get("data") or {}).get("class_names")),
                    key="chart_per_class")

st.subheader("Is the difference real?")
st.caption("Against float32 on the same evaluation samples: exact McNemar test on per-sample correctness, a "
           "paired bootstrap 95% interval of the accuracy change, and 95% intervals of the latency medians "
           "(overlapping intervals are 'same', never faster or slower).")
significance = [c for c in ["variant", "accuracy_delta", "accuracy_delta_ci_low", "accuracy_delta_ci_high", "mcnemar_p",
                            "accuracy_verdict", "flips", "latency_ms_p50", "latency_ms_p50_ci_low",
                            "latency_ms_p50_ci_high", "latency_verdict"] if c in frame.columns]
st.dataframe(frame[significance], hide_index=True)
flipped = [r for r in rows if r.get("flips")]
if flipped:
    chosen_flip = st.selectbox("Prediction flips of", [r["variant"] for r in flipped], key="flip_variant")
    flip_row = next(r for r in flipped if r["variant"] == chosen_flip)
    st.write({"flips by true class": flip_row.get("flips_by_class")})
    reference_name = next((r["variant"] for r in rows if r.get("kind") == "float32"), "float32")
    widgets.flip_gallery(store.job_dir(record["id"]), flip_row, reference_name,
                         (manifest.get("data") or {}).get("class_names"))

for row in rows:
    analysis = row.get("analysis")
    if not analysis:
        continue
    st.subheader(f"Diagnosis: {row['variant']}")
    if analysis.get("per_tensor"):
        st.caption("ai-edge-quantizer's validation: every tensor against the float model, lowest SNR first.")
        st.dataframe(analysis["per_tensor"], hide_index=True)
        continue
    search = analysis["search"]
    if search.get("chosen"):
        st.success(f"Keeping {len(search['chosen']['layers'])} layer(s) float brings the accuracy drop to "
                   f"{search['chosen']['accuracy_drop'] * 100:.2f} points (budget {search['budget'] * 100:.2f}).")
    else:
        st.warning(f"Budget not met: {search.get('reason')}")
    st.dataframe(sorted(analysis["layers"], key=lambda r: r["sensitivity_rank"]), hide_index=True)
    st.plotly_chart(layer_error_figure(analysis["layers"]), key=f"layers_{row['variant']}")
    st.plotly_chart(search_curve_figure(search["curve"], analysis["float_accuracy"]), key=f"curve_{row['variant']}")
    if analysis.get("calibration_study"):
        st.plotly_chart(calibration_study_figure(analysis["calibration_study"], analysis["float_accuracy"]),
                        key=f"study_{row['variant']}")

st.subheader("Op audit")
for row in rows:
    audit = row.get("audit")
    if not audit:
        continue
    verdict = "integer only" if audit["integer_only"] else f"float compute in {len(audit['float_compute_ops'])} op(s)"
    with st.expander(f"{row['variant']}: {verdict}; inputs {audit['input_dtypes']}, outputs {audit['output_dtypes']}"):
        st.write({"ops": audit["op_counts"], "activation dtypes": audit["activation_dtypes"],
                  "weight dtypes": audit["weight_dtypes"], "float compute ops": audit["float_compute_ops"]})

st.subheader("Recipes")
st.caption("Each variant's exact Python code, runnable outside this tool from the run folder (`variants/<name>.py`).")
with_recipe = [r for r in rows if r.get("recipe_path") and (store.job_dir(record["id"]) / r["recipe_path"]).is_file()]
if with_recipe:
    recipe_variant = st.selectbox("Recipe of", [r["variant"] for r in with_recipe], key="recipe_variant")
    recipe_row = next(r for r in with_recipe if r["variant"] == recipe_variant)
    recipe_text = (store.job_dir(record["id"]) / recipe_row["recipe_path"]).read_text()
    st.download_button(f"Download {recipe_variant}.py", recipe_text, file_name=f"{recipe_variant}.py",
                       key="download_recipe")
    with st.expander("Show the code", expanded=not recipe_row.get("training")):
        st.code(recipe_text if len(recipe_text) < 20_000 else recipe_text[:20_000] + "\n# ... (download for the rest)",
                language="python")

st.subheader("Downloads")
job_dir = store.job_dir(record["id"])
produced = [r for r in rows if r.get("path") and (job_dir / r["path"]).is_file()]
if produced:
    name = st.selectbox("Variant file", [r["variant"] for r in produced], key="download_variant")
    path = job_dir / next(r["path"] for r in produced if r["variant"] == name)
    st.download_button(f"Download {Path(path).name}", path.read_bytes(), file_name=f"{name}.tflite",
                       key="download_tflite")
cols = st.columns(3)
cols[0].download_button("Results CSV", to_frame(rows).to_csv(index=False), file_name="results.csv",
                        mime="text/csv", key="download_csv")
cols[1].download_button("Results JSON", json.dumps({"manifest": manifest, "rows": rows}, indent=2, default=str),
                        file_name="results.json", mime="application/json", key="download_json")
cols[2].download_button("HTML report", html_report(rows, manifest, budget), file_name="report.html",
                        mime="text/html", key="download_report")
