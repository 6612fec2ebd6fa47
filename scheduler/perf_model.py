"""GPU performance model shared by the optimizer and the simulator (pure: no I/O, no clock).

Per (model architecture, variant, accelerator, tensor-parallel size `tp`):
- memory: weights / tp + runtime overhead + KV cache must fit in memory x gpu_memory_utilization;
  what is left after weights and overhead is the KV cache, in tokens.
- prefill is compute-bound: (2 * params + 2 * layers * hidden * P) FLOPs per prompt token (linear layers
  plus causal attention) over peak FLOPs x MFU.
- a decode step is memory-bound: weights plus the KV cache of the whole batch are read once per step,
  over bandwidth x efficiency; it becomes compute-bound at large batch, hence a max() of the two,
  plus a fixed per-step overhead (and all-reduce latency when tp > 1).
- replica capacity: continuous batching in steady state at arrival rate lam (requests/s).
  * Prefill chunks ride in decode steps and stall them: with prefill utilisation r = lam * c_pf
    (c_pf = prefill compute time of one prompt), the mean step time (= mean TPOT) solves
    tau = t_dec(B) / (1 - r) with the decode batch B = lam * O * tau (Little's law). t_dec is the max
    of two affine functions of B, so tau has a closed form (the larger of the two regimes' fixed points).
  * TPOT is a request's mean time per output token (as vLLM's benchmarks report it); the SLO bounds its
    95th percentile across requests.
  * p95 TPOT: a request's O steps are stalled by the prefills that arrive meanwhile, a Poisson count
    with mean lam * O * tau; its 95th percentile (normal approximation) gives the p95 stall.
  * p95 TTFT: prompts queue for the chunked-prefill budget (a single server, Kingman's GI/G/1 wait with
    an exponential tail) and are then served in ceil(P / (budget - B)) mixed steps.
  * the largest lam meeting both SLO percentiles, the KV-cache batch limit and stability is found by
    bisection (every quantity is increasing in lam). Results are memoised per argument tuple.
- offline max throughput (no SLO): the same steady state at the largest batch the KV cache and the
  engine's max_num_seqs allow; this is what scheduler/calibration.py compares with published numbers.
- measured profiles (scheduler/profiles.py) override or rescale the modelled capacity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from scheduler.efficiency import GIB, Efficiency
from scheduler.hardware import GpuSpec, builtin_gpu_specs
from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.precision import peak_flops
from scheduler.profiles import MeasuredProfile, ProfileKey, Profiles
from scheduler.queueing import p95_wait, poisson_p95

VALID_TP = (1, 2, 4, 8)
_BISECT_STEPS = 48


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


@dataclass(frozen=True, slots=True)
class OfflineThroughput:
    """Max throughput of one replica with an unbounded backlog and no SLO (like trtllm-bench throughput)."""

    output_tokens_per_s: float
    rps: float
    batch: int
    step_ms: float  # mean engine step (decode + interleaved prefill) at that batch
    reason: str  # what limits the batch: kv-cache or max-num-seqs; or why it cannot run


@dataclass(frozen=True, slots=True)
class LoadPoint:
    """Predicted steady state of one replica at a given request rate (no SLO)."""

    stable: bool  # False when the rate exceeds what the replica can ever process
    batch: float  # mean concurrent decoding sequences
    ttft_p95_ms: float
    tpot_mean_ms: float
    tpot_p95_ms: float
    within_kv_cache: bool  # False when the batch exceeds the KV cache / max_num_seqs (requests would queue)


@dataclass(frozen=True, slots=True)
class _Combo:
    """Per-(arch, variant, gpu, tp) constants, computed once."""

    weight_bytes_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    kv_tokens: int
    bandwidth: float  # effective bytes/s per GPU streaming weights
    kv_bandwidth: float  # effective bytes/s per GPU reading the paged KV cache
    prefill_flops: float  # effective FLOP/s per GPU
    decode_flops: float
    step_fixed_s: float  # per-step overhead + all-reduce latency
    linear_flops_per_token: float  # 2 * params
    attn_flops_per_token_ctx: float  # attention FLOPs per token per context token


@dataclass(frozen=True, slots=True)
class _Load:
    """The steady state at one arrival rate."""

    stable: bool
    batch: float
    tau_s: float
    ttft_p95_s: float
    tpot_p95_s: float


class PerfModel:
    def __init__(
        self,
        gpus: Mapping[str, GpuSpec] | None = None,
        efficiency: Efficiency | None = None,
        profiles: Profiles | None = None,
    ) -> None:
        self.gpus: Mapping[str, GpuSpec] = gpus if gpus is not None else builtin_gpu_specs()
        self.efficiency: Efficiency = efficiency if efficiency is not None else Efficiency()
        self.profiles: Profiles = profiles if profiles is not None else {}
        self._combos: dict[tuple[ModelArch, Variant, str, int], _Combo] = {}
        self._capacities: dict[tuple[ModelArch, Variant, str, int, RequestShape, Slo], ReplicaCapacity] = {}

    # ----- memory -----

    def fit_problem(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> str | None:
        """Why the variant cannot be served on `tp` x `gpu`, or None when it can."""
        if gpu not in self.gpus:
            return f"unknown accelerator {gpu!r}"
        if tp not in VALID_TP:
            return f"tensor-parallel size {tp} is not one of {VALID_TP}"
        if arch.kv_heads % tp and tp % arch.kv_heads:
            return f"tensor-parallel size {tp} does not divide {arch.kv_heads} KV heads"
        combo = self._combo(arch, variant, gpu, tp)
        needed = min(arch.context, self.efficiency.min_kv_tokens)
        if combo.kv_tokens < needed:
            return (
                f"weights {combo.weight_bytes_per_gpu / GIB:.1f} GiB/GPU leave KV room for {combo.kv_tokens} "
                f"tokens < {needed} on {tp}x{gpu}"
            )
        return None

    def fits(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> bool:
        return self.fit_problem(arch, variant, gpu, tp) is None

    def kv_cache_tokens(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> int:
        """Tokens of KV cache the replica holds (0 when the weights alone do not fit)."""
        return self._combo(arch, variant, gpu, tp).kv_tokens

    def max_batch(self, arch: ModelArch, variant: Variant, gpu: str, tp: int, context_tokens: int) -> int:
        """Concurrent sequences of `context_tokens` each that fit in the KV cache, capped by max_num_seqs."""
        if context_tokens <= 0:
            raise ValueError("context_tokens must be positive")
        held = self._combo(arch, variant, gpu, tp).kv_tokens // context_tokens
        return min(held, self.efficiency.max_num_seqs)

    # ----- timing -----

    def prefill_seconds(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, prompt_tokens: int
    ) -> float:
        """Time to prefill one prompt alone (chunked by the engine's token budget)."""
        if prompt_tokens <= 0:
            raise ValueError("prompt_tokens must be positive")
        c = self._combo(arch, variant, gpu, tp)
        chunks = math.ceil(prompt_tokens / self.efficiency.max_num_batched_tokens)
        # A short prompt still reads all weights once per step: prefill cannot beat the memory floor.
        weights_floor = chunks * c.weight_bytes_per_gpu / c.bandwidth
        return chunks * c.step_fixed_s + max(self._prefill_compute(c, prompt_tokens), weights_floor)

    def decode_step_seconds(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, batch: int, context_tokens: int
    ) -> float:
        """One decode step for `batch` sequences whose context is `context_tokens` each."""
        if batch < 0 or context_tokens < 0:
            raise ValueError("batch and context_tokens must be >= 0")
        return self._decode_step(self._combo(arch, variant, gpu, tp), float(batch), float(context_tokens))

    # ----- throughput -----

    def max_throughput(
        self,
        arch: ModelArch,
        variant: Variant,
        gpu: str,
        tp: int,
        shape: RequestShape,
        max_num_seqs: int | None = None,
    ) -> OfflineThroughput:
        """Offline max throughput (unbounded backlog, no SLO); `max_num_seqs` overrides the engine cap."""
        problem = self._shape_problem(arch, variant, gpu, tp, shape)
        if problem is not None:
            return OfflineThroughput(0.0, 0.0, 0, 0.0, problem)
        c = self._combo(arch, variant, gpu, tp)
        cap = max_num_seqs if max_num_seqs is not None else self.efficiency.max_num_seqs
        by_kv = int(c.kv_tokens // _footprint(shape, self.efficiency))
        batch = max(1, min(by_kv, cap))
        reason = "kv-cache" if by_kv < cap else "max-num-seqs"
        # Each step decodes `batch` tokens and absorbs the prefill of batch / O new requests.
        step = self._decode_step(c, batch, _decode_context(shape)) + batch / shape.output_tokens * (
            self._prefill_compute(c, shape.prompt_tokens)
        )
        tokens_per_s = batch / step
        return OfflineThroughput(tokens_per_s, tokens_per_s / shape.output_tokens, batch, step * 1e3, reason)

    def replica_capacity(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, shape: RequestShape, slo: Slo
    ) -> ReplicaCapacity:
        key = (arch, variant, gpu, tp, shape, slo)
        cached = self._capacities.get(key)
        if cached is None:
            profile = self.profiles.get(ProfileKey(arch.name, variant.name, gpu, tp))
            if profile is not None and profile.applies_to(shape):
                cached = self._measured_capacity(arch, variant, gpu, tp, shape, slo, profile)
            else:
                cached = self._modelled_capacity(arch, variant, gpu, tp, shape, slo)
            self._capacities[key] = cached
        return cached

    def latency_at(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, shape: RequestShape, rps: float
    ) -> LoadPoint:
        """Predicted p95 TTFT / TPOT at a given request rate (for autoscaling and what-if views)."""
        if rps < 0:
            raise ValueError("rps must be >= 0")
        problem = self._shape_problem(arch, variant, gpu, tp, shape)
        if problem is not None:
            raise ValueError(problem)
        c = self._combo(arch, variant, gpu, tp)
        load = self._load(c, shape, rps)
        limit, _ = self._batch_limit(c, shape)
        return LoadPoint(
            stable=load.stable,
            batch=load.batch,
            ttft_p95_ms=load.ttft_p95_s * 1e3,
            tpot_mean_ms=load.tau_s * 1e3,
            tpot_p95_ms=load.tpot_p95_s * 1e3,
            within_kv_cache=load.batch <= limit,
        )

    def with_efficiency(self, efficiency: Efficiency) -> PerfModel:
        """A copy with other efficiency factors (same GPUs and profiles); caches are not shared."""
        return PerfModel(self.gpus, efficiency, self.profiles)

    # ----- internals -----

    def _combo(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> _Combo:
        key = (arch, variant, gpu, tp)
        combo = self._combos.get(key)
        if combo is None:
            combo = self._build_combo(arch, variant, gpu, tp)
            self._combos[key] = combo
        return combo

    def _build_combo(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> _Combo:
        spec = self.gpus.get(gpu)
        if spec is None:
            raise ValueError(f"unknown accelerator {gpu!r}")
        if tp < 1:
            raise ValueError("tp must be >= 1")
        eff = self.efficiency
        weights = arch.params_b * 1e9 * variant.bytes_per_param / tp
        # KV heads are split over tp; when tp exceeds them, each GPU keeps (a replica of) one head.
        kv_heads_per_gpu = math.ceil(arch.kv_heads / tp)
        kv_per_token = 2 * arch.layers * kv_heads_per_gpu * arch.head_dim * variant.kv_bytes_per_elem
        usable = spec.memory_gib * GIB * eff.gpu_memory_utilization - eff.runtime_overhead_gib * GIB
        kv_tokens = max(0, int((usable - weights) // kv_per_token))
        scaling = eff.tp_scaling ** math.log2(tp)  # all-reduce traffic and imbalance eat into tp speed-up
        flops = peak_flops(spec, variant)
        allreduce = 2 * arch.layers * eff.allreduce_latency_s if tp > 1 else 0.0
        return _Combo(
            weight_bytes_per_gpu=weights,
            kv_bytes_per_token_per_gpu=kv_per_token,
            kv_tokens=kv_tokens,
            bandwidth=spec.bandwidth_gb_s * 1e9 * eff.bandwidth_efficiency * scaling,
            kv_bandwidth=spec.bandwidth_gb_s * 1e9 * eff.kv_bandwidth_efficiency * scaling,
            prefill_flops=flops * eff.prefill_mfu * scaling,
            decode_flops=flops * eff.decode_mfu * scaling,
            step_fixed_s=eff.step_overhead_s + allreduce,
            linear_flops_per_token=2 * arch.params_b * 1e9 / tp,
            attn_flops_per_token_ctx=4 * arch.layers * arch.hidden / tp,
        )

    def _prefill_compute(self, c: _Combo, prompt_tokens: int) -> float:
        # Causal attention: each prompt token attends to P/2 earlier tokens on average.
        per_token = c.linear_flops_per_token + c.attn_flops_per_token_ctx * prompt_tokens / 2
        return prompt_tokens * per_token / c.prefill_flops

    def _decode_affine(self, c: _Combo, context: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """(intercept, slope per sequence) of the memory- and compute-bound decode step times."""
        kv_read = context * c.kv_bytes_per_token_per_gpu / c.kv_bandwidth
        memory = (c.weight_bytes_per_gpu / c.bandwidth, kv_read)
        compute = (0.0, (c.linear_flops_per_token + c.attn_flops_per_token_ctx * context) / c.decode_flops)
        return memory, compute

    def _decode_step(self, c: _Combo, batch: float, context: float) -> float:
        (m0, m1), (k0, k1) = self._decode_affine(c, context)
        return c.step_fixed_s + max(m0 + m1 * batch, k0 + k1 * batch)

    def _shape_problem(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, shape: RequestShape
    ) -> str | None:
        problem = self.fit_problem(arch, variant, gpu, tp)
        if problem is not None:
            return problem
        length = shape.prompt_tokens + shape.output_tokens
        if length > arch.context:
            return f"request of {length} tokens exceeds the {arch.context}-token context"
        kv_tokens = self._combo(arch, variant, gpu, tp).kv_tokens
        if length > kv_tokens:
            return f"request of {length} tokens exceeds the KV cache ({kv_tokens} tokens)"
        return None

    def _batch_limit(self, c: _Combo, shape: RequestShape) -> tuple[float, str]:
        by_kv = c.kv_tokens / _footprint(shape, self.efficiency)
        if by_kv < self.efficiency.max_num_seqs:
            return by_kv, "kv-cache"
        return float(self.efficiency.max_num_seqs), "max-num-seqs"

    def _load(self, c: _Combo, shape: RequestShape, lam: float) -> _Load:
        eff = self.efficiency
        p, o = shape.prompt_tokens, shape.output_tokens
        context = _decode_context(shape)
        c_pf = self._prefill_compute(c, p)
        r = lam * c_pf  # share of GPU time spent on prefill compute
        tau = 0.0
        for a, b in self._decode_affine(c, context):
            denominator = 1 - r - b * lam * o
            if denominator <= 0:
                return _Load(False, math.inf, math.inf, math.inf, math.inf)
            tau = max(tau, (c.step_fixed_s + a) / denominator)
        batch = lam * o * tau
        t_dec = self._decode_step(c, batch, context)
        tpot = t_dec + c_pf * poisson_p95(lam * o * tau) / o
        # Chunked prefill: each step carries up to (budget - batch) prompt tokens besides the decodes.
        per_step = eff.max_num_batched_tokens - batch
        if per_step < 1:
            return _Load(False, batch, tau, math.inf, tpot)
        service_mean = c_pf + p / per_step * t_dec
        utilisation = lam * service_mean
        if utilisation >= 1:
            return _Load(False, batch, tau, math.inf, tpot)
        service_alone = c_pf + math.ceil(p / per_step) * t_dec
        ttft = service_alone + p95_wait(utilisation, service_mean, eff.arrival_scv, eff.service_scv)
        return _Load(True, batch, tau, ttft, tpot)

    def _violation(self, load: _Load, slo: Slo, batch_limit: float, batch_reason: str) -> str | None:
        if not load.stable:
            return "compute"
        if load.batch > batch_limit:
            return batch_reason
        if load.tpot_p95_s * 1e3 > slo.tpot_p95_ms:
            return "tpot"
        if load.ttft_p95_s * 1e3 > slo.ttft_p95_ms:
            return "ttft"
        return None

    def _modelled_capacity(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, shape: RequestShape, slo: Slo
    ) -> ReplicaCapacity:
        problem = self._shape_problem(arch, variant, gpu, tp, shape)
        if problem is not None:
            return _infeasible(problem)
        c = self._combo(arch, variant, gpu, tp)
        ttft_alone = self.prefill_seconds(arch, variant, gpu, tp, shape.prompt_tokens) * 1e3
        tpot_alone = self._decode_step(c, 1.0, _decode_context(shape)) * 1e3
        if ttft_alone > slo.ttft_p95_ms:
            reason = f"ttft: {ttft_alone:.0f} ms alone > SLO {slo.ttft_p95_ms:.0f} ms"
            return _infeasible(reason, ttft_alone, tpot_alone)
        if tpot_alone > slo.tpot_p95_ms:
            reason = f"tpot: {tpot_alone:.1f} ms alone > SLO {slo.tpot_p95_ms:.1f} ms"
            return _infeasible(reason, ttft_alone, tpot_alone)

        batch_limit, batch_reason = self._batch_limit(c, shape)
        # No rate can exceed the batch limit over the shortest possible step, nor saturate prefill.
        lo = 0.0
        hi = min(
            batch_limit / (shape.output_tokens * self._decode_step(c, 0.0, _decode_context(shape))),
            1 / self._prefill_compute(c, shape.prompt_tokens),
        )
        binding = self._violation(self._load(c, shape, hi), slo, batch_limit, batch_reason)
        if binding is None:  # only at the exact edge of the bound: the bound itself is the answer
            lo, binding = hi, batch_reason
        for _ in range(_BISECT_STEPS if lo < hi else 0):
            mid = (lo + hi) / 2
            violation = self._violation(self._load(c, shape, mid), slo, batch_limit, batch_reason)
            if violation is None:
                lo = mid
            else:
                hi, binding = mid, violation
        if lo <= 0:
            return _infeasible(f"{binding}: no positive load meets the SLO", ttft_alone, tpot_alone)
        load = self._load(c, shape, lo)
        return ReplicaCapacity(
            feasible=True,
            rps=lo,
            output_tokens_per_s=lo * shape.output_tokens,
            batch=max(1, math.ceil(load.batch)),
            ttft_ms=load.ttft_p95_s * 1e3,
            tpot_ms=load.tpot_p95_s * 1e3,
            reason=binding,
        )

    def _measured_capacity(
        self,
        arch: ModelArch,
        variant: Variant,
        gpu: str,
        tp: int,
        shape: RequestShape,
        slo: Slo,
        profile: MeasuredProfile,
    ) -> ReplicaCapacity:
        if profile.ttft_p95_ms <= slo.ttft_p95_ms and profile.tpot_p95_ms <= slo.tpot_p95_ms:
            return ReplicaCapacity(
                feasible=True,
                rps=profile.rps,
                output_tokens_per_s=profile.rps * shape.output_tokens,
                # Little's law with the p95 TPOT: an upper estimate, as the profile has no batch size.
                batch=max(1, math.ceil(profile.rps * shape.output_tokens * profile.tpot_p95_ms / 1e3)),
                ttft_ms=profile.ttft_p95_ms,
                tpot_ms=profile.tpot_p95_ms,
                reason="measured",
            )
        modelled = self._modelled_capacity(arch, variant, gpu, tp, shape, slo)
        at_measured = self._modelled_capacity(
            arch, variant, gpu, tp, shape, Slo(profile.ttft_p95_ms, profile.tpot_p95_ms)
        )
        if not modelled.feasible or not at_measured.feasible:
            return modelled
        scale = profile.rps / at_measured.rps
        return replace(
            modelled,
            rps=modelled.rps * scale,
            output_tokens_per_s=modelled.output_tokens_per_s * scale,
            reason=f"{modelled.reason} (model scaled x{scale:.2f} by measured profile)",
        )


def _footprint(shape: RequestShape, eff: Efficiency) -> float:
    """KV tokens one in-flight sequence holds (or has reserved), on average."""
    return shape.prompt_tokens + shape.output_tokens * eff.output_kv_reserve


def _decode_context(shape: RequestShape) -> float:
    """Mean context length over a request's decode steps."""
    return shape.prompt_tokens + shape.output_tokens / 2


def _infeasible(reason: str, ttft_ms: float = 0.0, tpot_ms: float = 0.0) -> ReplicaCapacity:
    return ReplicaCapacity(False, 0.0, 0.0, 0, ttft_ms, tpot_ms, reason)
