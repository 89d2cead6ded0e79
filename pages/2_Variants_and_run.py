"""Variants & run: choose kinds and options, run in the background, watch live progress, cancel."""

import streamlit as st

from optimizer.intake import model_format, source_of
from optimizer.jobs import JobRequest, submit
from optimizer.variants import KINDS, VariantKind, VariantSpec, default_kinds
from ui import services, state, widgets

st.set_page_config(page_title="Variants & run", layout="wide")
st.title("Variants & run")
store = services.store()
choice = state.selection()
st.markdown(f"**Model:** `{choice.model.name}` ({choice.label})")

with widgets.user_errors():
    kinds = default_kinds(source_of(model_format(choice.model)))
    chosen = st.multiselect("Variant kinds", kinds, default=kinds, key="variant_kinds",
                            format_func=lambda k: KINDS[VariantKind(k)].label)
    for kind in chosen:
        st.caption(f"**{KINDS[VariantKind(kind)].label}**: {KINDS[VariantKind(kind)].summary}")
    left, middle, right = st.columns(3)
    threads = left.number_input("Threads", 1, 8, 1, key="threads")
    timed_runs = middle.number_input("Timed runs", 50, 2000, 50, step=10, key="timed_runs")
    warmup_runs = right.number_input("Warm-up runs", 0, 200, 10, key="warmup_runs")
    calibration = st.number_input("Calibration samples", 1, 10_000, 200, key="calibration_samples")
    if st.button("Run", key="run_button", type="primary", disabled=not chosen):
        specs = [VariantSpec(VariantKind(k), {"calibration_samples": int(calibration)}
                             if KINDS[VariantKind(k)].needs_calibration else {}) for k in chosen]
        request = JobRequest(model=str(choice.model), **choice.data_paths(), variants=[s.to_dict() for s in specs],
                             threads=int(threads), timed_runs=int(timed_runs), warmup_runs=int(warmup_runs))
        state.set_current_run(submit(store, request, session=state.session_id()))

run_id = state.current_run()
if run_id:
    st.subheader("Progress")

    @st.fragment(run_every=1.0)
    def live_progress() -> None:
        record = widgets.show_progress(store, run_id)
        if record and record["status"] in ("queued", "running"):
            if st.button("Cancel this run", key="cancel_button"):
                store.request_cancel(run_id)
        elif record:
            st.rerun()

    record = store.get(run_id)
    if record and record["status"] in ("queued", "running"):
        live_progress()
    elif record:
        widgets.show_progress(store, run_id)
        st.page_link("pages/3_Compare.py", label="Open the comparison", icon=":material/insights:")

others = [r for r in widgets.active_runs(store) if r["id"] != run_id]
if others:
    st.subheader("Other active runs")
    for record in others:
        label = f"Follow {record['id']} ({record['model_name']}, {record['status']})"
        if st.button(label, key=f"follow_{record['id']}"):
            state.set_current_run(record["id"])
            st.rerun()
