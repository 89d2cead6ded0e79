"""Reusable pieces of the screens: errors in words, live job progress, the run picker, the results table."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st

from optimizer.errors import OptimizerError, user_message
from optimizer.results import to_frame
from optimizer.store import ACTIVE, RunStore

TABLE_COLUMNS = ["variant", "status", "size_bytes", "gzip_bytes", "size_ratio", "latency_ms_p50", "latency_ms_p95",
                 "latency_verdict", "memory_model_bytes", "memory_peak_bytes", "accuracy", "mae", "accuracy_delta",
                 "accuracy_delta_ci_low", "accuracy_delta_ci_high", "mcnemar_p", "accuracy_verdict", "flips",
                 "fidelity_top1_agreement", "fidelity_snr_db", "integer_only", "weights_zero_fraction",
                 "weights_max_unique", "conversion_s", "training_s", "error"]
_STAGE_SHARE = {"converting": 0.15, "converted": 0.35, "evaluating": 0.5, "benchmarking": 0.8, "measured": 1.0,
                "failed": 1.0}


@contextmanager
def user_errors() -> Any:
    """Show refusals and failures as one clear sentence, never a traceback."""
    try:
        yield
    except OptimizerError as exc:
        st.error(user_message(exc))


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = to_frame(rows)
    return frame[[c for c in TABLE_COLUMNS if c in frame.columns and (frame[c].notna().any() or c == "error")]]


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
    for variant, entry in (progress.get("variants") or {}).items():
        stage = entry.get("stage", "")
        share = _STAGE_SHARE.get(stage, 0.05)
        if stage == "training" and entry.get("epochs"):
            share = 0.05 + 0.25 * int(entry.get("epoch") or 0) / int(entry["epochs"])
        text = f"{variant}: {stage}"
        if entry.get("epochs"):
            text += f" (epoch {entry.get('epoch')}/{entry['epochs']})"
        if entry.get("error"):
            text += f" - {entry['error']}"
        st.progress(share, text=text)
    return record


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


def flip_gallery(job_dir: Any, row: dict[str, Any], reference: str, class_names: list[str] | None,
                 limit: int = 24) -> None:
    """The evaluation inputs whose predicted class changed against the reference, when they are images."""
    import numpy as np

    from optimizer.evaluate import predicted_classes

    work = job_dir / "work"
    inputs_path, outputs_path = work / "eval_x.npy", work / "outputs" / f"{row['variant']}.npy"
    reference_path = work / "outputs" / f"{reference}.npy"
    if not (inputs_path.exists() and outputs_path.exists() and reference_path.exists()):
        st.caption("The saved outputs of this run are not available.")
        return
    inputs = np.load(inputs_path, allow_pickle=False)
    if inputs.ndim != 4 or inputs.shape[-1] not in (1, 3):
        st.caption("Inputs are not images; see the flip counts per class above.")
        return
    predicted = predicted_classes(np.load(outputs_path, allow_pickle=False))
    before = predicted_classes(np.load(reference_path, allow_pickle=False))
    labels_path = work / "eval_y.npy"
    labels = np.load(labels_path, allow_pickle=False) if labels_path.exists() else None

    def name(index: int) -> str:
        return class_names[index] if class_names and index < len(class_names) else str(index)

    indices = (row.get("flip_indices") or [])[:limit]
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
            st.page_link("pages/3_Compare.py", label="Open the comparison", icon=":material/insights:")
