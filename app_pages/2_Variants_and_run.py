"""Variants & run: choose kinds and options, run in the background, watch live progress, cancel."""

from dataclasses import replace

import streamlit as st

from optimizer.intake.model import ModelFormat, model_format, source_of
from optimizer.measure.evaluate import Task
from optimizer.report.recommend import Budget
from optimizer.run.options import RunOptions
from optimizer.search import SearchRequest
from optimizer.sweep import grid_specs
from optimizer.variants import KINDS, default_kinds, option_defaults, spec_with_options
from ui import services, state, targets, widgets

st.set_page_config(page_title="Variants & run", layout="wide")
st.title("Variants & run")
store = services.store()
run_id = widgets.followed_run(store)
choice = state.selection()
st.markdown(widgets.inputs_in_use(choice))
check = services.check_inputs(choice)  # the verdict of Model & data, or the same check if it was skipped

with widgets.user_errors():
    fmt = model_format(choice.model)
    trainable = fmt in (ModelFormat.KERAS, ModelFormat.H5)
    post_training = default_kinds(source_of(fmt))
    kinds = default_kinds(source_of(fmt), training=trainable)
    chosen = st.multiselect("Variant kinds", kinds, default=post_training, key="variant_kinds",
                            format_func=lambda k: KINDS[k].label)
    if not trainable:
        st.caption("Training variants (QAT, pruning, clustering) need a .keras or .h5 model.")
    for kind in chosen:
        st.caption(f"**{KINDS[kind].label}**: {KINDS[kind].summary}")
    run_defaults, kind_defaults = RunOptions(), option_defaults()
    left, middle, right = st.columns(3)
    threads = left.number_input("Threads", 1, 8, run_defaults.threads, key="threads")
    timed_runs = middle.number_input("Timed runs", 50, 2000, run_defaults.timed_runs, step=10, key="timed_runs")
    warmup_runs = right.number_input("Warm-up runs", 0, 200, run_defaults.warmup_runs, key="warmup_runs")
    left, middle, right = st.columns(3)
    calibration = left.number_input("Calibration samples", 1, 10_000, kind_defaults["calibration_samples"],
                                    key="calibration_samples")
    outputs = [t["name"] for t in (check.summary or {}).get("outputs") or []]
    labelled = list(((check.report or {}).get("labels") or {}).keys())
    accuracy_output = None
    if len(outputs) > 1:  # several outputs: a task per output, and the one whose metric is the accuracy
        task = middle.text_input("Task per output", "", key="task_per_output",
                                 placeholder=f"{outputs[0]}=classification,{outputs[1]}=regression",
                                 help="Blank: inferred from each output's labels. Otherwise output=task pairs "
                                      f"(tasks: {', '.join(t.value for t in Task)}).") or None
        accuracy_output = st.selectbox("Accuracy output", [None, *labelled], key="accuracy_output",
                                       format_func=lambda o: "the first labelled classification output"
                                       if o is None else o,
                                       help="The output whose metric the charts, the accuracy budget of the "
                                            "selective int8 search and the training checks use.")
    else:
        task = middle.selectbox("Task", [None, *(t.value for t in Task)], key="task",
                                format_func=lambda t: "inferred from the labels" if t is None else t,
                                help="Classification (top-1 accuracy) or regression (MAE); by default "
                                     "whole-number labels that index the model's outputs mean classification.")
    seed = right.number_input("Seed", 0, 2**31 - 1, run_defaults.seed, key="seed",
                              help="Seeds the calibration/evaluation split of a single data file and the "
                                   "fine-tuning of training variants.")
    training_chosen = [k for k in chosen if KINDS[k].needs_training]
    options: dict[str, object] = {"calibration_samples": int(calibration)}
    if training_chosen:
        with st.expander("Fine-tune options (training variants)", expanded=True):
            cols = st.columns(6)
            options.update(
                epochs=int(cols[0].number_input("Epochs", 1, 200, kind_defaults["epochs"], key="epochs")),
                batch_size=int(cols[1].number_input("Batch size", 1, 4096, kind_defaults["batch_size"],
                                                    key="batch_size")),
                learning_rate=float(cols[2].number_input("Learning rate", 1e-6, 1.0, kind_defaults["learning_rate"],
                                                         format="%.5f", key="learning_rate")),
                sparsity=float(cols[3].selectbox("Sparsity", sorted({kind_defaults["sparsity"], 0.75, 0.9}),
                                                 key="sparsity")),
                clusters=int(cols[4].number_input("Clusters", 2, 256, kind_defaults["clusters"], key="clusters")),
                schedule=cols[5].selectbox("Pruning schedule", ["polynomial", "constant"], key="schedule"))
            st.caption("Pruning and clustering shrink the compressed (gzip) size only; no x86 TFLite kernel runs "
                       "sparse, 2:4 or clustered weights faster. Each technique starts from a fresh copy of the "
                       "model and fine-tunes on the labelled calibration split with a fixed seed.")
    with st.expander("Parameter sweep (grids)"):
        grids = [line.strip() for line in st.text_area(
            "One grid per line", "", key="sweep_grids", placeholder="prune:sparsity=0.3,0.5,0.7,0.9:epochs=1\n"
                                                                   "cluster:clusters=8,16,32",
            help="KIND:OPTION=V1,V2[:OPTION=...]: every point is one more variant, measured like the others; "
                 "Compare then draws each swept option against accuracy, size and latency.").splitlines()
            if line.strip()]
    target_fields, targets_blocked = targets.picker(services.runs_dir())
    specs = [spec_with_options(k, options) for k in chosen]
    if grids:
        points = grid_specs(grids, source_of(fmt))
        specs += [p for p in points if p.name not in {s.name for s in specs}]
        st.caption(f"The grids add {len(points) - 1} point(s): " + ", ".join(p.name for p in points[1:]))
    request = services.job_request(choice, specs, threads=int(threads), timed_runs=int(timed_runs),
                                   warmup_runs=int(warmup_runs), task=task, seed=int(seed),
                                   accuracy_output=accuracy_output, **target_fields)
    if outputs:
        request.options.tasks_for(outputs)  # refuses an output name the model does not have, before the run
    nothing = None if chosen or grids else "Choose at least one variant kind."
    blocked = widgets.run_blocker(store, request, check) or nothing or targets_blocked
    if widgets.run_button("Run", key="run_button", blocked=blocked):
        services.start_run(request)
        st.rerun()  # redraw Run as off while this run is active

