"""Where engine step durations come from: a small protocol, the performance-model source and a fake one.

The engine only needs three numbers about its GPU: how long a prefill of P tokens takes, how long a decode
step of B sequences at context L takes, and how many tokens of KV cache it holds. Tests inject a
deterministic linear fake; the product uses the shared performance model (scheduler.perf_model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from scheduler.model_spec import ModelArch, Variant
from scheduler.perf_model import PerfModel


class Timing(Protocol):
    """Step durations in simulated seconds (before the speed-up factor)."""

    @property
    def kv_cache_tokens(self) -> int: ...

    def prefill_seconds(self, prompt_tokens: int) -> float: ...

    def decode_step_seconds(self, batch: int, context_tokens: int) -> float: ...


def step_seconds(timing: Timing, prefill_tokens: int, decode_batch: int, mean_context: int) -> float:
    """Duration of one engine step that prefills `prefill_tokens` and decodes `decode_batch` sequences.

    Prefill chunks ride in decode steps and stall them (additive), the same assumption the performance
    model's capacity uses, so the simulator and the optimizer agree on what a mixed batch costs.
    """
    seconds = 0.0
    if decode_batch:
        seconds += timing.decode_step_seconds(decode_batch, mean_context)
    if prefill_tokens:
        seconds += timing.prefill_seconds(prefill_tokens)
    return seconds


@dataclass(frozen=True, slots=True)
class LinearTiming:
    """Deterministic fake for tests: prefill = a + b*P, decode = c + d*B + e*B*L."""

    kv_cache_tokens: int = 1 << 20
    prefill_base_s: float = 0.002
    prefill_per_token_s: float = 0.00002
    decode_base_s: float = 0.005
    decode_per_seq_s: float = 0.0001
    decode_per_seq_token_s: float = 0.0

    def prefill_seconds(self, prompt_tokens: int) -> float:
        return self.prefill_base_s + self.prefill_per_token_s * prompt_tokens

    def decode_step_seconds(self, batch: int, context_tokens: int) -> float:
        return self.decode_base_s + batch * (self.decode_per_seq_s + self.decode_per_seq_token_s * context_tokens)


# Decode contexts are memoised in buckets of this many tokens: KV reads change by well under 1% within one.
_CONTEXT_BUCKET = 64


@dataclass(slots=True)
class PerfModelTiming:
    """Timing of one replica (arch, variant, accelerator, tensor parallel) from the shared performance model."""

    model: PerfModel
    arch: ModelArch
    variant: Variant
    gpu: str
    tp: int = 1
    _decode_memo: dict[tuple[int, int], float] = field(default_factory=dict, repr=False)
    _kv_tokens: int | None = field(default=None, repr=False)

    @property
    def kv_cache_tokens(self) -> int:
        if self._kv_tokens is None:
            self._kv_tokens = self.model.kv_cache_tokens(self.arch, self.variant, self.gpu, self.tp)
        return self._kv_tokens

    def prefill_seconds(self, prompt_tokens: int) -> float:
        return self.model.prefill_seconds(self.arch, self.variant, self.gpu, self.tp, prompt_tokens)

    def decode_step_seconds(self, batch: int, context_tokens: int) -> float:
        bucket = context_tokens // _CONTEXT_BUCKET
        key = (batch, bucket)
        cached = self._decode_memo.get(key)
        if cached is None:
            context = bucket * _CONTEXT_BUCKET + _CONTEXT_BUCKET // 2
            cached = self.model.decode_step_seconds(self.arch, self.variant, self.gpu, self.tp, batch, context)
            if len(self._decode_memo) < 200_000:  # bounded: batch <= max_num_seqs, contexts <= max_model_len
                self._decode_memo[key] = cached
        return cached
