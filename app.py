"""The app's entry point (`streamlit run app.py`): its pages in the sidebar's order, Home first. Streamlit would
name this file's page "app"; st.navigation names it "Home" and keeps the other pages' names and addresses
(`/Model_and_data`, `/Variants_and_run`, `/Compare`, `/History`), taken from their file names."""

import streamlit as st

st.navigation([
    st.Page("pages/0_Home.py", title="Home", default=True),
    st.Page("pages/1_Model_and_data.py"),
    st.Page("pages/2_Variants_and_run.py"),
    st.Page("pages/3_Compare.py"),
    st.Page("pages/4_History.py"),
]).run()
