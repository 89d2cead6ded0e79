"""Compare: the recommended variant and its headline figures, the results table, trade-off charts with the Pareto
front and budgets, distributions, audit, downloads."""

import functools

import streamlit as st

from optimizer.report.charts import (
    calibration_study_figure,
    latency_distribution_figure,
    layer_error_figure,
    measured,
    per_class_accuracies,
    per_class_delta_figure,
    quality_metric,
    scored_outputs,
    search_curve_figure,
    tradeoff_figure,
)
from optimizer.report.html import html_report
from optimizer.report.recommend import Budget, recommend_variant
from optimizer.report.results import has_results, per_output_columns
from ui import services, widgets

st.set_page_config(page_title="Compare", layout="wide")
st.title("Compare")
store = services.store()
followed = widgets.followed_run(store)
records = store.list()
if not records:
    st.info("No run yet. Run the default comparison from the Home page.")
    st.stop()
default = followed or next((r["id"] for r in records if has_results(r)), None)
record = widgets.pick_run(store, "Run", key="compare_run", default=default)
if record is None:
    st.stop()
run = widgets.stored_run(store, record)
if not run.has_results:
    widgets.run_outcome(run)
    st.stop()

frame = run.frame()
st.caption(f"Model `{run.model_name}` · {run.environment.describe()}")
if not run.finished:
    st.warning(f"Run {run.id} {run.status}: {run.error or 'no reason was recorded'}. "
               "Shown: the variants measured before it stopped.")
if run.failures:
    st.warning(f"{len(run.failures)} variant(s) did not come out: " +
               "; ".join(f"{f.variant} ({f.status}): {f.reason}" for f in run.failures))

headline = st.container()  # filled once the priority and the budget below are read
priority_column, size_column, latency_column, drop_column = st.columns(4)
priority = widgets.priority_select(priority_column)
max_kb = size_column.number_input("Max file size (KB)", min_value=0.0, value=None, key="budget_size_kb")
max_ms = latency_column.number_input("Max p95 latency (ms)", min_value=0.0, value=None, key="budget_p95_ms")
max_drop = drop_column.number_input("Max accuracy drop (points)", min_value=0.0, value=None, key="budget_drop")
budget = Budget(max_size_bytes=max_kb * 1024 if max_kb is not None else None, max_latency_ms_p95=max_ms,
                max_accuracy_drop=max_drop / 100 if max_drop is not None else None)
with headline:
    widgets.recommendation_headline(run, recommend_variant(run.variants, budget, priority))
widgets.row_warnings(run)
if per_output_columns(run.rows):
    st.caption(widgets.per_output_caption(run))
widgets.results_table(run, budget)

axis_output = widgets.accuracy_axis_output(run, scored_outputs(frame))  # None: a model with one output
quality = quality_metric(frame, axis_output)
charts = {"Size vs latency": ("size_bytes", "latency_ms_p50", None)}
if quality is not None:
    charts[f"Latency vs {quality.column}"] = ("latency_ms_p50", quality.column, None)
    charts[f"Size vs {quality.column}"] = ("size_bytes", quality.column, None)
    charts["Combined (bubble = file size)"] = ("latency_ms_p50", quality.column, "size_bytes")
for tab, (x, y, bubble) in zip(st.tabs(list(charts)), charts.values(), strict=True):
    if measured(frame).dropna(subset=[x, y]).empty:
        tab.caption(f"No measured variant has both {x} and {y}.")
    else:
        tab.plotly_chart(tradeoff_figure(frame, x, y, budget, bubble=bubble, priority=priority),
                         key=f"chart_{x}_{y}_{bubble}_{priority}")

st.plotly_chart(latency_distribution_figure(run.rows), key="chart_latency_distribution")
if any(per_class_accuracies(row, axis_output) for row in run.rows):
    st.plotly_chart(per_class_delta_figure(run.rows, run.class_names, axis_output), key="chart_per_class")

