"""The caching-allocator model against cases worked by hand from the rules of CUDACachingAllocator.cpp.

The 16/32 MiB and 1 MiB-boundary sequences are the ones PyTorch's devlog "When does fragmentation occur in the
CUDA caching allocator?" (pytorch/devlogs, 2026-06-01) walks through on a GPU; the expected figures are its.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest

from core.memory.allocator import AllocatorConfig, CachingAllocator, DeviceOutOfMemoryError
from core.memory.replay import ReplayPeaks, replay
from core.units import MIB

EXPANDABLE = AllocatorConfig(expandable_segments=True)


def allocate(allocator: CachingAllocator, count: int, nbytes: int) -> list[int]:
    return [allocator.malloc(nbytes) for _ in range(count)]


def free_all(allocator: CachingAllocator, handles: list[int]) -> None:
    for handle in handles:
        allocator.free(handle)


# -- sizes and segments ------------------------------------------------------------------------------------------
def test_requests_round_up_to_512_bytes() -> None:
    allocator = CachingAllocator()
    allocator.malloc(1)
    assert allocator.allocated == 512
    allocator.malloc(513)
    assert allocator.allocated == 512 + 1024
    allocator.malloc(1024)
    assert allocator.allocated == 512 + 1024 + 1024
    assert allocator.reserved == 2 * MIB  # all three share one small segment


def test_a_small_request_reserves_a_2mib_segment() -> None:
    allocator = CachingAllocator()
    allocator.malloc(100)
    assert (allocator.allocated, allocator.reserved) == (512, 2 * MIB)


def test_requests_of_1_to_10_mib_carve_20mib_segments() -> None:
    allocator = CachingAllocator()
    allocator.malloc(5 * MIB)
    assert (allocator.allocated, allocator.reserved) == (5 * MIB, 20 * MIB)
    allocator.malloc(5 * MIB)  # split off the 15 MiB left in the first segment
    assert (allocator.allocated, allocator.reserved) == (10 * MIB, 20 * MIB)
    allocate(allocator, 2, 5 * MIB)  # the third splits, the fourth takes the last 5 MiB whole
    assert allocator.reserved == 20 * MIB
    allocator.malloc(5 * MIB)
    assert allocator.reserved == 40 * MIB


def test_large_requests_get_their_own_segment_rounded_to_2mib() -> None:
    allocator = CachingAllocator()
    allocator.malloc(30 * MIB)
    assert allocator.reserved == 30 * MIB
    allocator.malloc(31 * MIB)
    assert allocator.reserved == 30 * MIB + 32 * MIB
    # the 1 MiB left in the 32 MiB segment is not > kSmallSize, so the block stays whole and counts as allocated
    assert allocator.allocated == 30 * MIB + 32 * MIB


def test_a_freed_block_is_reused_without_growing_reserved() -> None:
    allocator = CachingAllocator()
    allocator.free(allocator.malloc(30 * MIB))
    assert (allocator.allocated, allocator.reserved) == (0, 30 * MIB)
    allocator.malloc(30 * MIB)
    assert (allocator.allocated, allocator.reserved, allocator.peak_reserved) == (30 * MIB, 30 * MIB, 30 * MIB)


def test_a_larger_request_after_a_free_grows_reserved() -> None:
    allocator = CachingAllocator()
    allocator.free(allocator.malloc(12 * MIB))
    allocator.malloc(14 * MIB)  # the cached 12 MiB block is too small: a new segment
    assert (allocator.allocated, allocator.reserved) == (14 * MIB, 26 * MIB)
    assert (allocator.peak_allocated, allocator.peak_reserved) == (14 * MIB, 26 * MIB)


def test_freed_neighbours_merge_to_serve_a_full_size_request() -> None:
    allocator = CachingAllocator()
    allocator.free(allocator.malloc(40 * MIB))
    halves = allocate(allocator, 2, 20 * MIB)  # both halves of the one 40 MiB segment
    assert allocator.reserved == 40 * MIB
    free_all(allocator, halves)
    allocator.malloc(40 * MIB)
    assert allocator.reserved == 40 * MIB


def test_blocks_of_different_segments_never_merge() -> None:
    allocator = CachingAllocator()  # small then large: eight 16 MiB segments, then four new 32 MiB ones
    small = allocate(allocator, 8, 16 * MIB)
    assert allocator.reserved == 128 * MIB
    free_all(allocator, small)
    allocate(allocator, 4, 32 * MIB)
    assert allocator.reserved == 256 * MIB

    allocator = CachingAllocator()  # large then small: each 32 MiB segment splits into two 16 MiB blocks
    free_all(allocator, allocate(allocator, 4, 32 * MIB))
    allocate(allocator, 8, 16 * MIB)
    assert allocator.reserved == 128 * MIB


def test_empty_cache_releases_only_unsplit_segments() -> None:
    allocator = CachingAllocator()
    big = allocator.malloc(30 * MIB)
    medium = allocator.malloc(5 * MIB)
    allocator.free(big)
    allocator.empty_cache()
    assert allocator.reserved == 20 * MIB  # the 20 MiB segment still holds the live 5 MiB block
    allocator.free(medium)
    allocator.empty_cache()
    assert (allocator.reserved, allocator.peak_reserved) == (0, 50 * MIB)


# -- PYTORCH_CUDA_ALLOC_CONF options -----------------------------------------------------------------------------
def test_expandable_segments_map_20mib_pages_and_free_space_merges() -> None:
    allocator = CachingAllocator(EXPANDABLE)
    small = allocate(allocator, 8, 16 * MIB)
    assert (allocator.allocated, allocator.reserved) == (128 * MIB, 140 * MIB)  # seven 20 MiB pages
    free_all(allocator, small)
    allocate(allocator, 4, 32 * MIB)  # the one merged free range serves them: no page mapped
    assert (allocator.reserved, allocator.peak_reserved) == (140 * MIB, 140 * MIB)


def test_expandable_segments_stay_close_to_allocated_where_segments_fragment() -> None:
    growing = []  # a batch that grows each step: 10, 11, ..., 19 MiB, each freed before the next
    for step in range(10):
        growing += [(10 + step) * MIB, -(2 * step + 1)]
    # default: segments of 10, 12, 14, 16, 18, 20 MiB (odd sizes round up to a new one, even ones reuse it whole)
    assert replay(growing) == ReplayPeaks(allocated=20 * MIB, reserved=90 * MIB)
    # expandable: one 20 MiB page serves them all, split to the exact size
    assert replay(growing, EXPANDABLE) == ReplayPeaks(allocated=19 * MIB, reserved=20 * MIB)


def test_expandable_segments_cannot_merge_across_live_blocks() -> None:
    allocator = CachingAllocator(EXPANDABLE)
    blocks = allocate(allocator, 4, 16 * MIB)
    assert allocator.reserved == 80 * MIB
    allocator.free(blocks[0])
    allocator.free(blocks[2])
    allocator.malloc(32 * MIB)  # three free 16 MiB pieces, none 32 MiB: the tail grows by one page
    assert allocator.reserved == 100 * MIB


def test_expandable_segments_keep_small_and_large_pools_apart() -> None:
    allocator = CachingAllocator(EXPANDABLE)
    allocator.free(allocator.malloc(2 * MIB))
    allocator.malloc(MIB // 2)  # small pool: its own segment and 2 MiB page
    assert allocator.reserved == 22 * MIB
    allocator = CachingAllocator(EXPANDABLE)
    allocator.free(allocator.malloc(2 * MIB))
    allocator.malloc(2 * MIB)
    assert allocator.reserved == 20 * MIB


def test_max_split_size_keeps_oversize_blocks_whole() -> None:
    allocator = CachingAllocator(AllocatorConfig(max_split_size=64 * MIB))
    allocator.free(allocator.malloc(100 * MIB))
    allocator.malloc(30 * MIB)  # an oversize block never serves a request below max_split_size
    assert allocator.reserved == 130 * MIB
    big = allocator.malloc(90 * MIB)  # within max_non_split_rounding (20 MiB) of 100 MiB: taken whole
    assert (allocator.allocated, allocator.reserved) == (130 * MIB, 130 * MIB)
    allocator.free(big)
    allocator.malloc(70 * MIB)  # 100 MiB >= 70 + 20 MiB: refused, new segment
    assert allocator.reserved == 200 * MIB

    allocator = CachingAllocator()  # default: the cached 100 MiB block is split
    allocator.free(allocator.malloc(100 * MIB))
    allocator.malloc(30 * MIB)
    assert allocator.reserved == 100 * MIB


def test_roundup_power2_divisions_round_to_quarter_powers_of_two() -> None:
    allocator = CachingAllocator(AllocatorConfig(roundup_power2_divisions=4))
    allocator.malloc(5 * MIB + 1)  # between 4 and 8 MiB in steps of 1 MiB
    assert allocator.allocated == 6 * MIB
    per_interval = (0, 0, 4) + (0,) * 13  # only [4 MiB, 8 MiB) is rounded
    allocator = CachingAllocator(AllocatorConfig(roundup_power2_divisions=per_interval))
    allocator.malloc(5 * MIB + 1)
    allocator.malloc(9 * MIB + 1)
    assert allocator.allocated == 6 * MIB + 9 * MIB + 512


# -- a device capacity: the out-of-memory path -------------------------------------------------------------------
def test_capacity_releases_cached_segments_then_raises() -> None:
    allocator = CachingAllocator(capacity=100 * MIB)
    allocator.free(allocator.malloc(60 * MIB))
    allocator.malloc(70 * MIB)  # 60 + 70 MiB do not fit: the cached 60 MiB segment is released first
    assert (allocator.reserved, allocator.peak_reserved) == (70 * MIB, 70 * MIB)
    with pytest.raises(DeviceOutOfMemoryError, match="out of memory"):
        allocator.malloc(40 * MIB)
    assert (allocator.allocated, allocator.reserved) == (70 * MIB, 70 * MIB)


def test_capacity_unmaps_free_expandable_pages_before_raising() -> None:
    allocator = CachingAllocator(EXPANDABLE, capacity=44 * MIB)
    allocator.free(allocator.malloc(30 * MIB))  # two 20 MiB pages stay mapped
    allocate(allocator, 4, MIB)  # two 2 MiB small pages: 44 MiB, the whole device
    assert allocator.reserved == 44 * MIB
    allocate(allocator, 2, MIB)  # needs a third small page: the free large pages are unmapped first
    assert (allocator.allocated, allocator.reserved, allocator.peak_reserved) == (6 * MIB, 6 * MIB, 44 * MIB)


# -- replay ------------------------------------------------------------------------------------------------------
def test_replay_reads_allocations_and_frees_by_event_index() -> None:
    events = [5 * MIB, 5 * MIB, -1, 12 * MIB, -2, -4]  # free event 0, then 1, then 3
    assert replay(events) == ReplayPeaks(allocated=17 * MIB, reserved=32 * MIB)
    assert replay(np.array(events, dtype=np.int64)) == ReplayPeaks(allocated=17 * MIB, reserved=32 * MIB)
    # preallocated blocks come first and stay: a 100-byte one adds a 2 MiB small segment
    assert replay(events, preallocated=[100]) == ReplayPeaks(allocated=17 * MIB + 512, reserved=34 * MIB)
    assert replay([]) == ReplayPeaks(allocated=0, reserved=0)


def _random_events(rng: random.Random, count: int, free_share: float, size: Callable[[], int]) -> list[int]:
    """A replay's events: allocations of `size()` bytes, each event a free of a random live one with
    probability `free_share`."""
    events: list[int] = []
    live: list[int] = []
    for _ in range(count):
        if live and rng.random() < free_share:
            events.append(-(live.pop(rng.randrange(len(live))) + 1))
        else:
            live.append(len(events))
            events.append(size())
    return events


def _run(allocator: CachingAllocator, events: list[int]) -> CachingAllocator:
    """The events through the allocator's public malloc/free, handle by handle."""
    handles: dict[int, int] = {}
    for i, n in enumerate(events):
        if n > 0:
            handles[i] = allocator.malloc(n)
        else:
            allocator.free(handles.pop(-n - 1))
    return allocator


