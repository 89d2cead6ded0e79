"""Home: what the tool does, what is loaded, and one button that runs the default comparison."""

import streamlit as st

from optimizer.jobs import JobRequest, submit
from ui import services, state, widgets

st.set_page_config(page_title="TFLite Optimization Studio", layout="wide")
st.title("TFLite Optimization Studio")
st.markdown(
    "Turn a Keras/TensorFlow model into TensorFlow Lite variants (float16, dynamic-range, int8, int16x8...).  \n"
    "Measure each one honestly: file and gzip size, latency on LiteRT, memory, accuracy and fidelity.  \n"
    "Compare them on trade-off charts and download the one to ship."
)
store = services.store()
choice = state.selection()
st.markdown(f"**Model:** `{choice.model.name}` ({choice.label})  \n"
            f"**Data:** {', '.join(f'`{p}`' for p in [choice.data, choice.calib, choice.eval_data] if p) or 'none'}")
if st.button("Run the default comparison", key="home_run", type="primary"):
    with widgets.user_errors():
        run_id = submit(store, JobRequest(model=str(choice.model), **choice.data_paths()), session=state.session_id())
        state.set_current_run(run_id)

run_id = state.current_run()
if run_id:
    widgets.follow_run(store, run_id)
st.caption("Pages: Model & data (upload or pick a sample), Variants & run, Compare, History.")
