"""Model selection shared by the pages: a catalogue search that also takes any Hub id or an uploaded config."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from app.state import seed
from core import catalogue
from core.models import ResolvedModel, resolve_model

DEFAULT_MODEL = "meta-llama/Llama-2-7b-hf"


@st.cache_resource(show_spinner="Resolving the model config...", max_entries=32)
def cached_model(name: str) -> ResolvedModel:
    """Resolved once per name per server: catalogue, path, or a config-only Hub download (skeletons are cached
    by core per config, so the meta model behind it is built once too)."""
    return resolve_model(name)


def model_picker(key: str = "model") -> ResolvedModel:
    """The model widget: catalogue ids (type to search, or type any Hub id), or an uploaded config.json.

    Raises InputError (the page shows it with st.error) when the name cannot be resolved.
    """
    ids = sorted(catalogue.entries())
    seed(key, DEFAULT_MODEL)
    options = ids if st.session_state[key] in ids else [st.session_state[key], *ids]
    name = st.selectbox("Model: catalogue id, or type any Hugging Face repo id", options, key=key,
                        accept_new_options=True, help="Offline catalogue of 39 configs; other ids fetch config.json")
    upload = st.file_uploader("...or upload a config.json", type=["json"], key=f"{key}_upload")
    if upload is not None:
        return resolve_model(str(_saved_upload(upload.getvalue())))
    return cached_model(name)


def _saved_upload(content: bytes) -> Path:
    """Uploaded configs are stored by content hash, so reruns reuse the same path (and the cached skeleton)."""
    folder = Path(tempfile.gettempdir()) / "tunewise-configs"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(content).hexdigest()[:16]}.json"
    if not path.exists():
        path.write_bytes(content)
    return path