def test_replay_matches_the_allocator_on_random_steps() -> None:
    rng = random.Random(7)
    events = _random_events(rng, 3000, 0.45, lambda: int(2 ** rng.uniform(6, 27)))
    for config in (AllocatorConfig(), EXPANDABLE):
        allocator = _run(CachingAllocator(config), events)
        allocator._audit()
        assert replay(events, config) == ReplayPeaks(allocator.peak_allocated, allocator.peak_reserved)
        assert allocator.peak_allocated <= allocator.peak_reserved


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_default_replay_is_the_allocator_event_for_event(seed: int) -> None:
    """`replay` under default settings runs an inlined loop; the class is its reference. Sizes repeat (equal free
    blocks are told apart by address) and some are kept from before the step, as a real log's are."""
    rng = random.Random(seed)
    sizes = [int(2 ** rng.uniform(8, 26)) for _ in range(12)]
    kept = [rng.choice(sizes) for _ in range(5)]
    events = _random_events(rng, 4000, 0.47, lambda: rng.choice(sizes))
    allocator = CachingAllocator()
    for n in kept:
        allocator.malloc(n)
    _run(allocator, events)
    expected = ReplayPeaks(allocator.peak_allocated, allocator.peak_reserved)
    assert replay(events, preallocated=kept) == expected
    # the class's own path (a capacity nothing reaches) agrees too
    assert replay(events, preallocated=kept, capacity=1 << 50) == expected


