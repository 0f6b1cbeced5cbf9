"""Streamlit entry: `streamlit run app/main.py`. Builds the navigation; each page is a thin script in pages/."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="TuneWise", page_icon="🎛️", layout="wide")
navigation = st.navigation(
    [
        st.Page(str(PAGES_DIR / "counts.py"), title="Trainable parameters", url_path="counts", default=True),
        st.Page(str(PAGES_DIR / "evidence.py"), title="Evidence", url_path="evidence"),
        st.Page(str(PAGES_DIR / "guide.py"), title="Guide", url_path="guide"),
        st.Page(str(PAGES_DIR / "calibrate.py"), title="Calibrate", url_path="calibrate"),
    ]
)
navigation.run()
