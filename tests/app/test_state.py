"""Links: every value a link carries is restored exactly, and a value that cannot be used is named in a warning
together with what was used instead (never replaced silently)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script() -> None:
    import streamlit as st

    from app.state import mirror, parse_bool, seed, seed_list

    seed("batch", 4, int, low=1, high=4096)
    seed("examples", 10_000, int)
    seed("epochs", 3.0, float, low=0.1)
    seed("gpu", "A100-80GB", str, ("A100-80GB", "H100", "T4"))
    seed("ckpt", False, parse_bool)
    seed("rank", None, int, low=1)
    seed_list("method", ("lora",), ("fft", "lora", "qlora"))
    st.number_input("batch", min_value=1, max_value=4096, key="batch")
    st.number_input("examples", min_value=1, key="examples")
    st.number_input("epochs", min_value=0.1, key="epochs")
    st.selectbox("gpu", ("A100-80GB", "H100", "T4"), key="gpu")
    st.toggle("ckpt", key="ckpt")
    st.number_input("rank", min_value=1, value=None, key="rank")
    st.multiselect("method", ("fft", "lora", "qlora"), key="method")
    mirror(("batch", "examples", "epochs", "gpu", "ckpt", "rank", "method"))


def _app(**params: str) -> AppTest:
    at = AppTest.from_function(_script)
    at.query_params.update(params)
    return at.run()


def test_good_link_values_are_restored_without_warnings() -> None:
    at = _app(batch="16", examples="500", epochs="1.5", gpu="T4", ckpt="True", rank="32", method="fft,qlora")
    assert not at.exception and not at.warning
    assert at.number_input(key="batch").value == 16
    assert at.number_input(key="examples").value == 500
    assert at.number_input(key="epochs").value == 1.5
    assert at.selectbox(key="gpu").value == "T4"
    assert at.toggle(key="ckpt").value is True
    assert at.number_input(key="rank").value == 32
    assert at.multiselect(key="method").value == ["fft", "qlora"]


def test_out_of_range_value_warns_with_range_and_fallback() -> None:
    at = _app(batch="100000")
    assert not at.exception
    assert [w.value for w in at.warning] == ["Link value batch=100000 is out of range (1-4096): using 4"]
    assert at.number_input(key="batch").value == 4


def test_not_a_number_warns_with_fallback() -> None:
    at = _app(examples="abc", epochs="0")
    texts = [w.value for w in at.warning]
    assert "Link value examples=abc is not a whole number: using 10000" in texts
    assert "Link value epochs=0 is out of range (0.1-any): using 3.0" in texts
    assert at.number_input(key="examples").value == 10_000


def test_unknown_choice_and_switch_and_list_items_warn() -> None:
    at = _app(gpu="V100", ckpt="maybe", method="lora,foo")
    texts = [w.value for w in at.warning]
    assert "Link value gpu=V100 is not one of A100-80GB, H100, T4: using A100-80GB" in texts
    assert "Link value ckpt=maybe is not a switch (true or false): using False" in texts
    assert "Link value method=lora,foo has unknown foo (not one of fft, lora, qlora): using lora" in texts
    assert at.multiselect(key="method").value == ["lora"]


def test_widget_changes_reach_the_url_and_a_cleared_value_leaves_it() -> None:
    at = _app(rank="16")
    at.number_input(key="batch").set_value(8)
    at.toggle(key="ckpt").set_value(True)
    at.number_input(key="rank").set_value(None)
    at.run()
    assert at.query_params["batch"] in ("8", ["8"])
    assert at.query_params["ckpt"] in ("True", ["True"])
    assert "rank" not in at.query_params
    # the link the URL now holds reopens the same values in a new session
    again = _app(**{k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()})
    assert not again.warning
    assert (again.number_input(key="batch").value, again.toggle(key="ckpt").value) == (8, True)
    assert again.number_input(key="rank").value is None
