"""Streamlit entry: `streamlit run app/main.py`. Builds the navigation; each page is a thin script in pages/.

On a process's first visits, a skeleton (the page's title and the warm-up step running) shows within a moment
while app/warmup.py's background thread imports the engine and opens the warehouse; the page then renders.

Every page runs inside one guard: bad input (`InputError`, e.g. a busy or read-only warehouse) shows its own
line; anything unexpected shows one line with a reference while the traceback goes to the server log only
(`client.showErrorDetails = "none"` in .streamlit/config.toml covers what escapes even this, e.g. fragments).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import streamlit as st

from app.warmup import start as start_warmup
from core.errors import InputError

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
LOG = logging.getLogger("tunewise.app")

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
warmup = start_warmup()
if not warmup.ready.is_set():
    skeleton = st.empty()
    with skeleton.container():
        st.title(navigation.title)
        status = st.empty()
        while not warmup.ready.wait(0.2):
            status.info(f"Starting up after a server restart: {warmup.step}... (only the first visit waits)",
                        icon=":material/hourglass_top:")
    skeleton.empty()
try:
    navigation.run()
except InputError as exc:
    st.error(str(exc))
except Exception as exc:  # the guard of last resort: st.rerun/st.stop are BaseExceptions and pass through
    reference = uuid.uuid4().hex[:8]
    LOG.exception("page %r failed (reference %s)", navigation.title, reference)
    st.error(f"This page stopped on an unexpected error ({type(exc).__name__}); reload it, and if it happens again "
             f"give the operator reference {reference} (the details are in the server log).")
