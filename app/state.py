"""Widget state mirrored to `st.query_params`, so a copied link reopens the same view.

Pattern: `seed(key, default, cast, allowed)` before the widget puts the link's value (or the default) into
`st.session_state[key]`; the widget is created with that `key` only; `mirror(keys)` after the widgets writes
the current values back to the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import streamlit as st

T = TypeVar("T")
LIST_SEPARATOR = ","


def seed(key: str, default: T, cast: Callable[[str], T] = str, allowed: Sequence[T] | None = None) -> None:
    """Initialise a widget's state from the URL once per session; invalid link values fall back to the default."""
    if key in st.session_state:
        return
    raw = st.query_params.get(key)
    value = default
    if raw is not None:
        try:
            candidate = cast(raw)
        except (TypeError, ValueError):
            candidate = default
        if allowed is None or candidate in allowed:
            value = candidate
    st.session_state[key] = value


def seed_list(key: str, default: Sequence[str], allowed: Sequence[str]) -> None:
    """`seed` for multiselects: the URL holds a comma-separated list; unknown items are dropped."""
    if key in st.session_state:
        return
    raw = st.query_params.get(key)
    items = [i for i in raw.split(LIST_SEPARATOR) if i in allowed] if raw else []
    st.session_state[key] = items or list(default)


def mirror(keys: Iterable[str]) -> None:
    """Write the current widget values to the URL (lists comma-separated)."""
    for key in keys:
        value: Any = st.session_state.get(key)
        if value is None:
            continue
        text = LIST_SEPARATOR.join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


def share_link() -> None:
    """A copyable link to this exact view (st.code has a copy button); relative when the host is unknown."""
    base = (st.context.url or "").split("?")[0]
    query = urlencode(dict(st.query_params.items()))
    with st.expander("Share this view", icon="🔗"):
        st.code(f"{base}?{query}" if query else base or "/", language=None)
