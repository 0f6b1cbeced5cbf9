"""Model selection shared by the pages: a catalogue search that also takes any Hub id or an uploaded config.

An uploaded config.json is stored server-side by content hash (core.uploads) and its hash goes into the URL as
`config=<hash>`, so a shared link reopens the same model in a new session, where the uploader itself is empty.
"""

from __future__ import annotations

import streamlit as st

from app.state import link_warning, mirror, seed
from core import catalogue
from core.errors import InputError
from core.models import ResolvedModel, resolve_model
from core.uploads import StoredConfig, load_config, store_config

DEFAULT_MODEL = "meta-llama/Llama-2-7b-hf"
CONFIG_KEY = "config"  # session state and URL key of the uploaded config's hash
_UPLOADED_FILE = "_config_file_id"  # which uploader file the stored hash came from


@st.cache_resource(show_spinner="Resolving the model config...", max_entries=32)
def cached_model(name: str) -> ResolvedModel:
    """Resolved once per name per server: catalogue, path, or a config-only Hub download (skeletons are cached
    by core per config, so the meta model behind it is built once too)."""
    return resolve_model(name)


@st.cache_resource(show_spinner=False, max_entries=32)
def cached_upload(digest: str) -> StoredConfig:
    """A stored upload by hash, read once per server."""
    return load_config(digest)


def _seed_config(model_key: str) -> None:
    """The link's `config=` hash, when this server keeps that upload; otherwise a warning and the picker's model."""
    if CONFIG_KEY in st.session_state:
        return
    st.session_state[CONFIG_KEY] = None
    raw = st.query_params.get(CONFIG_KEY)
    if not raw:
        return
    try:
        st.session_state[CONFIG_KEY] = cached_upload(raw).digest
    except InputError as exc:
        reason = str(exc).split(": ", 1)[-1]
        link_warning(CONFIG_KEY, raw, f"cannot be reopened ({reason})", f"the model {st.session_state[model_key]}")


def _take_upload(upload_key: str) -> None:
    """Store a newly uploaded file (InputError when it is not a usable config); forget it once it is removed."""
    upload = st.session_state.get(upload_key)
    if upload is not None and upload.file_id != st.session_state.get(_UPLOADED_FILE):
        stored = store_config(upload.getvalue(), upload.name)
        cached_upload.clear()
        st.session_state[CONFIG_KEY] = stored.digest
        st.session_state[_UPLOADED_FILE] = upload.file_id
    elif upload is None and st.session_state.get(_UPLOADED_FILE):
        st.session_state[CONFIG_KEY] = None
        st.session_state[_UPLOADED_FILE] = None


def _forget_upload() -> None:
    st.session_state[CONFIG_KEY] = None


def model_picker(key: str = "model") -> ResolvedModel:
    """The model widget: catalogue ids (type to search, or type any Hub id), or an uploaded config.json.

    Mirrors its own URL keys (`model`, and `config` for an upload). Raises InputError (the page shows it with
    st.error) when the name or the uploaded file cannot be resolved.
    """
    ids = sorted(catalogue.entries())
    seed(key, DEFAULT_MODEL)
    _seed_config(key)
    _take_upload(f"{key}_upload")
    digest = st.session_state[CONFIG_KEY]
    options = ids if st.session_state[key] in ids else [st.session_state[key], *ids]
    name = st.selectbox("Model: catalogue id, or type any Hugging Face repo id", options, key=key,
                        accept_new_options=True, disabled=digest is not None,
                        help="Offline catalogue of 39 configs; other ids fetch their config.json only")
    st.file_uploader("...or upload a config.json", type=["json"], key=f"{key}_upload",
                     help="Kept on this server by its content hash, so a shared link reopens it")
    mirror((key, CONFIG_KEY))
    if digest is None:
        return cached_model(name)
    stored = cached_upload(digest)
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.info(f"Model: your uploaded {stored.filename} ({stored.model.model_type}, kept as {digest}; a shared link "
              "reopens it)", icon=":material/upload_file:")
    right.button("Use the picker's model", key=f"{key}_forget_upload", on_click=_forget_upload)
    return stored.model
