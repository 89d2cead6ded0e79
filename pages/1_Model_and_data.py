"""Model & data: pick a sample or upload files; see the model summary and the data check before running."""

from pathlib import Path

import streamlit as st

from optimizer.errors import InputRejected
from optimizer.intake import file_sha256
from optimizer.paths import SAMPLES
from ui import services, state, widgets

st.set_page_config(page_title="Model & data", layout="wide")
st.title("Model & data")

mode = st.radio("Source", ["Sample model", "Upload"], horizontal=True, key="source_mode")
if mode == "Sample model":
    label = st.selectbox("Sample", list(SAMPLES), key="sample_choice")
    model_path, data_path = SAMPLES[label]
    if st.button("Use this sample", key="use_sample"):
        state.set_selection(state.Selection(model_path, data_path, label=label))
else:
    st.caption(f"Uploads are limited to {services.MAX_UPLOAD_BYTES // 1024**2} MB each and checked before use.")
    model_file = st.file_uploader("Model (.keras, .h5, SavedModel .zip, .tflite)",
                                  type=["keras", "h5", "zip", "tflite"], key="upload_model")
    data_file = st.file_uploader("Data (.npz, .npy, .csv, image .zip)", type=["npz", "npy", "csv", "zip"],
                                 key="upload_data")
    labels_file = st.file_uploader("Labels .npy (only with a .npy of inputs)", type=["npy"], key="upload_labels")
    with st.expander("Separate calibration and evaluation files"):
        calib_file = st.file_uploader("Calibration data", type=["npz", "npy", "csv", "zip"], key="upload_calib")
        eval_file = st.file_uploader("Evaluation data", type=["npz", "npy", "csv", "zip"], key="upload_eval")
    if st.button("Use these files", key="use_uploads", disabled=model_file is None):
        with widgets.user_errors():
            folder = services.runs_dir() / "uploads" / state.session_id()
            saved = {name: services.save_upload(upload, folder) if upload else None for name, upload in
                     (("model", model_file), ("data", data_file), ("labels", labels_file),
                      ("calib", calib_file), ("eval_data", eval_file))}
            if (saved["calib"] is None) != (saved["eval_data"] is None):
                raise InputRejected("separate data needs both a calibration file and an evaluation file")
            state.set_selection(state.Selection(saved["model"], saved["data"], saved["labels"], saved["calib"],
                                                saved["eval_data"], label="uploaded"))

choice = state.selection()
st.subheader(f"Model: {choice.model.name}")
with widgets.user_errors():
    summary = services.inspect_model(str(choice.model), file_sha256(choice.model))
    left, right = st.columns(2)
    left.write({"format": summary["format"], "file_size_bytes": summary["file_size_bytes"],
                "parameters": summary["parameter_count"]})
    right.dataframe([{"role": "input", **t} for t in summary["inputs"]] +
                    [{"role": "output", **t} for t in summary["outputs"]], hide_index=True)
    with st.expander(f"{len(summary['layers'])} layers / ops"):
        st.dataframe(summary["layers"], hide_index=True)
    st.subheader("Data check")
    scratch = services.runs_dir() / "uploads" / state.session_id() / "check"
    report = services.check_data(summary["sha256"], summary["inputs"][0]["shape"], summary["outputs"][0]["shape"],
                                 choice.data_paths(), str(scratch))
    st.write({key: report.get(key) for key in ("source", "split", "calibration_samples", "eval_samples",
                                                "sample_shape", "labelled", "label_classes", "notes")})
    if Path(choice.model).suffix == ".tflite":
        st.info("A .tflite upload is compared through ai-edge-quantizer recipes (TensorFlow cannot re-convert it).")