@pytest.mark.parametrize("config", [AllocatorConfig(), EXPANDABLE, AllocatorConfig(max_split_size=32 * MIB),
                                    AllocatorConfig(roundup_power2_divisions=8)])
@pytest.mark.parametrize("capacity", [None, 400 * MIB])
def test_block_lists_and_statistics_stay_consistent(config: AllocatorConfig, capacity: int | None) -> None:
    rng = random.Random(11)
    allocator = CachingAllocator(config, capacity)
    live: list[int] = []
    for step in range(4000):
        if live and rng.random() < 0.48:
            allocator.free(live.pop(rng.randrange(len(live))))
        else:
            try:
                live.append(allocator.malloc(int(2 ** rng.uniform(0, 27))))
            except DeviceOutOfMemoryError:
                assert capacity is not None
        if step % 500 == 0:
            allocator._audit()
        assert allocator.reserved <= (capacity or allocator.reserved)
    free_all(allocator, live)
    allocator._audit()
    assert allocator.allocated == 0
    allocator.empty_cache()  # everything free: every segment (and every mapped page) goes back
    assert allocator.reserved == 0
    allocator._audit()


# -- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nbytes", [0, -5, 1.5, True])
def test_malloc_refuses_what_is_not_a_positive_byte_count(nbytes: object) -> None:
    with pytest.raises(ValueError, match="positive number of bytes"):
        CachingAllocator().malloc(nbytes)  # type: ignore[arg-type]


