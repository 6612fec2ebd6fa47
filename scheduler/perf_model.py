"""GPU performance model shared by the optimizer and the simulator (pure; see docs/design.md).

INTERFACE ONLY — being implemented. Signatures are the contract other modules code against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scheduler.hardware import GpuSpec, builtin_gpu_specs
from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant


@dataclass(frozen=True, slots=True)
class ReplicaCapacity:
    """What one replica (one model server on `tp` GPUs) sustains for a request shape under an SLO."""

    feasible: bool
    rps: float  # requests/s sustained while meeting the SLO (0 when infeasible)
    output_tokens_per_s: float
    batch: int  # concurrent sequences at that load
    ttft_ms: float  # predicted p95 TTFT at that load
    tpot_ms: float  # predicted p95 TPOT at that load
    reason: str  # why infeasible, or which limit binds (kv-cache, tpot, ttft)


class PerfModel:
    def __init__(self, gpus: Mapping[str, GpuSpec] | None = None) -> None:
        self.gpus: Mapping[str, GpuSpec] = gpus if gpus is not None else builtin_gpu_specs()

    def fits(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> bool:
        raise NotImplementedError

    def kv_cache_tokens(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> int:
        raise NotImplementedError

    def max_batch(self, arch: ModelArch, variant: Variant, gpu: str, tp: int, context_tokens: int) -> int:
        raise NotImplementedError

    def prefill_seconds(self, arch: ModelArch, variant: Variant, gpu: str, tp: int, prompt_tokens: int) -> float:
        raise NotImplementedError

    def decode_step_seconds(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, batch: int, context_tokens: int
    ) -> float:
        raise NotImplementedError

    def replica_capacity(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, shape: RequestShape, slo: Slo
    ) -> ReplicaCapacity:
        raise NotImplementedError
