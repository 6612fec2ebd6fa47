"""Continuous-batching scheduler (pure, synchronous), modelled on vLLM v1's.

Each step has a token budget (max_num_batched_tokens). Running sequences are served first, in arrival
order: one token each when decoding, a chunk of their remaining prompt when prefilling. If the KV cache
cannot hold a running sequence's next tokens, the most recently admitted running sequence is preempted
(its blocks freed, back to the front of the waiting queue to recompute later) and vLLM counts a preemption.
Then waiting sequences are admitted first-come-first-served while budget, max_num_seqs and free blocks
allow; the first that does not fit stops admission (no overtaking), which is what queues requests under KV
pressure. With `preemption=False` a sequence reserves blocks for prompt + max_tokens when admitted, so it
can never be preempted (more queueing, no recomputation).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agents.sim.kv_cache import BlockPool, PrefixCache
from agents.sim.sequence import FinishReason, Sequence


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    num_blocks: int
    block_size: int = 16
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = True
    preemption: bool = True
    prefix_caching: bool = True

    def __post_init__(self) -> None:
        if min(self.num_blocks, self.block_size, self.max_num_seqs, self.max_num_batched_tokens) < 1:
            raise ValueError("scheduler limits must be >= 1")


@dataclass(slots=True)
class StepPlan:
    """What one engine step computes."""

    scheduled: list[tuple[Sequence, int]] = field(default_factory=list)  # (sequence, tokens this step)
    prefill_tokens: int = 0
    decode_batch: int = 0
    decode_context: int = 0  # sum of the decoding sequences' context lengths
    admitted: list[Sequence] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def mean_context(self) -> int:
        return self.decode_context // self.decode_batch if self.decode_batch else 0

    @property
    def num_tokens(self) -> int:
        return self.prefill_tokens + self.decode_batch


@dataclass(slots=True)
class StepOutcome:
    emitted: list[Sequence]  # sequences that produced one output token this step
    finished: list[Sequence]  # of those, the ones that reached max_tokens (blocks already freed)


class Scheduler:
    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.pool = BlockPool(config.num_blocks, config.block_size)
        self.prefix_cache = PrefixCache(config.num_blocks) if config.prefix_caching else None
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    # ----- queue operations -----

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def abort(self, seq: Sequence, reason: FinishReason = FinishReason.ABORT) -> None:
        if seq.finished:
            return
        if seq in self.running:
            self.running.remove(seq)
        else:
            try:
                self.waiting.remove(seq)
            except ValueError:
                pass
        self._free(seq)
        seq.finish_reason = reason

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def fits_ever(self, total_tokens: int) -> bool:
        """Whether a sequence of this many tokens can ever be held by the KV cache alone."""
        return self.pool.blocks_for(total_tokens) <= self.pool.num_blocks

    # ----- one step -----

    def schedule(self) -> StepPlan:
        plan = StepPlan()
        budget = self.config.max_num_batched_tokens
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = min(seq.num_tokens - seq.num_computed, budget)
            grown = self.pool.grow(seq.blocks, seq.num_computed + n)
            while grown is None:
                victim = self.running.pop()  # the most recently admitted: never one scheduled already
                self._preempt(victim)
                plan.preempted.append(victim)
                if victim is seq:
                    break
                grown = self.pool.grow(seq.blocks, seq.num_computed + n)
            if grown is None:
                break
            seq.blocks = grown
            self._count(plan, seq, n)
            budget -= n
            i += 1
        if not plan.preempted:
            budget = self._admit(plan, budget)
        return plan

    def _admit(self, plan: StepPlan, budget: int) -> int:
        cfg = self.config
        while self.waiting and budget > 0 and len(self.running) < cfg.max_num_seqs:
            seq = self.waiting[0]
            cached = self._cached_tokens(seq)
            n = seq.num_tokens - cached
            if not cfg.chunked_prefill and n > budget and plan.scheduled:
                break
            if cfg.chunked_prefill:
                n = min(n, budget)
            target = seq.prompt_tokens + seq.max_tokens if not cfg.preemption else cached + n
            grown = self.pool.grow(0, target)
            if grown is None:
                break
            self.waiting.popleft()
            seq.blocks = grown
            seq.num_computed = cached
            seq.cached_tokens = cached
            self.running.append(seq)
            plan.admitted.append(seq)
            self._count(plan, seq, n)
            budget -= n
        return budget

    def _cached_tokens(self, seq: Sequence) -> int:
        if self.prefix_cache is None or not seq.block_hashes:
            return 0
        hit_blocks = self.prefix_cache.hits(seq.block_hashes)
        # vLLM always recomputes at least the last prompt token, to get logits to sample from.
        return min(hit_blocks * self.config.block_size, seq.num_tokens - 1)

    @staticmethod
    def _count(plan: StepPlan, seq: Sequence, n: int) -> None:
        plan.scheduled.append((seq, n))
        if n == 1 and seq.output_tokens and seq.num_computed == seq.num_tokens - 1:
            plan.decode_batch += 1
            plan.decode_context += seq.num_tokens
        else:
            plan.prefill_tokens += n

    def complete(self, plan: StepPlan) -> StepOutcome:
        """Apply a finished step: advance computed tokens, sample, finish and free."""
        emitted: list[Sequence] = []
        finished: list[Sequence] = []
        for seq, n in plan.scheduled:
            if seq.finished:  # aborted while the step ran
                continue
            seq.num_computed += n
            if seq.num_computed < seq.num_tokens:
                continue  # a prefill chunk that did not reach the end of the prompt
            if seq.output_tokens == 0 and self.prefix_cache is not None and seq.block_hashes:
                self.prefix_cache.insert(seq.block_hashes)
            seq.output_tokens += 1
            emitted.append(seq)
            if seq.output_tokens >= seq.max_tokens:
                self.running.remove(seq)
                self._free(seq)
                seq.finish_reason = FinishReason.LENGTH
                finished.append(seq)
        return StepOutcome(emitted, finished)

    # ----- helpers -----

    def _preempt(self, seq: Sequence) -> None:
        self._free(seq)
        seq.num_computed = 0
        seq.num_preemptions += 1
        self.waiting.appendleft(seq)

    def _free(self, seq: Sequence) -> None:
        self.pool.release(seq.blocks)
        seq.blocks = 0
