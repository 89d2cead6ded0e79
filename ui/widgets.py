"""Reusable pieces of the screens: errors in words, the inputs in use, the Run button and why it is off, live
job progress, the run picker, the stored run the result pages draw from, the outcome of a run without
results, and the pieces of Compare: the recommendation headline, the results table, the trade-off chart (only
the chosen one is drawn) and the sections drawn only when opened."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from optimizer import tensors
from optimizer.errors import OptimizerError, user_message
from optimizer.jobs.runner import JobRequest
from optimizer.jobs.store import ACTIVE, RunStore
from optimizer.records import VARIANT_SHARE, RunLayout, Stage
from optimizer.report import echarts, results
from optimizer.report.charts import measured, tradeoff_of
from optimizer.report.recommend import Budget, Priority, Recommendation
from optimizer.report.results import StoredRun, VariantResult
from optimizer.search import describe_trial
from ui import state


@contextmanager
def user_errors() -> Any:
    """Show refusals and failures as one clear sentence, never a traceback."""
    try:
        yield
    except OptimizerError as exc:
        st.error(user_message(exc))


def inputs_in_use(choice: state.Selection) -> str:
    """One markdown line naming every file the next run will use (or saying that it uses no data)."""
    named = {"data": choice.data, "labels": choice.labels, "calibration": choice.calib,
             "evaluation": choice.eval_data}
    files = [f"{role} `{path.name}`" for role, path in named.items() if path]
    data = ", ".join(files) if files else "none: synthetic inputs, fidelity only (no accuracy; calibrated " \
                                          "variants are skipped)"
    column = f" · CSV label column `{choice.label_column}`" if choice.reads_csv() else ""
    return f"**In use:** model `{choice.model.name}` ({choice.label}) · **data:** {data}{column}"


def shape_text(shape: Sequence[int | None]) -> str:
    """A tensor's or a sample's shape as text: ``(8, 8, 1)``, ``(3,)``, ``(any, 12)``; ``scalar`` for one number
    per sample (a class index, a value)."""
    parts = ["any" if size is None else str(size) for size in shape]
    return "scalar" if not parts else f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"


def _tensor_row(tensor: dict[str, Any], role: str, found: dict[str, Any] | None, data: str) -> dict[str, str]:
    """One row of the tensor map: the tensor, what the model expects per sample, and what the data holds."""
    use = ("fed to the model" if role == "input" else "scored against its labels") if found else "fidelity only"
    return {"tensor": tensor["name"], "role": role, "expected shape": shape_text(tensor["shape"][1:]),
            "expected dtype": tensor["dtype"], "data": data if found else "",
            "found shape": shape_text(found["shape"]) if found else "", "found dtype": found["dtype"] if found else "",
            "use": use}


def tensor_map(summary: dict[str, Any], report: dict[str, Any]) -> list[dict[str, str]]:
    """One row per model tensor: the array that feeds each input and the labels of each output (or "fidelity
    only"), with the shape and dtype the model expects (per sample) and those the data check found."""
    inputs, outputs = summary["inputs"], summary["outputs"]
    synthetic = report.get("source") == "synthetic"
    arrays = report.get("feeds") or {}  # "in:<input>" / "label:<output>" -> the file and array that feed it
    found = {**{f"in:{n}": f for n, f in (report.get("inputs") or {}).items()},
             **{f"label:{n}": f for n, f in (report.get("labels") or {}).items()}}
    rows = []
    for role, prefix, group in (("input", "in", inputs), ("output", "label", outputs)):
        for tensor in group:
            key = f"{prefix}:{tensor['name']}"
            rows.append(_tensor_row(tensor, role, found.get(key),
                                    "synthetic inputs" if synthetic else arrays.get(key, "")))
    return rows


def run_button(label: str, key: str, blocked: str | None) -> bool:
    """The button that queues a run, off with the reason beside it while ``blocked`` names one. True only for
    a click while allowed (a click that raced the page's update is ignored)."""
    left, right = st.columns([1, 3], vertical_alignment="center")
    clicked = left.button(label, key=key, type="primary", disabled=blocked is not None)
    if blocked:
        right.warning(blocked, icon=":material/block:")
    return clicked and blocked is None


def active_duplicate(store: RunStore, request: JobRequest) -> dict[str, Any] | None:
    """The run this tab follows, while it is queued or running with exactly this request."""
    run_id = state.current_run()
    record = store.get(run_id) if run_id else None
    if record is None or record["status"] not in ACTIVE:
        return None
    return record if record["options"] == json.loads(json.dumps(request.to_dict(), default=str)) else None


def run_blocker(store: RunStore, request: JobRequest, check: state.InputCheck | None) -> str | None:
    """Why this request must not be queued now: its inputs were refused, or this tab already follows a queued
    or running run of the same request; None when it may run."""
    if check is not None and check.refusal:
        return f"Run is off: {check.refusal.rstrip('.')}. Choose other files on Model & data."
    duplicate = active_duplicate(store, request)
    if duplicate is not None:
        return f"A run of these inputs is already {duplicate['status']}: {duplicate['id']}"
    return None


def followed_run(store: RunStore) -> str | None:
    """The run this tab follows (state.current_run) if it exists; otherwise says that it does not (the ?run= of
    a deleted run or a mistyped address) and returns None."""
    run_id = state.current_run()
    if run_id and store.get(run_id) is None:
        shown = run_id.replace("`", "")[:80]
        st.error(f"No run `{shown}` in `{store.root}`: it was deleted, or the address names no run.")
        return None
    return run_id


def stored_run(store: RunStore, record: dict[str, Any]) -> StoredRun:
    """The typed view of a stored record, built once per version of the run (its id and ``updated_at``)."""
    return _stored_run(str(store.job_dir(record["id"])), record.get("updated_at"), record)


@st.cache_data(max_entries=16, show_spinner=False)
def _stored_run(job_dir: str, updated_at: float | None, _record: dict[str, Any]) -> StoredRun:
    # Keyed by the run's folder (its id) and updated_at; the record itself (underscore) is not hashed.
    return StoredRun.from_record(_record, Path(job_dir))


def run_outcome(run: StoredRun) -> None:
    """What happened to a run that has nothing to compare: its status, its error, and which variants failed and
    why (or that it is still on its way)."""
    if run.status in ACTIVE:
        st.info(f"Run {run.id} is {run.status}: its results appear here when it finishes.")
        st.page_link("app_pages/2_Variants_and_run.py", label="Follow its progress", icon=":material/pending:")
        return
    if run.finished:
        st.error(f"Run {run.id} finished, but no variant was produced and measured.")
    else:
        st.error(f"Run {run.id} {run.status}: {run.error or 'no reason was recorded'}")
    if run.failures:
        st.markdown("**Variants that failed, and why**")
        st.dataframe(pd.DataFrame([{"variant": f.variant, "status": f.status, "error": f.error}
                                   for f in run.failures]), hide_index=True, key="failed_variants")
    else:
        st.caption("No variant finished before the run ended.")


def show_progress(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """Status, queue position and per-variant progress bars of one run, read from the store."""
    record = store.get(run_id)
    if record is None:
        st.warning(f"Run {run_id} no longer exists.")
        return None
    status = record["status"]
    progress = record["progress"] or {}
    if status == "queued":
        position = store.queue_position(run_id)
        st.info(f"Run {run_id} is queued: position {position} (one heavy job runs at a time).")
    elif status == "running":
        st.info(f"Run {run_id} is running: {progress.get('stage', 'starting')}.")
    elif status == "done":
        st.success(f"Run {run_id} finished.")
    else:
        st.error(f"Run {run_id} {status}: {record.get('error') or ''}")
    if search := progress.get("search"):
        search_progress(search)
    for variant, entry in (progress.get("variants") or {}).items():
        stage = entry.get("stage", "")
        share = VARIANT_SHARE.get(Stage(stage), 0.05) if stage in Stage.__members__.values() else 0.05
        if stage == "training" and entry.get("epochs"):
            share = 0.05 + 0.25 * int(entry.get("epoch") or 0) / int(entry["epochs"])
        text = f"{variant}: {stage}"
        if entry.get("epochs"):
            text += f" (epoch {entry.get('epoch')}/{entry['epochs']})"
        if entry.get("error"):
            text += f" - {entry['error']}"
        st.progress(share, text=text)
    return record


def search_progress(search: dict[str, Any]) -> None:
    """A search's trials so far (of how many) and the latest ones' outcomes, one line each."""
    done, total = search.get("done") or [], max(1, int(search.get("trials") or 1))
    st.progress(min(1.0, len(done) / total), text=f"search: {len(done)} of {total} trials")
    lines = [f"- {describe_trial(event)}" for event in done[-5:]]
    if lines:
        st.markdown("\n".join(lines))


def search_outcome(run: StoredRun) -> None:
    """What a search run ended with: the variant to ship within its budget (or each unmet limit and how close it
    came), the Pareto set, and every trial in a table."""
    search = run.manifest.get("search")
    if not search:
        return
    st.subheader("Search")
    if search.get("recommendation"):
        st.success(f"Within the budget: **{search['recommendation']}**. {search.get('reason') or ''}")
    else:
        st.error("No variant met the budget. " + (search.get("reason") or "") + "\n"
                 + "\n".join(f"- {line}" for line in search.get("shortfall") or []))
    within = "within the budget" if search.get("pareto_within_budget") else "none within the budget; of all measured"
    st.markdown(f"Pareto set ({within}): " + (", ".join(search.get("pareto") or []) or "none"))
    trials = pd.DataFrame(search.get("trials") or [])
    if not trials.empty:
        st.dataframe(trials, hide_index=True)


def pick_run(store: RunStore, label: str, key: str, default: str | None = None,
             only: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
    """A select box of stored runs (newest first); returns the chosen record."""
    records = [r for r in store.list() if only is None or only(r)]
    if not records:
        return None
    ids = [r["id"] for r in records]
    index = ids.index(default) if default in ids else 0
    names = {r["id"]: f"{r['id']} - {r['model_name']} ({r['status']})" for r in records}
    chosen = st.selectbox(label, ids, index=index, format_func=names.get, key=key)
    return next(r for r in records if r["id"] == chosen)


def active_runs(store: RunStore) -> list[dict[str, Any]]:
    return store.list(status=ACTIVE)


def flip_gallery(run: StoredRun, variant: VariantResult, limit: int = 24) -> None:
    """The evaluation inputs whose predicted class changed against the reference, when they are images."""
    import numpy as np

    from optimizer.measure.evaluate import predicted_classes

    layout = RunLayout(run.job_dir)
    reference = run.reference.name if run.reference else results.REFERENCE_KIND
    output = variant.raw.get("headline_output")
    inputs_path, labels_path = layout.work_dir / "eval_x.npy", layout.work_dir / "eval_y.npy"
    outputs_path, reference_path = layout.outputs_of(variant.name), layout.outputs_of(reference)
    if not (inputs_path.exists() and outputs_path.exists() and reference_path.exists()):
        st.caption("The saved outputs of this run are not available (or the model has several inputs).")
        return
    inputs = np.load(inputs_path, allow_pickle=False)
    if inputs.ndim != 4 or inputs.shape[-1] not in (1, 3):
        st.caption("Inputs are not images; see the flip counts per class above.")
        return
    outputs, before_outputs = tensors.load_outputs(outputs_path), tensors.load_outputs(reference_path)
    output = output if output in outputs else next(iter(outputs))
    predicted = predicted_classes(outputs[output])
    before = predicted_classes(before_outputs[output])
    names = [o.get("name") for o in (run.manifest.get("model") or {}).get("outputs") or []]
    if len(names) > 1 and output in names:  # one labels file per output: eval_y_<position>.npy
        labels_path = layout.work_dir / f"eval_y_{names.index(output)}.npy"
    labels = np.load(labels_path, allow_pickle=False) if labels_path.exists() else None
    class_names = run.class_names

    def name(index: int) -> str:
        return class_names[index] if class_names and index < len(class_names) else str(index)

    indices = variant.flip_indices[:limit]
    if not indices:
        st.caption("No evaluation sample changed its predicted class.")
        return
    columns = st.columns(min(8, len(indices)))
    for position, index in enumerate(indices):
        image = inputs[index]
        image = (image - image.min()) / (np.ptp(image) or 1.0)
        caption = f"#{index}: {name(int(before[index]))} -> {name(int(predicted[index]))}"
        if labels is not None:
            caption += f" (true {name(int(labels[index]))})"
        columns[position % len(columns)].image(image.squeeze() if image.shape[-1] == 1 else image,
                                               caption=caption, width=96, clamp=True)


def follow_run(store: RunStore, run_id: str, cancellable: bool = False) -> None:
    """Live progress of an active run (refreshed every second, outside a full rerun); once it ends, its final
    status and a link to the comparison."""

    @st.fragment(run_every=1.0)
    def live() -> None:
        record = show_progress(store, run_id)
        if record and record["status"] in ("queued", "running"):
            if cancellable and st.button("Cancel this run", key="cancel_button"):
                store.request_cancel(run_id)
        elif record:
            st.rerun()

    record = store.get(run_id)
    if record and record["status"] in ("queued", "running"):
        live()
    elif record:
        show_progress(store, run_id)
        if record["status"] == "done":
            st.page_link("app_pages/3_Compare.py", label="Open the comparison", icon=":material/insights:")


def accuracy_output(run: StoredRun) -> str | None:
    """The output whose figures are the rows' own accuracy, MAE and fidelity columns (the run's accuracy
    output), for a run whose model has outputs by name."""
    named = run.manifest.get("accuracy_output")
    return str(named) if named else next((v.headline_output for v in run.variants if v.headline_output), None)


def per_output_caption(run: StoredRun) -> str:
    """What the results table's column groups of a model with several outputs mean."""
    headline = accuracy_output(run)
    of = f"the run's accuracy output `{headline}`" if headline else "the model's first output"
    return ("Columns named `<output>: <figure>` hold each output's own figures: accuracy (and its change against "
            "float32) for a classification output, MAE and RMSE for a regression output, fidelity to float32 for "
            f"every output. The ungrouped accuracy, MAE and fidelity columns, and the budget's accuracy drop, are "
            f"those of {of}.")


def accuracy_axis_output(run: StoredRun, outputs: list[str]) -> str | None:
    """For a model with several labelled outputs (``outputs``), the select box "Accuracy axis: output" choosing
    whose metric the trade-off charts plot (default: the run's accuracy output); None for a model with one."""
    if not outputs:
        return None
    default = accuracy_output(run)
    left, _ = st.columns([1, 2])
    chosen = left.selectbox("Accuracy axis: output", outputs, index=outputs.index(default) if default in outputs else 0,
                            key=f"accuracy_axis_{run.id}",
                            help="The charts plot this output's accuracy, or its mean absolute error for a regression "
                                 "output; the recommendation and the budget stay on the run's accuracy output.")
    return str(chosen)


def row_warnings(run: StoredRun) -> None:
    """Every variant's warnings, one sentence per line (in the results table they would be cut off)."""
    warned = [(v.name, text) for v in run.variants for text in v.warnings]
    if warned:
        st.warning("\n".join(f"- **{name}**: {text}" for name, text in warned), icon=":material/warning:")


PRIORITY_LABELS = {Priority.SIZE: "Size: the smallest file", Priority.LATENCY: "Latency: really faster",
                   Priority.ACCURACY: "Accuracy: significantly better"}
_TONE_COLOURS = {"good": "green", "bad": "red", "neutral": "gray"}


def priority_select(container: Any, key: str = "priority") -> Priority:
    """The select box "What matters most" (size by default), in ``container`` (a column)."""
    chosen = container.selectbox(
        "What matters most", list(Priority), format_func=PRIORITY_LABELS.get, key=key,
        help="The recommendation prefers this first, then the others; a difference the run's statistics call the "
             "same (latency) or within noise (accuracy), or a size within 2%, never decides.")
    return Priority(chosen)


def recommendation_headline(run: StoredRun, recommendation: Recommendation) -> None:
    """The recommended variant, its one sentence of reasoning and its cards (size, latency, accuracy against
    float32); which measured variants were left out, and why, in a caption."""
    if recommendation.variant is None:
        st.warning(f"**No recommendation.** {recommendation.reason}", icon=":material/block:")
        return
    st.subheader(f"Recommended: `{recommendation.variant.name}`")
    st.markdown(recommendation.reason)
    for column, card in zip(st.columns(len(recommendation.cards)), recommendation.cards, strict=True):
        column.metric(card.label, card.value, card.delta or None, delta_color=_TONE_COLOURS[card.tone],
                      delta_arrow="off", border=True)
    measured = {v.name for v in run.measured}
    left_out = [f"{name}: {why}" for name, why in recommendation.excluded if name in measured]
    if left_out:
        st.caption("Not considered: " + "; ".join(left_out) + ".")


def results_table(run: StoredRun, budget: Budget) -> None:
    """The results table for people (units in the titles, failures with their reason, empty cells empty), a
    picker of more columns, and every stored column one click away."""
    extras = run.extra_columns()
    chosen = st.multiselect("More columns", list(extras), format_func=extras.get, key=f"table_columns_{run.id}",
                            placeholder="Add columns: gzip size, p95, memory, fidelity, ...")
    st.dataframe(run.human_table(budget, chosen), hide_index=True, key="results_table", placeholder="",
                 column_config={"Variant": st.column_config.Column(pinned=True)})  # kept in view while scrolling
    on_demand("All columns, as stored", "stored_columns", _stored_columns, run, budget)


def _stored_columns(run: StoredRun, budget: Budget) -> None:
    st.dataframe(run.table(budget).drop(columns=["warnings"], errors="ignore"), hide_index=True,
                 key="raw_results_table", column_config={"variant": st.column_config.Column(pinned=True)})


@dataclass(frozen=True)
class TradeoffView:
    """One trade-off chart: its button's title, the columns on its axes, and the column sizing its points."""

    title: str
    x: str
    y: str
    bubble: str | None = None


def tradeoff_views(quality: str | None) -> dict[str, TradeoffView]:
    """The trade-off charts by a name that stays the same whichever output is plotted: size vs latency, and with
    a quality figure (``quality``: a column such as ``accuracy`` or ``"ink: mae"``) latency and size against it,
    and both at once."""
    views = {"size_latency": TradeoffView("Size vs latency", "size_bytes", "latency_ms_p50")}
    if quality is not None:
        views["latency_quality"] = TradeoffView(f"Latency vs {quality}", "latency_ms_p50", quality)
        views["size_quality"] = TradeoffView(f"Size vs {quality}", "size_bytes", quality)
        views["combined"] = TradeoffView("Combined (bubble = file size)", "latency_ms_p50", quality, "size_bytes")
    return views


@st.fragment
def tradeoff_chart(frame: pd.DataFrame, quality: str | None, budget: Budget, priority: Priority) -> None:
    """The chosen trade-off chart (:func:`tradeoff_views`; size vs latency at first), drawn by ECharts. Only
    that chart is built and sent, and choosing another reruns this fragment alone. The choice is kept when the
    accuracy axis moves to another output."""
    views = tradeoff_views(quality)
    chosen = st.segmented_control("Trade-off chart", list(views), format_func=lambda name: views[name].title,
                                  default="size_latency", required=True, key="tradeoff_chart",
                                  label_visibility="collapsed")
    view = views.get(str(chosen), views["size_latency"])
    if measured(frame).dropna(subset=[view.x, view.y]).empty:
        st.caption(f"No measured variant has both {view.x} and {view.y}.")
        return
    chart = tradeoff_of(frame, view.x, view.y, budget, bubble=view.bubble, priority=priority)
    # ECharts, not Plotly: its bundle is a quarter of the size, which is what sets when the page is usable.
    st.echarts_chart(echarts.tradeoff_option(chart), height=echarts.HEIGHT_PX, renderer="svg",
                     key=f"chart_{view.x}_{view.y}_{view.bubble}_{priority}")


@st.fragment
def on_demand(label: str, key: str, draw: Callable[..., None], *args: Any) -> None:
    """A section in an expander, closed at first, whose content (``draw(*args)``) is built only while it is open:
    the first paint skips its figures and tables, and opening or closing it reruns this section alone."""
    with st.expander(label, key=key, on_change="rerun") as section:
        if section.open:
            draw(*args)
