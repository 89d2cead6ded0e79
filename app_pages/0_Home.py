"""Home: what the tool does, what is loaded, and one button that runs the default comparison."""

import streamlit as st

from ui import services, state, widgets

st.set_page_config(page_title="TFLite Optimization Studio", layout="wide")
st.title("TFLite Optimization Studio")
st.markdown(
    "Turn a Keras/TensorFlow model into TensorFlow Lite variants (float16, dynamic-range, int8, int16x8...).  \n"
    "Measure each one honestly: file and gzip size, latency on LiteRT, memory, accuracy and fidelity.  \n"
    "Compare them on trade-off charts and download the one to ship."
)
# The first visit of a server starts the job scheduler (and its standby runner) and opens the run store.
with st.spinner("Getting ready: starting the job scheduler and opening the run store..."):
    store = services.store()
run_id = widgets.followed_run(store)
choice = state.selection()
st.markdown(widgets.inputs_in_use(choice))
request = services.job_request(choice)
# Only a verdict already reached on Model & data (Home does not start a model inspection of its own).
if widgets.run_button("Run the default comparison", key="home_run",
                      blocked=widgets.run_blocker(store, request, state.input_check(choice))):
    with widgets.user_errors():
        services.start_run(request)
        st.rerun()

if run_id:
    widgets.follow_run(store, run_id)
st.caption("Pages: Model & data (upload or pick a sample), Variants & run, Compare, History.")
