"""The sharding modes' and optimizers' option records: what each mode partitions, as ZeRO and FSDP define it, what each
optimizer feeds, and their checks."""

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


def test_the_optimizer_records_feed_every_list_the_engine_reads() -> None:
    from core.memory.optimizers import EIGHT_BIT, OPTIMIZERS, Optimizer
    from core.memory.setup import OPTIMIZERS as SETUP_OPTIMIZERS
    from core.memory.setup import PAGED_OPTIMIZERS
    from core.memory.throughput import OPTIMIZER_BYTES

    assert tuple(OPTIMIZERS) == SETUP_OPTIMIZERS and PAGED_OPTIMIZERS == ("paged-adamw-8bit",)
    assert OPTIMIZER_BYTES == {"adamw": 28, "adamw-fused": 28, "adamw-8bit": 16, "paged-adamw-8bit": 16,
                               "sgd": 12, "adafactor": 12}  # fmt: skip
    assert EIGHT_BIT == "adamw-8bit"
    assert [o.id for o in OPTIMIZERS.values() if o.full_precision_adam] == ["adamw", "adamw-fused"]
    with pytest.raises(ValueError, match="only AdamW fuses"):
        Optimizer("bad", "Bad", "sgd", 12, fused=True)
