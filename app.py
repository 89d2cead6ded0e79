"""Home page placeholder until the dashboard lands: says what the tool does and how to use the CLI."""

import streamlit as st

st.set_page_config(page_title="TFLite Optimization Studio", layout="wide")
st.title("TFLite Optimization Studio")
st.write("Produce TensorFlow Lite variants of a Keras/TensorFlow model and compare size, latency and accuracy.")
st.code("python -m optimizer run sample_models/digits_cnn.keras --data sample_models/digits.npz", language="bash")
