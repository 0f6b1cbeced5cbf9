"""Widget state mirrored to `st.query_params`, so a copied link reopens the same view.

Pattern: `seed(key, default, cast, allowed)` before the widget puts the link's value (or the default) into
`st.session_state[key]`; the widget is created with that `key` only; `mirror(keys)` after the widgets writes
the current values back to the URL. A link value that cannot be used (not a number, out of the widget's range,
not one of its choices) is never replaced silently: one warning names the value and what was used instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import streamlit as st

T = TypeVar("T")
LIST_SEPARATOR = ","
# Lists whose items can hold commas (a paper's citation: "SVFT (Lingam et al. 2024, ...) Tables 1,2,3,8") are
# joined with this instead, per URL key.
SEPARATORS: dict[str, str] = {"source": "|"}
SHOWN_CHOICES = 6  # a warning lists at most this many allowed values
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_KINDS: dict[Callable[[str], Any], str] = {int: "a whole number", float: "a number"}


def parse_bool(text: str) -> bool:
    """A switch in a link: True/False (what `mirror` writes), or 1/0, yes/no, on/off."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a switch")


def _kind(cast: Callable[[str], Any]) -> str:
    if cast is parse_bool:
        return "a switch (true or false)"
    return _KINDS.get(cast, "a valid value")


def _choices(allowed: Sequence[Any]) -> str:
    shown = ", ".join(map(str, allowed[:SHOWN_CHOICES]))
    return shown + (f", ... ({len(allowed)} in all)" if len(allowed) > SHOWN_CHOICES else "")


def link_warning(key: str, raw: str, problem: str, used: Any) -> None:
    """The one line a link value that cannot be used gets: which value, what is wrong, what was used instead."""
    st.warning(f"Link value {key}={raw} {problem}: using {used}", icon=":material/link_off:")


def seed(
    key: str,
    default: T,
    cast: Callable[[str], T] = str,
    allowed: Sequence[T] | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
) -> None:
    """Initialise a widget's state from the URL once per session.

    `allowed` lists the valid values, `low`/`high` bound numbers (inclusive, as the widget's min/max). A link
    value that fails the cast, the choices or the range falls back to `default` with a warning saying so."""
    if key in st.session_state:
        return
    raw = st.query_params.get(key)
    value = default
    if raw is not None:
        try:
            candidate = cast(raw)
        except (TypeError, ValueError):
            link_warning(key, raw, f"is not {_kind(cast)}", default)
        else:
            if allowed is not None and candidate not in allowed:
                link_warning(key, raw, f"is not one of {_choices(allowed)}", default)
            elif (low is not None and candidate < low) or (high is not None and candidate > high):  # type: ignore[operator]
                link_warning(key, raw, f"is out of range ({_bound(low)}-{_bound(high)})", default)
            else:
                value = candidate
    st.session_state[key] = value


def _bound(value: float | None) -> str:
    if value is None:
        return "any"
    return f"{value:g}" if isinstance(value, float) else str(value)


def seed_list(key: str, default: Sequence[str], allowed: Sequence[str]) -> None:
    """`seed` for multiselects: the URL holds a comma-separated list; unknown items are dropped with a warning."""
    if key in st.session_state:
        return
    raw = st.query_params.get(key)
    items = [i for i in raw.split(SEPARATORS.get(key, LIST_SEPARATOR)) if i] if raw else []
    known = [i for i in items if i in allowed]
    unknown = [i for i in items if i not in allowed]
    if unknown:
        used = ", ".join(known) if known else ", ".join(default)
        link_warning(key, raw or "", f"has unknown {', '.join(unknown)} (not one of {_choices(allowed)})", used)
    st.session_state[key] = known or list(default)


def link_range(key: str, default: tuple[T, T], steps: Sequence[T], cast: Callable[[str], T]) -> tuple[T, T]:
    """The `value` of a range slider over `steps` from the link (`low,high`, both steps, low first), else `default`.

    Not seeded into session state like the other widgets: a slider is a range only when created with a tuple
    `value`, and a value given beside state set through the API draws Streamlit's warning. The URL is mirrored to
    the slider's current range, so this value is the range the user last chose."""
    raw = st.query_params.get(key)
    value = default
    if raw is not None:
        try:
            low, high = (cast(part) for part in raw.split(LIST_SEPARATOR))
        except (TypeError, ValueError):
            link_warning(key, raw, "is not two values low,high", LIST_SEPARATOR.join(map(str, default)))
        else:
            if low in steps and high in steps and steps.index(low) <= steps.index(high):
                value = (low, high)
            else:
                link_warning(key, raw, f"is not a range of {_choices(steps)}", LIST_SEPARATOR.join(map(str, default)))
    return value


def mirror(keys: Iterable[str]) -> None:
    """Write the current widget values to the URL (lists comma-separated); a value cleared to None (an empty
    number box, say) leaves the URL, so a link never brings back a value the user removed."""
    for key in keys:
        value: Any = st.session_state.get(key)
        if value is None:
            if key in st.session_state and key in st.query_params:
                del st.query_params[key]
            continue
        separator = SEPARATORS.get(key, LIST_SEPARATOR)
        text = separator.join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


def share_link() -> None:
    """A copyable link to this exact view (st.code has a copy button); relative when the host is unknown."""
    base = (st.context.url or "").split("?")[0]
    query = urlencode(dict(st.query_params.items()))
    with st.expander("Share this view", icon="🔗"):
        st.code(f"{base}?{query}" if query else base or "/", language=None)
