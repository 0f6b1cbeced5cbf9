"""Streamlit entry: `streamlit run app/main.py`. Builds the navigation; each page is a thin script in pages/."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="TuneWise", page_icon="🎛️", layout="wide")
navigation = st.navigation(
    [
        st.Page(str(PAGES_DIR / "decide.py"), title="Decide", icon=":material/explore:", default=True),
        st.Page(str(PAGES_DIR / "memory.py"), title="Memory fit", icon=":material/memory:", url_path="memory"),
        st.Page(str(PAGES_DIR / "evidence.py"), title="Evidence", icon=":material/menu_book:", url_path="evidence"),
        st.Page(str(PAGES_DIR / "calibrate.py"), title="Calibrate", icon=":material/science:", url_path="calibrate"),
        st.Page(str(PAGES_DIR / "guide.py"), title="Guide", icon=":material/school:", url_path="guide"),
    ]
)
st.sidebar.caption("TuneWise: PEFT or full fine-tuning, with the evidence. Counts from peft on the meta device; "
                   "memory from each method's real mechanism; gaps from published FFT-vs-PEFT pairs.")
navigation.run()
