"""The sharding modes' option records: what each partitions, as ZeRO and FSDP define it, and their checks."""

from __future__ import annotations

import pytest

from core.memory.setup import SHARDINGS as SETUP_CHOICES
from core.memory.sharding import SHARDINGS, Sharding


def test_each_mode_partitions_what_zero_and_fsdp_define() -> None:
    # Rajbhandari et al. 2019, §5: stage 1 optimizer states, 2 adds gradients, 3 adds parameters; FSDP = stage 3
    assert {m.id: m.partitions for m in SHARDINGS.values()} == {
        "none": (), "zero1": ("optimizer",), "zero2": ("optimizer", "gradients"),
        "zero3": ("optimizer", "gradients", "weights"), "fsdp": ("optimizer", "gradients", "weights")}
    assert [m.id for m in SHARDINGS.values() if m.buckets_gradients] == ["zero2"]
    assert [m.id for m in SHARDINGS.values() if m.keeps_root_gathered] == ["fsdp"]
    assert tuple(SHARDINGS) == SETUP_CHOICES  # the CLI's and the page's choices are the records, lightest first


@pytest.mark.parametrize(("partitions", "gathers"), [(("weights",), "none"), ((), "per-unit"), (("states",), "none")])
def test_a_record_that_contradicts_itself_is_refused(partitions: tuple[str, ...], gathers: str) -> None:
    with pytest.raises(ValueError):
        Sharding("bad", "Bad", partitions, gathers)