st.subheader("Is the difference real?")
st.caption("Against float32 on the same evaluation samples: exact McNemar test on per-sample correctness, a "
           "paired bootstrap 95% interval of the accuracy change, and 95% intervals of the latency medians "
           "(overlapping intervals are 'same', never faster or slower).")
st.dataframe(run.significance_table(), hide_index=True)
flipped = [v for v in run.variants if v.flips]
if flipped:
    chosen_flip = st.selectbox("Prediction flips of", [v.name for v in flipped], key="flip_variant")
    flip_variant = run.variant(chosen_flip)
    st.write({"flips by true class": flip_variant.flips_by_class})
    widgets.flip_gallery(run, flip_variant)

for variant in run.variants:
    analysis = variant.analysis
    if not analysis:
        continue
    st.subheader(f"Diagnosis: {variant.name}")
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
    st.plotly_chart(layer_error_figure(analysis["layers"]), key=f"layers_{variant.name}")
    st.plotly_chart(search_curve_figure(search["curve"], analysis["float_accuracy"]), key=f"curve_{variant.name}")
    if analysis.get("calibration_study"):
        st.plotly_chart(calibration_study_figure(analysis["calibration_study"], analysis["float_accuracy"]),
                        key=f"study_{variant.name}")

st.subheader("Op audit")
for variant in run.variants:
    audit = variant.audit
    if not audit:
        continue
    verdict = "integer only" if audit["integer_only"] else f"float compute in {len(audit['float_compute_ops'])} op(s)"
    with st.expander(f"{variant.name}: {verdict}; inputs {audit['input_dtypes']}, outputs {audit['output_dtypes']}"):
        st.write({"ops": audit["op_counts"], "activation dtypes": audit["activation_dtypes"],
                  "weight dtypes": audit["weight_dtypes"], "float compute ops": audit["float_compute_ops"]})

st.subheader("Recipes")
st.caption("Each variant's exact Python code, runnable outside this tool from the run folder (`variants/<name>.py`).")
if run.with_recipe:
    recipe_variant = st.selectbox("Recipe of", [v.name for v in run.with_recipe], key="recipe_variant")
    recipe_path = run.recipe_path(recipe_variant)
    recipe_text = recipe_path.read_text() if recipe_path else ""
    st.download_button(f"Download {recipe_variant}.py", recipe_text, file_name=f"{recipe_variant}.py",
                       key="download_recipe")
    # Drawn only when asked: the code view loads a 1.5 MB syntax highlighter into the browser.
    if st.toggle("Show the code", key="show_recipe", value=not run.variant(recipe_variant).training):
        st.code(recipe_text if len(recipe_text) < 20_000 else recipe_text[:20_000] + "\n# ... (download for the rest)",
                language="python")

st.subheader("Downloads")
if run.produced:
    name = st.selectbox("Variant file", [v.name for v in run.produced], key="download_variant")
    tflite = run.tflite_path(name)
    if tflite is not None:
        st.download_button(f"Download {tflite.name}", tflite.read_bytes(), file_name=f"{name}.tflite",
                           key="download_tflite")
# The HTML report (megabytes, with plotly inline) is built only when a button asks for it.
report = functools.partial(html_report, run.rows, run.manifest, budget, axis_output, priority)
cols = st.columns(4)
cols[0].download_button("Results CSV", run.csv_text(), file_name="results.csv", mime="text/csv", key="download_csv")
cols[1].download_button("Results JSON", run.json_text(), file_name="results.json", mime="application/json",
                        key="download_json")
cols[2].download_button("HTML report", report, file_name="report.html", mime="text/html", key="download_report",
                        on_click="ignore")
# The zip is built only when clicked (a callable), and the click does not rerun the page.
cols[3].download_button("Download all (zip)", lambda: run.bundle(report()), file_name=f"{run.id}.zip",
                        mime="application/zip", key="download_all", on_click="ignore",
                        help="Every .tflite, each recipe, results CSV/JSON, the manifest and this HTML report.")
