"""The simulated truth of a group of identical replicas (same deployment, variant, pool, tp) per step.

The truth is the shared performance model (scheduler/perf_model.py) on accelerators whose bandwidth and
FLOPs differ from the datasheet by a seeded factor in [1 - error, 1 + error] per accelerator type, so
the scheduler (which believes the datasheet) can be wrong both ways. Per step, the group's arrivals are
spread evenly over its ready replicas (continuous batching in each):

- stable: the offered rate is below what a replica can sustain with its batch inside the KV cache and
  the engine limits, and no backlog is left. TTFT = RTT + the bucket's prefill + a queueing wait whose
  tail is exponential with the model's p95 (P(W > t) = exp(-t ln 20 / w95)); TPOT is normal with the
  model's mean and p95 at that load (continuous batching: the batch, and so the step time, grows with
  load; prefills interleaved with decodes stall it).
- overloaded (rate beyond the sustainable one, or a backlog from earlier steps): the replica runs at its
  sustainable rate, the rest waits (fluid FIFO backlog carried to the next step), each arrival also
  waits for the backlog ahead of it, and latencies are those of the saturated replica.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scheduler.hardware import GpuSpec, scaled_speed
from scheduler.model_spec import ModelArch, RequestShape, Variant, mean_shape
from scheduler.perf_model import PerfModel

LN20 = math.log(20.0)
Z95 = 1.6448536269514722
SATURATED = 0.97  # latencies of an overloaded replica: the model at this fraction of its max rate


def perturbed_gpus(
    gpus: Mapping[str, GpuSpec], error: float, seed: int
) -> tuple[dict[str, GpuSpec], dict[str, float]]:
    """The true accelerators: each type's speed scaled by a seeded factor in [1 - error, 1 + error]."""
    rng = np.random.default_rng([seed, 2])
    out: dict[str, GpuSpec] = {}
    factors: dict[str, float] = {}
    for name in sorted(gpus):
        f = float(rng.uniform(1.0 - error, 1.0 + error)) if error > 0 else 1.0
        factors[name] = f
        out[name] = scaled_speed(gpus[name], f)
    return out, factors


@dataclass(frozen=True, slots=True)
class CellLatency:
    """Latency distribution of one (group, demand slice) in one step, in ms."""

    base_ttft_ms: float  # RTT + prefill + backlog wait: the TTFT floor
    wait_scale_ms: float  # exponential tail of the queueing wait (0: none)
    tpot_mean_ms: float
    tpot_sigma_ms: float


@dataclass(frozen=True, slots=True)
class GroupStep:
    served: float  # requests that started service this step
    backlog: float  # requests left waiting
    overloaded: bool
    batch: float  # mean in-flight sequences per replica
    mix: RequestShape | None  # the mean request shape this step


class TruthModel:
    def __init__(self, gpus: Mapping[str, GpuSpec], error: float, seed: int) -> None:
        true_gpus, self.factors = perturbed_gpus(gpus, error, seed)
        self.model = PerfModel(gpus=true_gpus)
        self._max_rps: dict[tuple[ModelArch, Variant, str, int, RequestShape], float] = {}
        self._prefill: dict[tuple[ModelArch, Variant, str, int, int], float] = {}

    def prefill_ms(self, arch: ModelArch, v: Variant, gpu: str, tp: int, prompt: int) -> float:
        key = (arch, v, gpu, tp, prompt)
        if key not in self._prefill:
            self._prefill[key] = self.model.prefill_seconds(arch, v, gpu, tp, prompt) * 1e3
        return self._prefill[key]

    def max_rps(self, arch: ModelArch, v: Variant, gpu: str, tp: int, shape: RequestShape) -> float:
        """The largest rate one replica sustains (stable, batch within the KV cache); bisection."""
        key = (arch, v, gpu, tp, shape)
        cached = self._max_rps.get(key)
        if cached is not None:
            return cached
        lo, hi = 0.0, max(1e-6, self.model.max_throughput(arch, v, gpu, tp, shape).rps * 2.0)
        for _ in range(40):
            mid = (lo + hi) / 2
            if self._sustainable(arch, v, gpu, tp, shape, mid):
                lo = mid
            else:
                hi = mid
        self._max_rps[key] = lo
        return lo

    def _sustainable(
        self, arch: ModelArch, v: Variant, gpu: str, tp: int, shape: RequestShape, rps: float
    ) -> bool:
        p = self.model.latency_at(arch, v, gpu, tp, shape, rps)
        return p.stable and p.within_kv_cache and math.isfinite(p.ttft_p95_ms)

    def step(
        self,
        arch: ModelArch,
        v: Variant,
        gpu: str,
        tp: int,
        ready: int,
        backlog: float,
        cells: list[tuple[float, RequestShape, float]],  # (arrivals, shape, rtt ms)
        dt: float,
        fallback_mix: RequestShape | None = None,
    ) -> tuple[GroupStep, list[CellLatency]]:
        arrivals = sum(c for c, _, _ in cells)
        if ready <= 0 or arrivals + backlog <= 0:
            return GroupStep(0.0, backlog, False, 0.0, fallback_mix), []
        if cells:
            # The mix this step, as one mean shape for the batch; per-bucket prefill keeps its own size.
            total = sum(c for c, _, _ in cells)
            weights = [(c / total if total > 0 else 1.0 / len(cells)) for c, _, _ in cells]
            shapes = [s for _, s, _ in cells]
        else:  # only a backlog to drain: it has the group's previous mix
            weights, shapes = [1.0], [fallback_mix or RequestShape(1, 1)]
        mix = mean_shape(weights, shapes)
        # Sustainable rate of the mix: harmonic mean of the buckets' (each request uses 1/mu of a replica).
        mu = 1.0 / sum(w / max(self.max_rps(arch, v, gpu, tp, s), 1e-9) for w, s in zip(weights, shapes))
        lam = arrivals / (ready * dt)
        overloaded = backlog > 1e-9 or lam >= mu
        point = None
        if not overloaded:
            point = self.model.latency_at(arch, v, gpu, tp, mix, lam)
            overloaded = not (point.stable and point.within_kv_cache and math.isfinite(point.ttft_p95_ms))
        extra_ms = 0.0
        if overloaded:
            capacity = mu * ready * dt
            served = min(backlog + arrivals, capacity)
            left = backlog + arrivals - served
            # An arrival waits for the backlog ahead of it plus half of this step's arrivals beyond capacity.
            extra_ms = max(0.0, backlog + arrivals / 2.0 - capacity / 2.0) / (mu * ready) * 1e3
            point = self.model.latency_at(arch, v, gpu, tp, mix, SATURATED * mu)
        else:
            served, left = arrivals, 0.0
        assert point is not None
        prefill_mix = self.prefill_ms(arch, v, gpu, tp, mix.prompt_tokens)
        w95 = max(0.0, point.ttft_p95_ms - prefill_mix) if math.isfinite(point.ttft_p95_ms) else 0.0
        sigma = max((point.tpot_p95_ms - point.tpot_mean_ms) / Z95, 0.02 * point.tpot_mean_ms)
        out = [
            CellLatency(
                rtt + self.prefill_ms(arch, v, gpu, tp, s.prompt_tokens) + extra_ms,
                w95 / LN20,
                point.tpot_mean_ms,
                sigma,
            )
            for _, s, rtt in cells
        ]
        return GroupStep(served, left, overloaded, point.batch, mix), out
