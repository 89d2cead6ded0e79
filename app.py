"""The app's entry point (`streamlit run app.py`): its pages in the sidebar's order, Home first, named "Home" (not
"app", as Streamlit names this file's page) with the other pages' names and addresses (`/Model_and_data`,
`/Variants_and_run`, `/Compare`, `/History`) taken from their file names.
The pages live in `app_pages/`, not `pages/`: Streamlit serves a `pages/` folder by itself too, and a link to one of
its pages opened first on a fresh server ran that page alone, with a sidebar listing "app" beside "Home"."""

import streamlit as st

st.navigation([
    st.Page("app_pages/0_Home.py", title="Home", default=True),
    st.Page("app_pages/1_Model_and_data.py"),
    st.Page("app_pages/2_Variants_and_run.py"),
    st.Page("app_pages/3_Compare.py"),
    st.Page("app_pages/4_History.py"),
]).run()
