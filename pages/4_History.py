"""History: every stored run; reopen one, compare two side by side, delete."""

import pandas as pd
import streamlit as st

from optimizer.report.charts import tradeoff_figure
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

st.dataframe(pd.DataFrame([{
    "run": r["id"], "status": r["status"], "model": r["model_name"],
    "model sha256": (r["inputs"] or {}).get("model", {}).get("sha256", "")[:12],
    "data": ", ".join(v["name"] for k, v in (r["inputs"] or {}).items() if k != "model"),
    "variants": len(r["rows"] or []), "error": r["error"] or "",
} for r in records]), hide_index=True, key="history_table")

record = widgets.pick_run(store, "Selected run", key="history_run")
if record is not None:
    selected = widgets.stored_run(store, record)
    left, right = st.columns(2)
    if left.button("Open in Compare", key="history_open"):
        state.set_current_run(selected.id)
        st.switch_page("pages/3_Compare.py")
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
    first = widgets.pick_run(store, "First run", key="history_first", only=has_results)
    with right:
        second = widgets.pick_run(store, "Second run", key="history_second", only=has_results,
                                  default=finished[1]["id"])
    if first and second:
        runs = {"A": widgets.stored_run(store, first), "B": widgets.stored_run(store, second)}
        for column, chosen in zip((left, right), runs.values(), strict=True):
            column.caption(chosen.id)
            column.dataframe(chosen.table(), hide_index=True)
        st.plotly_chart(tradeoff_figure(combined_frame(runs), "size_bytes", "latency_ms_p50"), key="history_chart")
