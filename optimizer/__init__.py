"""TFLite Optimization Studio's UI-free core. Importing it never imports TensorFlow or Streamlit."""