def test_free_refuses_double_frees_and_unknown_handles() -> None:
    allocator = CachingAllocator()
    handle = allocator.malloc(10)
    allocator.free(handle)
    with pytest.raises(ValueError, match="already freed"):
        allocator.free(handle)
    with pytest.raises(ValueError, match="unknown handle"):
        allocator.free(99)


@pytest.mark.parametrize(("events", "message"), [
    ([0], "neither an allocation nor a free"),
    ([-1], "not an earlier event"),
    ([5, -2], "not an earlier event"),
    ([5, -1, -1], "second time"),
    ([5, -1, -2], "itself a free"),
    ([1.5], "integers"),
])
def test_replay_refuses_malformed_events(events: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replay(events)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 20 MiB"):
        AllocatorConfig(max_split_size=MIB)
    with pytest.raises(ValueError, match="powers of two"):
        AllocatorConfig(roundup_power2_divisions=3)
    with pytest.raises(ValueError, match="one value or 16"):
        AllocatorConfig(roundup_power2_divisions=(4, 4))
    with pytest.raises(ValueError, match="capacity"):
        CachingAllocator(capacity=0)
    with pytest.raises(ValueError, match="preallocated"):
        replay([1], preallocated=[0])
    with pytest.raises(ValueError, match="allocated <= reserved"):
        ReplayPeaks(allocated=2, reserved=1)