with st.expander("Budget-driven search"), widgets.user_errors():
    st.caption("Optuna proposes kinds and their options, measures them in batches and prunes what cannot fit; "
               "it ends with the Pareto set and the variant to ship within these limits, or how close it came. "
               "A limit of 0 is no limit. Resumable: the variant store keeps every measured point.")
    cols = st.columns(4)
    max_kb = cols[0].number_input("Max size (KB)", 0.0, 1e7, 0.0, key="search_max_kb")
    max_ms = cols[1].number_input("Max p95 latency (ms)", 0.0, 1e5, 0.0, format="%.3f", key="search_max_ms")
    max_drop = cols[2].number_input("Max accuracy drop (points)", 0.0, 100.0, 1.0, key="search_max_drop")
    trials = cols[3].number_input("Trials", 1, 500, 12, key="search_trials")
    left, right = st.columns(2)
    priority = widgets.priority_select(left, key="search_priority")
    search_training = right.checkbox("Also fine-tuning kinds (minutes per trial)", False, key="search_training",
                                     disabled=not trainable)
    search = SearchRequest(Budget.of(max_kb or None, max_ms or None, max_drop or None), trials=int(trials),
                           training=search_training, seed=int(seed), priority=priority)
    search_request = replace(services.job_request(choice, None, threads=int(threads), seed=int(seed), task=task,
                                                  accuracy_output=accuracy_output, **target_fields),
                             search=search.to_dict())
    if widgets.run_button("Search", key="search_button",
                          blocked=widgets.run_blocker(store, search_request, check) or targets_blocked):
        services.start_run(search_request)
        st.rerun()

if run_id:
    st.subheader("Progress")
    widgets.follow_run(store, run_id, cancellable=True)

others = [r for r in widgets.active_runs(store) if r["id"] != run_id]
if others:
    st.subheader("Other active runs")
    for record in others:
        label = f"Follow {record['id']} ({record['model_name']}, {record['status']})"
        if st.button(label, key=f"follow_{record['id']}"):
            state.set_current_run(record["id"])
            st.rerun()
