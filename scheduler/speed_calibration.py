"""How fast each accelerator type really runs, learned from the latency its replicas report.

The performance model believes datasheets; real accelerators (drivers, clocks, kernels) are often slower.
A replica reports its TPOT p95 over a window together with its request rate. The window's estimate of its
accelerator's speed is the factor (on a grid, within [SLOWEST, 1]) by which the datasheet's bandwidth and
FLOPs must be scaled for the performance model to predict that TPOT at that rate: the model's own
nonlinearity (a slower replica also batches more at the same rate) is accounted for, which a plain
expected / observed ratio would not be (it reads 0.71 for a true 0.85 near saturation). The grid search
rounds towards slower, i.e. towards more capacity.

Windows are pooled per accelerator type (weighted by requests) and smoothed in log space. Factors are
capped at 1: a replica that does better than the model says never lowers what the planner provisions (the
model stays the conservative side; believing faster speeds too saved 1.4% on a simulated day, at 0.2
points less SLO attainment); one that does worse makes every plan and every capacity the autoscaler uses
account for it.

Pure: the AutoscaleWorkflow's observe activity and the fleet simulator use the same functions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from scheduler.hardware import GpuSpec, scaled_speed
from scheduler.model_spec import ModelArch, RequestShape, Variant
from scheduler.perf_model import PerfModel

SMOOTHING = 0.3  # weight of the newest window in the running estimate (log space)
SLOWEST = 0.5  # never believe an accelerator is slower than half its datasheet from latency alone
FASTEST = 1.0  # faster than the datasheet is not believed: the model stays the conservative side
MIN_REQUESTS = 20.0  # a window with fewer requests says too little about a TPOT p95
STEP = 0.01  # the grid of speed factors: capacities are recomputed only when a factor moves a step
GRID = tuple(round(SLOWEST + i * STEP, 6) for i in range(round((FASTEST - SLOWEST) / STEP) + 1))


@dataclass(frozen=True, slots=True)
class LatencySample:
    """One window of one replica (or a group of identical replicas): its accelerator's speed as the window
    shows it (see `window_speed`), weighted by the requests it finished."""

    accelerator: str
    requests: float
    speed: float


def window_speed(observed_tpot_p95_ms: float, expected_at: Callable[[float], float]) -> float:
    """The largest grid factor f at which the model's TPOT p95 at the observed rate, `expected_at(f)`
    (inf when the model says a replica that slow could not keep up), is at least what was observed. TPOT
    falls as speed rises, so this is a bisection over GRID; 1 when the replica is as fast as the datasheet
    or faster, SLOWEST when it is slower than the grid reaches."""
    if expected_at(GRID[-1]) >= observed_tpot_p95_ms:
        return GRID[-1]
    low, high = 0, len(GRID) - 1  # expected_at(GRID[high]) < observed; find the largest index with >=
    if expected_at(GRID[low]) < observed_tpot_p95_ms:
        return SLOWEST
    while high - low > 1:
        mid = (low + high) // 2
        if expected_at(GRID[mid]) >= observed_tpot_p95_ms:
            low = mid
        else:
            high = mid
    return GRID[low]


class SpeedModels:
    """A performance model (`base`, which believes the datasheets) at other accelerator speeds: with every
    datasheet scaled by one grid factor, built once per factor (window estimates ask the same few factors
    over and over), or with each accelerator at its learned speed (`calibrated`)."""

    def __init__(self, base: PerfModel) -> None:
        self.base = base
        self._models: dict[float, PerfModel] = {}

    def model(self, speed: float) -> PerfModel:
        if speed not in self._models:
            gpus = {n: scaled_speed(g, speed) for n, g in self.base.gpus.items()}
            self._models[speed] = PerfModel(gpus, self.base.efficiency, self.base.profiles)
        return self._models[speed]

    def calibrated(self, speeds: Mapping[str, float]) -> PerfModel:
        """The base model with each accelerator at its learned speed (factors of 1 change nothing)."""
        if not any(f != 1.0 for f in speeds.values()):
            return self.base
        return PerfModel(calibrated_gpus(self.base.gpus, speeds), self.base.efficiency, self.base.profiles)

    def sample(self, arch: ModelArch, variant: Variant, accelerator: str, tp: int, shape: RequestShape,
               rps_per_replica: float, observed_tpot_p95_ms: float, requests: float) -> LatencySample | None:
        """A window of replicas of one option: None when it says too little (few requests, nothing
        observed) or the model cannot run the shape there at all."""
        if requests < MIN_REQUESTS or not observed_tpot_p95_ms > 0 or not math.isfinite(observed_tpot_p95_ms):
            return None
        if self.model(1.0).fit_problem(arch, variant, accelerator, tp) is not None:
            return None

        def expected_at(speed: float) -> float:
            try:
                point = self.model(speed).latency_at(arch, variant, accelerator, tp, shape, rps_per_replica)
            except ValueError:
                return math.inf
            return point.tpot_p95_ms if point.stable else math.inf

        return LatencySample(accelerator, requests, window_speed(observed_tpot_p95_ms, expected_at))


def update_speeds(previous: Mapping[str, float], samples: Iterable[LatencySample | None]) -> dict[str, float]:
    """The new speed factor per accelerator: the request-weighted geometric mean of this window's samples,
    blended into the previous estimate (the first window is taken as is), within [SLOWEST, 1].
    Accelerators without a sample this window keep their estimate."""
    weight: dict[str, float] = defaultdict(float)
    log_sum: dict[str, float] = defaultdict(float)
    for s in samples:
        if s is not None and s.requests > 0:
            weight[s.accelerator] += s.requests
            log_sum[s.accelerator] += s.requests * math.log(s.speed)
    out = dict(previous)
    for accelerator, w in weight.items():
        window = log_sum[accelerator] / w
        before = previous.get(accelerator)
        estimate = window if before is None else (1 - SMOOTHING) * math.log(before) + SMOOTHING * window
        out[accelerator] = min(FASTEST, max(SLOWEST, math.exp(estimate)))
    return out


def rounded(speeds: Mapping[str, float]) -> dict[str, float]:
    """The factors rounded down to the grid, without those at 1 (a cache key for capacities)."""
    out = {a: round(math.floor(f / STEP + 1e-9) * STEP, 6) for a, f in sorted(speeds.items())}
    return {a: f for a, f in out.items() if f != 1.0}


def calibrated_gpus(gpus: Mapping[str, GpuSpec], speeds: Mapping[str, float]) -> dict[str, GpuSpec]:
    """The accelerator table as the replicas behave: each type's datasheet speed times its factor."""
    return {name: scaled_speed(spec, speeds[name]) if name in speeds else spec for name, spec in gpus.items()}
