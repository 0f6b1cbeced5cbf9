"""PyTorch's CUDA caching allocator, modelled in Python: turn a traced step's allocations and frees into the peaks
`torch.cuda.max_memory_allocated()` and `torch.cuda.max_memory_reserved()` would show on a real GPU.

Why a model and not a ratio: the reserved peak is what must fit the GPU, and its gap over the allocated peak is
not a constant. It comes from rules of the allocator (c10/cuda/CUDACachingAllocator.cpp, torch 2.13): requests
are rounded to 512 bytes; requests of at most 1 MiB share 2 MiB segments; 1-10 MiB requests carve 20 MiB
segments; larger ones get their own segment rounded to 2 MiB; a freed block is cached (reserved stays) and only
merges with free neighbours *in the same segment*. So the same bytes in a different order reserve different
amounts (free a 12 MiB block, ask for 14 MiB: 26 MiB reserved for 14 MiB live). Replaying the trace through the
same rules gives that figure; the replay is the rules, function for function, on a single stream.

Where each rule comes from (the names are the C++ functions of CUDACachingAllocator.cpp; the constants and
defaults are in c10/core/AllocatorConfig.h of the torch 2.13 headers, line numbers given where they are used):

* `round_size`, `get_pool`, `get_allocation_size`, `should_split`, `get_free_block` (best fit: the smallest
  free block of the pool ordered by (size, address), `BlockComparatorSize`), `alloc_found_block` (split the
  front off), `free_block` + `try_merge_blocks` (merge with free prev/next of the same segment);
* `alloc_block` (cudaMalloc a new segment), and with a device `capacity` the out-of-memory path of `malloc`:
  `release_available_cached_blocks` (only when max_split_size is set), then `release_cached_blocks`
  (`release_blocks`: cudaFree every unsplit cached segment, unmap every whole free page of expandable
  segments) and one retry;
* expandable_segments:True (Note [Expandable Segments]): one growing segment per pool, mapped in pages of
  2 MiB (small pool) or large_segment_size, 20 MiB (large pool): `find_expandable_block`,
  `try_allocate_expandable_block`, `map_block`, `unmap_block`, and the expandable best-fit tweak of
  `get_free_block` (a block that can still grow counts as its size plus the unmapped space behind it).

`memory_allocated()` counts whole blocks (`alloc_found_block` adds `block->size`, the rounded and possibly
unsplit size, to allocated_bytes), not the requested bytes: a 31 MiB request served by an unsplit 32 MiB
segment counts 32 MiB. `memory_reserved()` is the sum of cudaMalloc'd segments and mapped pages.

Simplifications: one stream and no cross-stream `recordStream` events (frees are immediate; no
`process_events`); no CUDA graph private pools and no free-memory callbacks; a memory fraction
(per_process_memory_fraction, `set_per_process_memory_fraction`) is modelled only as a smaller `capacity`, and
garbage_collection_threshold (which needs one) not at all; cudaMalloc hands out fresh, increasing addresses,
where the driver may reuse freed ranges: addresses only break ties between equal-size free blocks in best fit,
so this can change which one is taken and, rarely, what merges later; the capacity test is
`reserved + request > capacity` (the CUDA context and other processes belong outside what you pass); an
expandable segment's address space is 9/8 of the capacity (`find_expandable_block`), unbounded without one.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

import numpy as np

__all__ = ["AllocatorConfig", "CachingAllocator", "DeviceOutOfMemoryError"]

# c10/core/AllocatorConfig.h:19 (torch 2.13): kMinBlockSize, "all sizes are rounded to at least 512 bytes"
MIN_BLOCK_SIZE = 512
# c10/core/AllocatorConfig.h:21: kSmallSize, "largest 'small' allocation is 1 MiB"
SMALL_SIZE = 1_048_576
# c10/core/AllocatorConfig.h:17: kSmallBuffer, "'small' allocations are packed in 2 MiB blocks"
SMALL_BUFFER = 2_097_152
# c10/core/AllocatorConfig.h:23: kMinLargeAlloc, "allocations between 1 and 10 MiB may use kLargeBuffer"
MIN_LARGE_ALLOC = 10_485_760
# c10/core/AllocatorConfig.h:25: kRoundLarge, "round up large allocations to 2 MiB"
ROUND_LARGE = 2_097_152
# CUDACachingAllocator.cpp: kLargeBuffer = 20971520; c10/core/AllocatorConfig.h:340: large_segment_size_{20971520}
LARGE_BUFFER = 20_971_520
# c10/core/AllocatorConfig.cpp: kRoundUpPowerOfTwoIntervals = 16, intervals from 1 MiB (2**20) to 64 GiB
POWER2_INTERVALS = 16
POWER2_FIRST_LOG = 20

# address space of an expandable segment when no capacity is given: far beyond any GPU (2**46 = 64 TiB)
_UNBOUNDED_SPACE = 2**46


class DeviceOutOfMemoryError(RuntimeError):
    """The modelled GPU is full even after the allocator released its cache (torch raises OutOfMemoryError)."""


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class AllocatorConfig:
    """The PYTORCH_CUDA_ALLOC_CONF (PYTORCH_ALLOC_CONF) options that change reserved memory; defaults are torch's.

    Sizes are in bytes (torch's keys take MiB: max_split_size_mb:256 is `max_split_size=256 * MIB`).
    `roundup_power2_divisions` is one value for every size (the bare `roundup_power2_divisions:4` form) or 16
    values, one per power-of-two interval from 1 MiB to 64 GiB (the `[...]` form, expanded); 0 or 1 is off.
    """

    expandable_segments: bool = False
    # c10/core/AllocatorConfig.h:342: max_split_size_{SIZE_MAX}: every block may be split (None here)
    max_split_size: int | None = None
    # c10/core/AllocatorConfig.h:186: "the maximum block size ... rounded up without requiring splitting", 20 MiB
    max_non_split_rounding_size: int = LARGE_BUFFER
    # c10/core/AllocatorConfig.h:340: large_segment_size_{20971520}: the 1-10 MiB segment, the large page
    large_segment_size: int = LARGE_BUFFER
    roundup_power2_divisions: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        # AllocatorConfig.cpp parseMaxSplitSize / parseMaxNonSplitRoundingSize: "must be >= kLargeBuffer / kMB"
        if self.max_split_size is not None and self.max_split_size < LARGE_BUFFER:
            raise ValueError(f"max_split_size must be at least 20 MiB ({LARGE_BUFFER} bytes), as torch requires")
        if self.max_non_split_rounding_size < LARGE_BUFFER:
            raise ValueError(f"max_non_split_rounding_size must be at least 20 MiB ({LARGE_BUFFER} bytes)")
        # ours: a 1-10 MiB request must fit its segment, and pages are whole 2 MiB GPU pages
        if self.large_segment_size < MIN_LARGE_ALLOC or self.large_segment_size % ROUND_LARGE:
            raise ValueError("large_segment_size must be a multiple of 2 MiB and at least 10 MiB")
        divisions = self.divisions()
        if len(divisions) != POWER2_INTERVALS:
            raise ValueError(f"roundup_power2_divisions takes one value or {POWER2_INTERVALS} (1 MiB to 64 GiB)")
        # AllocatorConfig.cpp parseRoundUpPower2Divisions: "the divisions has to be power of 2 or 0"
        if any(d != 0 and not _is_power_of_two(d) for d in divisions):
            raise ValueError("roundup_power2_divisions must be 0 (off) or powers of two")

    def divisions(self) -> tuple[int, ...]:
        """The 16 per-interval division counts (AcceleratorAllocatorConfig::roundup_power2_divisions_)."""
        value = self.roundup_power2_divisions
        return (value,) * POWER2_INTERVALS if isinstance(value, int) else tuple(value)


DEFAULT_CONFIG = AllocatorConfig()


class _Pool:
    """A BlockPool: free mapped blocks ordered by (size, address), unmapped expandable ranges by address."""

    __slots__ = ("free", "small", "unmapped")

    def __init__(self, small: bool) -> None:
        self.small = small
        self.free: list[tuple[int, int, _Block]] = []  # (size, addr, block): BlockComparatorSize
        self.unmapped: list[tuple[int, _Block]] = []  # (addr, block): BlockComparatorAddress


class _Segment:
    """An ExpandableSegment: a reserved address range mapped page by page."""

    __slots__ = ("base", "page", "space")

    def __init__(self, base: int, page: int, space: int) -> None:
        self.base, self.page, self.space = base, page, space


class _Block:
    """A Block: a range of one segment, allocated or free, linked to its neighbours in that segment."""

    __slots__ = ("addr", "allocated", "mapped", "next", "pool", "prev", "segment", "size")

    def __init__(self, addr: int, size: int, pool: _Pool, segment: _Segment | None = None,
                 mapped: bool = True) -> None:
        self.addr = addr
        self.size = size
        self.pool = pool
        self.segment = segment  # None for a cudaMalloc segment
        self.mapped = mapped
        self.allocated = False
        self.prev: _Block | None = None
        self.next: _Block | None = None


def _remove(keys: list, key: tuple) -> None:
    """Erase `key` (a block's (size, addr) or (addr,)) from a sorted pool list."""
    index = bisect_left(keys, key)
    if index == len(keys) or keys[index][: len(key)] != key:
        raise AssertionError(f"allocator model: block {key} missing from its pool")
    del keys[index]


class CachingAllocator:
    """One device's DeviceCachingAllocator on one stream: `malloc`/`free` by handle, and the four statistics.

    `capacity` (bytes the allocator may reserve, e.g. the GPU's memory less the CUDA context) turns on the
    out-of-memory path: release the cache, retry, else raise `DeviceOutOfMemoryError`. Without it segments are
    always granted, which is what a replay for the peaks wants.
    """

    def __init__(self, config: AllocatorConfig = DEFAULT_CONFIG, capacity: int | None = None) -> None:
        if capacity is not None and capacity <= 0:
            raise ValueError(f"capacity must be a positive number of bytes, got {capacity}")
        self.config = config
        self.capacity = capacity
        self._expandable = config.expandable_segments
        self.allocated = 0
        self.reserved = 0
        self.peak_allocated = 0
        self.peak_reserved = 0
        self._small = _Pool(small=True)
        self._large = _Pool(small=False)
        self._next_addr = 1 << 32  # where the next cudaMalloc / address reservation lands
        self._live: dict[int, _Block] = {}
        self._handles = 0
        self._max_split = config.max_split_size  # None: unlimited
        divisions = config.divisions()
        self._divisions = divisions if any(d > 1 for d in divisions) else None

    # -- public API ----------------------------------------------------------------------------------------------
    def malloc(self, nbytes: int) -> int:
        """Allocate `nbytes` (> 0; torch hands out no block for 0 bytes) and return a handle for `free`."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, int | np.integer) or nbytes <= 0:
            raise ValueError(f"malloc takes a positive number of bytes, got {nbytes!r}")
        block = self._malloc(int(nbytes))
        handle = self._handles
        self._handles += 1
        self._live[handle] = block
        return handle

    def free(self, handle: int) -> None:
        """Free the allocation `handle`; its block goes back to the cache (reserved does not shrink)."""
        block = self._live.pop(handle, None)
        if block is None:
            if isinstance(handle, int) and 0 <= handle < self._handles:
                raise ValueError(f"handle {handle} was already freed (double free)")
            raise ValueError(f"unknown handle {handle!r}: malloc never returned it")
        self._free(block)

    def empty_cache(self) -> None:
        """`torch.cuda.empty_cache()`: release every cached segment that holds no allocation (release_cached_blocks)."""
        self._release_cached_blocks()

    # -- malloc (DeviceCachingAllocator::malloc) -----------------------------------------------------------------
    def _round_size(self, size: int) -> int:
        # CUDACachingAllocator.cpp round_size: below kMinBlockSize -> kMinBlockSize
        if size < MIN_BLOCK_SIZE:
            return MIN_BLOCK_SIZE
        if self._divisions is not None:
            # AllocatorConfig.cpp roundup_power2_divisions(size): interval index of floor(log2(size)) above 1 MiB
            log_size = size.bit_length() - 1
            index = min(max(log_size - POWER2_FIRST_LOG, 0), POWER2_INTERVALS - 1)
            divisions = self._divisions[index]
            # round_size: power-of-two divisions only when divisions > 1 and size > kMinBlockSize * divisions
            if divisions > 1 and size > MIN_BLOCK_SIZE * divisions:
                return _roundup_power2_next_division(size, divisions)
        # round_size: kMinBlockSize * ceil(size / kMinBlockSize)
        return -(-size // MIN_BLOCK_SIZE) * MIN_BLOCK_SIZE

    def _allocation_size(self, size: int) -> int:
        # CUDACachingAllocator.cpp get_allocation_size: small -> kSmallBuffer
        if size <= SMALL_SIZE:
            return SMALL_BUFFER
        # get_allocation_size: below kMinLargeAlloc -> large_segment_size (kLargeBuffer, 20 MiB)
        if size < MIN_LARGE_ALLOC:
            return self.config.large_segment_size
        # get_allocation_size: kRoundLarge * ceil(size / kRoundLarge)
        return -(-size // ROUND_LARGE) * ROUND_LARGE

    def _malloc(self, orig_size: int) -> _Block:
        if self._divisions is None:
            # round_size without power-of-two divisions, inlined: this is the replay's hot path
            size = MIN_BLOCK_SIZE if orig_size < MIN_BLOCK_SIZE else -(-orig_size // MIN_BLOCK_SIZE) * MIN_BLOCK_SIZE
        else:
            size = self._round_size(orig_size)
        # CUDACachingAllocator.cpp get_pool: size <= kSmallSize -> small_blocks, else large_blocks
        pool = self._small if size <= SMALL_SIZE else self._large
        block = self._get_free_block(pool, size)
        if block is None:
            alloc_size = self._allocation_size(size)
            # malloc: alloc_block || (release_available_cached_blocks && alloc_block)
            #         || (release_cached_blocks && alloc_block)
            block = self._alloc_block(pool, size, alloc_size)
            if block is None and self._release_available_cached_blocks(pool, size):
                block = self._alloc_block(pool, size, alloc_size)
            if block is None:
                self._release_cached_blocks()
                block = self._alloc_block(pool, size, alloc_size)
            if block is None:
                raise DeviceOutOfMemoryError(
                    f"out of memory (modelled): tried to allocate {alloc_size} bytes with {self.reserved} reserved, "
                    f"{self.allocated} allocated, of a capacity of {self.capacity}")
        return self._alloc_found_block(pool, block, size)

    def _get_free_block(self, pool: _Pool, size: int) -> _Block | None:
        # CUDACachingAllocator.cpp get_free_block: pool.blocks.lower_bound(size): the smallest block >= size
        keys = pool.free
        index = bisect_left(keys, (size,))
        if index == len(keys):
            return None
        block = keys[index][2]
        if block.segment is not None:
            # get_free_block, expandable: a block can count as its size plus the unmapped range after it, so walk
            # on while the next block in (size, address) order would grow less
            end = len(keys)
            grow = _expandable_size(block)
            while index + 1 < end and keys[index][2].segment is not None:
                nxt = keys[index + 1][2]
                nxt_grow = _expandable_size(nxt)
                if nxt_grow >= grow:
                    break
                index, block, grow = index + 1, nxt, nxt_grow
        max_split = self._max_split
        if max_split is not None:
            # get_free_block: "Do not return an oversized block for a large request"
            if size < max_split and block.size >= max_split:
                return None
            # get_free_block: "Allow oversized block size to be rounded up but within a limit"
            if size >= max_split and block.size >= size + self.config.max_non_split_rounding_size:
                return None
        del keys[index]
        return block

    def _alloc_found_block(self, pool: _Pool, block: _Block, size: int) -> _Block:
        remaining = block.size - size
        if pool.small or self._expandable:
            # CUDACachingAllocator.cpp should_split: small pool or expandable segments -> remaining >= kMinBlockSize
            split = remaining >= MIN_BLOCK_SIZE
        else:
            # should_split: size < max_split_size and remaining > kSmallSize
            split = remaining > SMALL_SIZE and (self._max_split is None or size < self._max_split)
        if split:
            # CUDACachingAllocator.cpp alloc_found_block: the front `size` bytes are the allocation, the
            # remainder stays in the pool
            rest = block
            block = _Block(rest.addr, size, pool, rest.segment)
            block.prev = rest.prev
            if block.prev is not None:
                block.prev.next = block
            block.next = rest
            rest.prev = block
            rest.addr += size
            rest.size = remaining
            insort(pool.free, (remaining, rest.addr, rest))
        block.allocated = True
        # alloc_found_block: increase_stat(allocated_bytes, block->size)
        self.allocated += block.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        return block

    def _grow_reserved(self, nbytes: int) -> None:
        self.reserved += nbytes
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def _fits_device(self, nbytes: int) -> bool:
        return self.capacity is None or self.reserved + nbytes <= self.capacity

    def _alloc_block(self, pool: _Pool, size: int, alloc_size: int) -> _Block | None:
        if self._expandable:
            # CUDACachingAllocator.cpp alloc_block: expandable segments map pages for p.size(), not alloc_size
            return self._try_allocate_expandable_block(pool, size)
        # alloc_block: cudaMalloc(alloc_size) fails when the device cannot hold it
        if not self._fits_device(alloc_size):
            return None
        block = _Block(self._next_addr, alloc_size, pool)
        self._next_addr += alloc_size
        self._grow_reserved(alloc_size)
        return block

    # -- free (DeviceCachingAllocator::free, free_block) ---------------------------------------------------------
    def _free(self, block: _Block) -> None:
        block.allocated = False
        # free: decrease_stat(allocated_bytes, block->size)
        self.allocated -= block.size
        pool = block.pool
        # free_block: try_merge_blocks with prev and next
        self._try_merge(block, block.prev, pool)
        self._try_merge(block, block.next, pool)
        insort(pool.free, (block.size, block.addr, block))

    @staticmethod
    def _try_merge(dst: _Block, src: _Block | None, pool: _Pool) -> None:
        # CUDACachingAllocator.cpp try_merge_blocks: only a free neighbour in the same mapped state
        if src is None or src.allocated or src.mapped != dst.mapped:
            return
        if src.mapped:
            _remove(pool.free, (src.size, src.addr))
        else:
            _remove(pool.unmapped, (src.addr,))
        if dst.prev is src:  # [src dst]
            dst.addr = src.addr
            dst.prev = src.prev
            if dst.prev is not None:
                dst.prev.next = dst
        else:  # [dst src]
            dst.next = src.next
            if dst.next is not None:
                dst.next.prev = dst
        dst.size += src.size

    # -- releasing the cache (out of memory, empty_cache) --------------------------------------------------------
    def _release_block(self, block: _Block) -> None:
        # CUDACachingAllocator.cpp release_block: cudaFree a whole cached segment
        _remove(block.pool.free, (block.size, block.addr))
        self.reserved -= block.size

    def _release_available_cached_blocks(self, pool: _Pool, size: int) -> bool:
        # CUDACachingAllocator.cpp release_available_cached_blocks: only with max_split_size set
        max_split = self._max_split
        if max_split is None:
            return False
        target = max(size, max_split)
        keys = pool.free
        index = bisect_left(keys, (target,))
        if index < len(keys) and keys[index][2].segment is None and _unsplit(keys[index][2]):
            self._release_block(keys[index][2])
            return True
        # "No single block is large enough; free multiple oversize blocks, starting with the largest"
        released = 0
        index -= 1
        while index >= 0 and released < target and keys[index][0] >= max_split:
            block = keys[index][2]
            if block.segment is None and _unsplit(block):
                self._release_block(block)
                released += block.size
            index -= 1
        return released >= target

    def _release_cached_blocks(self) -> None:
        # CUDACachingAllocator.cpp release_cached_blocks -> release_blocks(large_blocks), release_blocks(small_blocks)
        for pool in (self._large, self._small):
            to_unmap = []
            for _, _, block in list(pool.free):
                if block.segment is not None:
                    to_unmap.append(block)
                elif _unsplit(block):
                    self._release_block(block)
            for block in to_unmap:
                self._unmap_block(block)
                if _unsplit(block) and not block.mapped:
                    # release_expandable_segment: nothing left mapped, drop the address reservation
                    _remove(pool.unmapped, (block.addr,))

    # -- expandable segments -------------------------------------------------------------------------------------
    def _find_expandable_block(self, pool: _Pool, size: int) -> _Block:
        # CUDACachingAllocator.cpp find_expandable_block: the lowest-addressed unmapped range (plus the free block
        # right before it) with `size` bytes of free or unmapped space
        for _, unmapped in pool.unmapped:
            before = unmapped.prev
            candidate = before if before is not None and not before.allocated else unmapped
            room, block = 0, candidate
            while room < size and block is not None and not block.allocated:
                room += block.size
                block = block.next
            if room >= size:
                return candidate
        # find_expandable_block: segment_size = is_small ? kSmallBuffer : kLargeBuffer (large_segment_size)
        page = SMALL_BUFFER if pool.small else self.config.large_segment_size
        capacity = self.capacity
        # find_expandable_block: address_space_size = totalGlobalMem + totalGlobalMem / 8, in whole pages
        space = _UNBOUNDED_SPACE if capacity is None else -(-(capacity + capacity // 8) // page) * page
        segment = _Segment(self._next_addr, page, space)
        self._next_addr += space
        candidate = _Block(segment.base, space, pool, segment, mapped=False)
        insort(pool.unmapped, (candidate.addr, candidate))
        return candidate

    def _try_allocate_expandable_block(self, pool: _Pool, size: int) -> _Block | None:
        # CUDACachingAllocator.cpp try_allocate_expandable_block
        candidate = self._find_expandable_block(pool, size)
        if not candidate.mapped and not self._map_block(candidate, min(candidate.size, size)):
            return None
        while candidate.size < size:
            # "invariant: free -> unmapped -> *": map the rest behind the free block, which then merges into it
            following = candidate.next
            if following is None or not self._map_block(following, min(size - candidate.size, following.size)):
                return None
            candidate = following
        _remove(pool.free, (candidate.size, candidate.addr))
        return candidate

    def _map_block(self, block: _Block, size: int) -> bool:
        segment = block.segment
        if segment is None or block.mapped:
            raise AssertionError("allocator model: map_block on a block that is not unmapped expandable space")
        page = segment.page
        # ExpandableSegment::map: pages [segmentLeft(ptr), segmentRight(ptr + size)), whole pages only
        begin = (block.addr - segment.base) // page
        end = -(-(block.addr + size - segment.base) // page)
        mapped = (end - begin) * page
        if mapped > block.size:
            raise AssertionError("allocator model: mapping past the end of an unmapped range")
        # ExpandableSegment::map: cuMemCreate fails past the device's memory (all or nothing)
        if not self._fits_device(mapped):
            return False
        pool = block.pool
        _remove(pool.unmapped, (block.addr,))
        block.mapped = True
        if mapped < block.size:
            # map_block: to_map -> remaining (still unmapped) -> to_map->next
            rest = _Block(block.addr + mapped, block.size - mapped, pool, segment, mapped=False)
            rest.prev, rest.next = block, block.next
            if block.next is not None:
                block.next.prev = rest
            block.next = rest
            block.size = mapped
            insort(pool.unmapped, (rest.addr, rest))
        self._try_merge(block, block.prev, pool)
        self._try_merge(block, block.next, pool)
        insort(pool.free, (block.size, block.addr, block))
        # map_block: increase_stat(reserved_bytes, mapped_range.size)
        self._grow_reserved(mapped)
        return True

    def _unmap_block(self, block: _Block) -> None:
        segment = block.segment
        assert segment is not None
        page = segment.page
        # ExpandableSegment::unmap: only the pages wholly inside the free block, [segmentRight(ptr), segmentLeft(end))
        begin = -(-(block.addr - segment.base) // page)
        end = (block.addr + block.size - segment.base) // page
        if begin >= end:
            return
        pool = block.pool
        _remove(pool.free, (block.size, block.addr))
        start = segment.base + begin * page
        length = (end - begin) * page
        before = start - block.addr
        after = block.size - before - length
        if before > 0:
            # unmap_block: prev? -> before_free -> block
            head = _Block(block.addr, before, pool, segment)
            head.prev, head.next = block.prev, block
            if block.prev is not None:
                block.prev.next = head
            block.prev = head
            insort(pool.free, (head.size, head.addr, head))
        if after > 0:
            # unmap_block: block -> after_free -> next?
            tail = _Block(start + length, after, pool, segment)
            tail.prev, tail.next = block, block.next
            if block.next is not None:
                block.next.prev = tail
            block.next = tail
            insort(pool.free, (tail.size, tail.addr, tail))
        block.addr, block.size, block.mapped = start, length, False
        self._try_merge(block, block.prev, pool)
        self._try_merge(block, block.next, pool)
        insort(pool.unmapped, (block.addr, block))
        # unmap_block: decrease_stat(reserved_bytes, unmapped.size)
        self.reserved -= length

    # -- checking ------------------------------------------------------------------------------------------------
    def _audit(self) -> None:
        """Cross-check the pools, the block lists and the statistics (for tests; O(blocks))."""
        allocated = sum(block.size for block in self._live.values())
        free = [entry[2] for pool in (self._small, self._large) for entry in pool.free]
        unmapped = [entry[1] for pool in (self._small, self._large) for entry in pool.unmapped]
        for pool in (self._small, self._large):
            assert pool.free == sorted(pool.free, key=lambda e: (e[0], e[1]))
            assert all(size == block.size and addr == block.addr for size, addr, block in pool.free)
        mapped = sum(b.size for b in free) + sum(b.size for b in self._live.values())
        for block in [*free, *unmapped, *self._live.values()]:
            if block.next is not None:
                assert block.next.prev is block and block.next.addr == block.addr + block.size
                assert not (block.next.mapped == block.mapped and not block.allocated and not block.next.allocated)
        assert not any(block.allocated for block in free + unmapped)
        assert allocated == self.allocated <= self.reserved == mapped, (self.allocated, self.reserved, mapped)


def _expandable_size(block: _Block) -> int:
    # CUDACachingAllocator.cpp get_free_block: expandable_size = size + (next unmapped ? next->size : 0)
    following = block.next
    return block.size + (following.size if following is not None and not following.mapped else 0)


def _unsplit(block: _Block) -> bool:
    # Block::is_split: a block with a neighbour shares its segment, so it cannot be cudaFree'd on its own
    return block.prev is None and block.next is None


def _roundup_power2_next_division(size: int, divisions: int) -> int:
    # CUDACachingAllocator.cpp roundup_power2_next_division: powers of two stay
    if _is_power_of_two(size):
        return size
    floor = 1 << (size.bit_length() - 1)
    # roundup_power2_next_division: power2_floor >> (63 - countLeadingZeros(divisions)), i.e. floor / divisions
    step = floor >> (divisions.bit_length() - 1)
    if step == 0:
        return floor << 1
    rounded = size & ~(step - 1)
    return size if rounded == size else rounded + step
