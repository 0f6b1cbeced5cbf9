"""Replay a training step's allocation log through the caching-allocator model (`core.memory.allocator`): the
peaks `torch.cuda.max_memory_allocated()` and `max_memory_reserved()` would show.

`replay` takes the events as a flat list (an allocation's bytes, or minus one plus the index of the allocation a
free releases); under torch's default settings and no capacity it runs `_replay_default`, the allocator's rules
inlined into one loop (the estimate's hot path), else the `CachingAllocator` class, which stays the reference.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.memory.allocator import (
    DEFAULT_CONFIG,
    LARGE_BUFFER,
    MIN_BLOCK_SIZE,
    MIN_LARGE_ALLOC,
    ROUND_LARGE,
    SMALL_BUFFER,
    SMALL_SIZE,
    AllocatorConfig,
    CachingAllocator,
    _Block,
)

__all__ = ["ReplayPeaks", "replay"]


@dataclass(frozen=True)
class ReplayPeaks:
    """What `torch.cuda.max_memory_allocated()` and `max_memory_reserved()` would report after the replay."""

    allocated: int
    reserved: int

    def __post_init__(self) -> None:
        # reserved always holds every allocated block, so its peak is at least the allocated peak
        if not 0 <= self.allocated <= self.reserved:
            raise ValueError(f"peaks must satisfy 0 <= allocated <= reserved, got {self.allocated}, {self.reserved}")


def replay(sizes: Sequence[int], config: AllocatorConfig = DEFAULT_CONFIG, *,
           preallocated: Sequence[int] = (), capacity: int | None = None) -> ReplayPeaks:
    """Replay an event list through a fresh allocator and return its allocated and reserved peaks.

    `sizes[i] = n > 0` allocates n bytes (allocation i); `sizes[i] = -(j + 1)` frees allocation j (j < i).
    `preallocated` are allocated first, in order, and never freed (weights, optimizer state kept across steps).
    With a `capacity` the replay raises `DeviceOutOfMemoryError` where the GPU would run out.
    """
    events = _as_int_list(sizes, "sizes")
    kept = _as_int_list(preallocated, "preallocated")
    if any(n <= 0 for n in kept):
        raise ValueError("preallocated sizes must be positive numbers of bytes")
    if config == DEFAULT_CONFIG and capacity is None:
        return _replay_default(events, kept)
    allocator = CachingAllocator(config, capacity)
    malloc, free = allocator._malloc, allocator._free
    for n in kept:
        malloc(n)
    live: dict[int, _Block] = {}
    for i, n in enumerate(events):
        if n > 0:
            live[i] = malloc(n)
            continue
        j = -n - 1
        block = live.pop(j, None)
        if block is None:
            raise ValueError(_bad_free(events, i, j))
        free(block)
    return ReplayPeaks(allocated=allocator.peak_allocated, reserved=allocator.peak_reserved)


# A free block's key in the fast replay's pools: (size, address) packed in one int, so the best-fit search and the
# insertions compare ints, not tuples (addresses stay below 2**_ADDR_BITS: they grow by the segments reserved).
_ADDR_BITS = 48


def _replay_default(events: list[int], kept: list[int]) -> ReplayPeaks:
    """`replay` under torch's default allocator settings and without a capacity, the rules of `CachingAllocator`
    (`_malloc`, `_get_free_block`, `_alloc_found_block`, `_alloc_block`, `_free`, `_try_merge`) inlined into one
    loop over the events: a 70B model's two-step log has 50-140k events, and this is every estimate's hot path.
    A block is a list [size, addr, prev, next, allocated, its pool's keys]; tests check it against the class."""
    small_free: list[int] = []  # keys (size << _ADDR_BITS | addr) of free small-pool blocks, sorted
    large_free: list[int] = []
    by_key: dict[int, list] = {}
    next_addr = 1 << 32
    allocated = reserved = peak_allocated = 0
    live: dict[int, list] = {}
    shift = _ADDR_BITS
    events = [*kept, *events]
    base = len(kept)
    for i, n in enumerate(events):
        if n > 0:
            # round_size: kMinBlockSize * ceil(size / kMinBlockSize), at least kMinBlockSize
            size = MIN_BLOCK_SIZE if n < MIN_BLOCK_SIZE else -(-n // MIN_BLOCK_SIZE) * MIN_BLOCK_SIZE
            small = size <= SMALL_SIZE
            keys = small_free if small else large_free
            # get_free_block: the smallest free block >= size, lowest address first
            index = bisect_left(keys, size << shift)
            if index < len(keys):
                block = by_key.pop(keys.pop(index))
            else:
                # alloc_block with get_allocation_size
                if small:
                    segment = SMALL_BUFFER
                elif size < MIN_LARGE_ALLOC:
                    segment = LARGE_BUFFER
                else:
                    segment = -(-size // ROUND_LARGE) * ROUND_LARGE
                block = [segment, next_addr, None, None, False, keys]
                next_addr += segment
                reserved += segment
            remaining = block[0] - size
            # should_split (small pool: remaining >= kMinBlockSize; large: remaining > kSmallSize), then
            # alloc_found_block: the front `size` bytes are the allocation, the rest stays free
            if remaining >= MIN_BLOCK_SIZE if small else remaining > SMALL_SIZE:
                rest = block
                block = [size, rest[1], rest[2], rest, False, keys]
                if block[2] is not None:
                    block[2][3] = block
                rest[2] = block
                rest[1] += size
                rest[0] = remaining
                key = remaining << shift | rest[1]
                insort(keys, key)
                by_key[key] = rest
            block[4] = True
            allocated += block[0]
            if allocated > peak_allocated:  # noqa: PLR1730 (max() costs a call per event on the hot path)
                peak_allocated = allocated
            live[i] = block
            continue
        j = -n - 1 + base
        block = live.pop(j, None)
        if block is None:
            raise ValueError(_bad_free(events[base:], i - base, j - base))
        block[4] = False
        allocated -= block[0]
        keys = block[5]
        # free_block: try_merge_blocks with prev, then next (a free neighbour of the same segment)
        prev = block[2]
        if prev is not None and not prev[4]:
            key = prev[0] << shift | prev[1]
            del keys[bisect_left(keys, key)]
            del by_key[key]
            block[1] = prev[1]
            block[0] += prev[0]
            block[2] = prev[2]
            if block[2] is not None:
                block[2][3] = block
        following = block[3]
        if following is not None and not following[4]:
            key = following[0] << shift | following[1]
            del keys[bisect_left(keys, key)]
            del by_key[key]
            block[0] += following[0]
            block[3] = following[3]
            if block[3] is not None:
                block[3][2] = block
        key = block[0] << shift | block[1]
        insort(keys, key)
        by_key[key] = block
    # nothing releases a segment without a capacity or empty_cache: reserved only grows, so its peak is its end
    return ReplayPeaks(allocated=peak_allocated, reserved=reserved)


def _as_int_list(values: Sequence[int], name: str) -> list[int]:
    array = np.asarray(values)
    if array.size == 0:
        return []
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a flat sequence of integers (bytes), got dtype {array.dtype}")
    if name == "sizes" and not array.all():
        raise ValueError(f"event {int(np.flatnonzero(array == 0)[0])} is 0: neither an allocation nor a free")
    return array.tolist()


def _bad_free(events: list[int], i: int, j: int) -> str:
    if not 0 <= j < i:
        return f"event {i} frees allocation {j}, which is not an earlier event"
    if events[j] < 0:
        return f"event {i} frees event {j}, which is itself a free, not an allocation"
    return f"event {i} frees allocation {j} a second time (double free)"
