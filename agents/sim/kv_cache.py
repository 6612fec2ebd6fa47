"""KV-cache accounting in fixed-size blocks (vLLM's paged attention), and a prefix cache of block hashes.

Only counts are kept: a sequence holds ceil(tokens / block_size) blocks; allocation fails when the pool
runs out, which is what makes requests queue (or get preempted) under KV pressure.

The prefix cache is simplified: it remembers hashes of full prompt blocks (LRU, at most as many as the pool
has blocks) so a request whose prompt starts like an earlier one skips computing those tokens, as vLLM's
automatic prefix caching does. A hit does not share the blocks' memory in this model (each sequence still
allocates its own), which slightly overstates KV pressure when many requests share a long prefix.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class BlockPool:
    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError("num_blocks and block_size must be >= 1")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.used = 0

    @property
    def free(self) -> int:
        return self.num_blocks - self.used

    @property
    def usage(self) -> float:
        return self.used / self.num_blocks

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def grow(self, held: int, tokens: int) -> int | None:
        """Blocks held after growing a sequence from `held` blocks to cover `tokens`, or None if they do not fit."""
        need = self.blocks_for(tokens) - held
        if need <= 0:
            return held
        if need > self.num_blocks - self.used:
            return None
        self.used += need
        return held + need

    def release(self, held: int) -> None:
        self.used -= held


class PrefixCache:
    def __init__(self, capacity_blocks: int) -> None:
        self.capacity = capacity_blocks
        self._lru: OrderedDict[int, None] = OrderedDict()

    def hits(self, block_hashes: Sequence[int]) -> int:
        """Number of leading blocks already cached (marks them recently used)."""
        count = 0
        for h in block_hashes:
            if h not in self._lru:
                break
            self._lru.move_to_end(h)
            count += 1
        return count

    def insert(self, block_hashes: Sequence[int]) -> None:
        for h in block_hashes:
            self._lru[h] = None
            self._lru.move_to_end(h)
        while len(self._lru) > self.capacity:
            self._lru.popitem(last=False)


def chain_hashes(pieces: Sequence[object]) -> list[int]:
    """Hash of each block chained with its predecessors, so equal hashes mean equal prefixes."""
    out: list[int] = []
    previous = 0
    for piece in pieces:
        previous = hash((previous, piece))
        out.append(previous)
    return out
