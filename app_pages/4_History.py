"""History: every stored run (date, duration, model, kinds, status); reopen one, compare two (what differs in
their settings and figures, then side by side), delete."""

import pandas as pd
import streamlit as st

from optimizer.report.charts import tradeoff_figure
from optimizer.report.history import figures_diff, run_overview, settings_diff
from optimizer.report.results import combined_frame, has_results
from ui import services, state, widgets

st.set_page_config(page_title="History", layout="wide")
st.title("History")
store = services.store()
records = store.list()
st.caption(f"Runs are stored in `{services.runs_dir()}` (SQLite runs.db plus one folder per run).")
if not records:
    st.info("No runs yet.")
    st.stop()

st.dataframe(pd.DataFrame([run_overview(r) for r in records]), hide_index=True, key="history_table")

record = widgets.pick_run(store, "Selected run", key="history_run")
if record is not None:
    selected = widgets.stored_run(store, record)
    left, right = st.columns(2)
    if left.button("Open in Compare", key="history_open"):
        state.set_current_run(selected.id)
        st.switch_page("app_pages/3_Compare.py")
    confirm = right.checkbox("Really delete", key="history_confirm_delete")
    if right.button("Delete run", key="history_delete", disabled=not confirm):
        with widgets.user_errors():
            store.delete(selected.id)
            st.rerun()
    with st.expander("Options and versions"):
        st.json({"options": selected.options, "inputs": selected.inputs, "versions": selected.versions})

finished = [r for r in records if has_results(r)]
if len(finished) >= 2:
    st.subheader("Compare two runs")
    left, right = st.columns(2)
    with left:
        first = widgets.pick_run(store, "Run A", key="history_first", only=has_results)
    with right:
        second = widgets.pick_run(store, "Run B", key="history_second", only=has_results,
                                  default=finished[1]["id"])
    if first and second:
        runs = {"A": widgets.stored_run(store, first), "B": widgets.stored_run(store, second)}
        settings, figures = settings_diff(runs["A"], runs["B"]), figures_diff(runs["A"], runs["B"])
        st.markdown("**What differs**: settings (inputs, options, variants, versions, machine)")
        if settings.empty:
            st.caption("Same inputs, options, variants, versions and machine.")
        else:
            st.dataframe(settings, hide_index=True, key="history_settings_diff")
        st.markdown("**What differs**: each variant's key figures (change: B against A)")
        if figures.empty:
            st.caption("The same figures for every variant.")
        else:
            st.dataframe(figures, hide_index=True, key="history_figures_diff")
        for column, (name, chosen) in zip(st.columns(2), runs.items(), strict=True):
            column.caption(f"{name}: {chosen.id}")
            column.dataframe(chosen.table(), hide_index=True, key=f"history_table_{name}")
        st.plotly_chart(tradeoff_figure(combined_frame(runs), "size_bytes", "latency_ms_p50"), key="history_chart")
