"""Model & data: pick a sample or upload files; see the model summary and the data check before running."""

from dataclasses import replace

import streamlit as st

from optimizer.paths import SAMPLES
from ui import services, state, widgets

st.set_page_config(page_title="Model & data", layout="wide")
st.title("Model & data")

mode = st.radio("Source", ["Sample model", "Upload"], horizontal=True, key="source_mode")
if mode == "Sample model":
    label = st.selectbox("Sample", list(SAMPLES), key="sample_choice")
    model_path, data_path = SAMPLES[label]
    if st.button("Use this sample", key="use_sample"):
        services.choose(state.Selection(model_path, data_path, label=label))
else:
    st.caption(f"Uploads are limited to {services.MAX_UPLOAD_BYTES // 1024**2} MB each and checked before use. "
               "**Use these files** waits until every upload has finished.")
    # In a form, Streamlit keeps the submit button off while any of its uploads is still in progress.
    with st.form("uploads", border=False):
        uploads = {
            "model": st.file_uploader("Model (.keras, .h5, SavedModel .zip, .tflite)",
                                      type=["keras", "h5", "zip", "tflite"], key="upload_model"),
            "data": st.file_uploader("Data (.npz, .npy, .csv, image .zip)", type=["npz", "npy", "csv", "zip"],
                                     key="upload_data"),
            "labels": st.file_uploader("Labels .npy (only with a .npy of inputs)", type=["npy"],
                                       key="upload_labels"),
        }
        with st.expander("Separate calibration and evaluation files"):
            uploads["calib"] = st.file_uploader("Calibration data", type=["npz", "npy", "csv", "zip"],
                                                key="upload_calib")
            uploads["eval_data"] = st.file_uploader("Evaluation data", type=["npz", "npy", "csv", "zip"],
                                                    key="upload_eval")
        without_data = st.checkbox("Run without data (synthetic inputs for fidelity only)", key="upload_no_data")
        submitted = st.form_submit_button("Use these files", key="use_uploads")
    if submitted:
        with widgets.user_errors():
            folder = services.uploads_dir()
            services.choose(services.selection_from_uploads(uploads, without_data, folder))

choice = state.selection()
st.subheader(f"Model: {choice.model.name}")
st.markdown(widgets.inputs_in_use(choice))
if choice.reads_csv():
    column = st.text_input("Label column of the CSV (the other columns are features)", value=choice.label_column,
                           key="label_column").strip()
    if column and column != choice.label_column:
        state.set_selection(replace(choice, label_column=column))
        st.rerun()

check = services.check_inputs(choice)
if check.summary is None:
    st.error(check.refusal)
else:
    summary = check.summary
    left, right = st.columns(2)
    left.write({"format": summary["format"], "file_size_bytes": summary["file_size_bytes"],
                "parameters": summary["parameter_count"]})
    right.dataframe([{"role": role, **t, "shape": widgets.shape_text(t["shape"])}
                     for role in ("input", "output") for t in summary[f"{role}s"]], hide_index=True)
    with st.expander(f"{len(summary['layers'])} layers / ops"):
        st.dataframe(summary["layers"], hide_index=True)
    st.subheader("Data check")
    if check.refusal:
        st.error(check.refusal)
    else:
        report = check.report or {}
        st.caption("Which array feeds each model input and which labels score each output, with the shape and "
                   "dtype of one sample as the model expects it and as the data holds it (after the check). An "
                   "output without labels is only compared with the float32 model (fidelity).")
        st.table(widgets.tensor_map(summary, report), hide_index=True, border="horizontal")
        st.write({key: report.get(key) for key in ("source", "split", "calibration_samples", "eval_samples",
                                                    "sample_shape", "labelled", "label_classes", "notes")})
    if choice.model.suffix == ".tflite":
        st.info("A .tflite upload is compared through ai-edge-quantizer recipes (TensorFlow cannot re-convert it).")
