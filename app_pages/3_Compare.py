"""Compare: the recommended variant and its headline figures, the results table and a trade-off chart (the Pareto
front and budgets) first; distributions, statistics, diagnosis, op audit and recipes drawn only when opened;
downloads built only when clicked (the page must be usable within a few seconds: benchmarks/README.md)."""

import functools

import streamlit as st

from optimizer.report.charts import (
    calibration_study_figure,
    latency_distribution_figure,
    layer_error_figure,
    per_class_accuracies,
    per_class_delta_figure,
    quality_metric,
    scored_outputs,
    search_curve_figure,
)
from optimizer.report.html import html_report
from optimizer.report.recommend import Budget, recommend_variant
from optimizer.report.results import StoredRun, VariantResult, has_results, per_output_columns
from optimizer.report.sweep_charts import sweep_figures, swept_options
from ui import services, widgets
from ui.op_profile import op_profile_section

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

for target in run.manifest.get("targets") or []:  # each target's timing: what it could not resolve, or why it failed
    if target.get("error"):
        st.warning(f"Target {target.get('label')} was not measured: {target['error']}")
    elif target.get("latency_note"):
        st.info(f"Latency on {target.get('label')}: {target['latency_note']}; such differences are marked "
                "'unresolved' and never decide the recommendation.")

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
widgets.search_outcome(run)
if per_output_columns(run.rows):
    st.caption(widgets.per_output_caption(run))
widgets.results_table(run, budget)

axis_output = widgets.accuracy_axis_output(run, scored_outputs(frame))  # None: a model with one output
quality = quality_metric(frame, axis_output)
widgets.tradeoff_chart(frame, quality.column if quality else None, budget, priority)


def latency_distributions(run: StoredRun) -> None:
    st.plotly_chart(latency_distribution_figure(run.rows), key="chart_latency_distribution")


def per_class_change(run: StoredRun, output: str | None) -> None:
    st.plotly_chart(per_class_delta_figure(run.rows, run.class_names, output), key="chart_per_class")


def significance(run: StoredRun) -> None:
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


def diagnosis(variant: VariantResult) -> None:
    analysis = variant.analysis or {}
    if analysis.get("per_tensor"):
        st.caption("ai-edge-quantizer's validation: every tensor against the float model, lowest SNR first.")
        st.dataframe(analysis["per_tensor"], hide_index=True)
        return
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


def op_audit(run: StoredRun) -> None:
    audited = [v for v in run.variants if v.audit]
    st.dataframe([{"variant": v.name, "verdict": "integer only" if v.audit["integer_only"] else
                   f"float compute in {len(v.audit['float_compute_ops'])} op(s)",
                   "inputs": ", ".join(v.audit["input_dtypes"]), "outputs": ", ".join(v.audit["output_dtypes"]),
                   "float compute ops": ", ".join(v.audit["float_compute_ops"])} for v in audited],
                 hide_index=True, key="audit_table")
    audit = run.variant(st.selectbox("Ops and dtypes of", [v.name for v in audited], key="audit_variant")).audit
    st.write({"ops": audit["op_counts"], "activation dtypes": audit["activation_dtypes"],
              "weight dtypes": audit["weight_dtypes"], "float compute ops": audit["float_compute_ops"]})


def recipes(run: StoredRun) -> None:
    st.caption("Each variant's exact Python code, runnable outside this tool from the run folder "
               "(`variants/<name>.py`).")
    recipe_variant = st.selectbox("Recipe of", [v.name for v in run.with_recipe], key="recipe_variant")
    recipe_path = run.recipe_path(recipe_variant)
    recipe_text = recipe_path.read_text() if recipe_path else ""
    st.download_button(f"Download {recipe_variant}.py", recipe_text, file_name=f"{recipe_variant}.py",
                       key="download_recipe")
    # The code view loads a 1.5 MB syntax highlighter into the browser: off at first for a long training recipe.
    if st.toggle("Show the code", key="show_recipe", value=not run.variant(recipe_variant).training):
        st.code(recipe_text if len(recipe_text) < 20_000 else recipe_text[:20_000] + "\n# ... (download for the rest)",
                language="python")


def parameter_sweep(run: StoredRun) -> None:
    st.caption("Each swept option against each figure: one line per kind, float32 dashed. The trade-off chart "
               "above draws every point with the Pareto front.")
    for option, figure, chart in sweep_figures(run.rows):
        st.plotly_chart(chart, key=f"sweep_{option}_{figure}")


# Sections drawn only when opened (each reruns alone). More sections: one widgets.on_demand(title, key, draw, *args)
# line each, below the others.
st.subheader("Details")
widgets.on_demand("Latency distributions", "show_latency", latency_distributions, run)
if any(per_class_accuracies(row, axis_output) for row in run.rows):
    widgets.on_demand("Per-class accuracy change", "show_per_class", per_class_change, run, axis_output)
widgets.on_demand("Is the difference real?", "show_significance", significance, run)
for analysed in (v for v in run.variants if v.analysis):
    widgets.on_demand(f"Diagnosis: {analysed.name}", f"show_diagnosis_{analysed.name}", diagnosis, analysed)
if any(v.audit for v in run.variants):
    widgets.on_demand("Op audit", "show_audit", op_audit, run)
if run.with_recipe:
    widgets.on_demand("Recipes", "show_recipes", recipes, run)
widgets.on_demand("Where the time goes (per-op profile)", "show_op_profile", op_profile_section, run)
if swept_options(run.rows):
    widgets.on_demand("Parameter sweep", "show_sweep", parameter_sweep, run)

st.subheader("Downloads")
if run.produced:
    name = st.selectbox("Variant file", [v.name for v in run.produced], key="download_variant")
    tflite = run.tflite_path(name)
    if tflite is not None:
        st.download_button(f"Download {tflite.name}", tflite.read_bytes, file_name=f"{name}.tflite",
                           key="download_tflite", on_click="ignore")
# Every file is built (or read) only when its button is clicked (a callable), and the click does not rerun the page:
# the HTML report is megabytes, with plotly inline.
report = functools.partial(html_report, run.rows, run.manifest, budget, axis_output, priority)
cols = st.columns(4)
cols[0].download_button("Results CSV", run.csv_text, file_name="results.csv", mime="text/csv", key="download_csv",
                        on_click="ignore")
cols[1].download_button("Results JSON", run.json_text, file_name="results.json", mime="application/json",
                        key="download_json", on_click="ignore")
cols[2].download_button("HTML report", report, file_name="report.html", mime="text/html", key="download_report",
                        on_click="ignore")
cols[3].download_button("Download all (zip)", lambda: run.bundle(report()), file_name=f"{run.id}.zip",
                        mime="application/zip", key="download_all", on_click="ignore",
                        help="Every .tflite, each recipe, results CSV/JSON, the manifest and this HTML report.")
