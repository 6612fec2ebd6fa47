"""The tunable constants of the performance model: hardware efficiencies, serving-engine limits, queueing.

The hardware efficiencies (MFU, bandwidth efficiencies, tensor-parallel scaling) are
calibrated against published TensorRT-LLM offline throughput (scheduler/data/trtllm_max_throughput_tok_s.csv,
see scheduler/calibration.py and docs/benchmarks/perf_model.md). The engine limits default to vLLM's.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Efficiency:
    # --- hardware efficiency (calibrated) ---
    prefill_mfu: float = 0.65  # fraction of dense peak FLOPs reached by prefill GEMMs + attention
    decode_mfu: float = 0.35  # large-batch decode GEMMs are skinny, so lower than prefill
    bandwidth_efficiency: float = 0.65  # fraction of HBM bandwidth reached streaming weights in decode
    kv_bandwidth_efficiency: float = 0.65  # paged-attention KV reads (scattered blocks), fitted separately
    step_overhead_s: float = 0.001  # scheduling, sampling, launch gaps per engine step
    tp_scaling: float = 0.90  # fraction of ideal speed-up kept per doubling of tensor parallelism
    allreduce_latency_s: float = 6e-6  # per all-reduce (2 per layer per step) when tp > 1
    # --- memory (vLLM semantics) ---
    gpu_memory_utilization: float = 0.90  # vLLM --gpu-memory-utilization
    runtime_overhead_gib: float = 1.5  # per GPU: CUDA context, activations, CUDA graphs, NCCL buffers
    min_kv_tokens: int = 4096  # a replica must hold at least min(context, this) tokens of KV cache
    # --- engine limits (vLLM defaults) ---
    max_num_seqs: int = 256  # vLLM --max-num-seqs
    max_num_batched_tokens: int = 8192  # chunked-prefill token budget per step
    # KV held per in-flight sequence = prompt + this fraction of the output. vLLM allocates blocks as tokens
    # are generated (mean: half the output); TensorRT-LLM's default no-evict scheduler reserves it all (1.0).
    output_kv_reserve: float = 0.5
    # --- queueing (see scheduler/queueing.py) ---
    arrival_scv: float = 1.0  # squared coefficient of variation of inter-arrival times (1 = Poisson)
    service_scv: float = 0.0  # of prefill service times within one request-size bucket (0 = fixed size)

    def __post_init__(self) -> None:
        for name in (
            "prefill_mfu",
            "decode_mfu",
            "bandwidth_efficiency",
            "kv_bandwidth_efficiency",
            "tp_scaling",
            "gpu_memory_utilization",
        ):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"Efficiency.{name} must be in (0, 1]")
        if self.step_overhead_s < 0 or self.allreduce_latency_s < 0 or self.runtime_overhead_gib < 0:
            raise ValueError("Efficiency overheads must be >= 0")
        if self.min_kv_tokens < 1 or self.max_num_seqs < 1 or self.max_num_batched_tokens < 1:
            raise ValueError("Efficiency limits must be >= 1")
        if not 0 <= self.output_kv_reserve <= 1:
            raise ValueError("Efficiency.output_kv_reserve must be in [0, 1]")
        if self.arrival_scv < 0 or self.service_scv < 0:
            raise ValueError("Efficiency SCVs must be >= 0")
