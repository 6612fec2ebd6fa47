"""Request arrivals for the simulated day: per demand slice (deployment, client region, request bucket)
and per time step, drawn once per run so every policy sees the same requests.

A trace demand replays the trace's shape: its arrivals are binned per step and per bucket (the same
equal-count split by prompt length as scheduler/scenario_trace.py, so the buckets are the planner's
shapes), the ~1-hour pattern is tiled over the day, shifted per client region, scaled by `rate_scale`
x the region's share x a diurnal multiplier in the region's local time; a list demand is a constant
rate x the same multiplier. Counts are Poisson around that rate, so minute-scale bursts of the trace
survive and sub-step burstiness is left to the queueing model.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scheduler.fleet_sim.settings import SimScenario, TrafficIn
from scheduler.model_spec import RequestShape
from scheduler.scenario import ScenarioError
from scheduler.scenario_trace import _OUTPUT, _PROMPT, _TIME, TraceError, _column, _time


@dataclass(frozen=True, slots=True)
class SimSlice:
    deployment: str
    client_region: str
    shape: RequestShape


@dataclass(frozen=True)
class Traffic:
    """counts[i, k]: arrivals of slice i in step k; step k covers [(k - warmup) x step_s, + step_s)."""

    slices: tuple[SimSlice, ...]
    step_s: float
    warmup_steps: int
    counts: np.ndarray

    @property
    def steps(self) -> int:
        return self.counts.shape[1] - self.warmup_steps

    def col(self, step: int) -> int:
        return step + self.warmup_steps

    def mean_rps(self, start: int, end: int) -> np.ndarray:
        """Mean rate per slice over steps [start, end) (simulation step numbers, may be negative)."""
        a, b = self.col(max(start, -self.warmup_steps)), self.col(end)
        if b <= a:
            return np.zeros(len(self.slices))
        return self.counts[:, a:b].sum(axis=1) / ((b - a) * self.step_s)

    def peak_minute_rps(self, start: int, end: int) -> np.ndarray:
        """Busiest minute's rate per slice over [start, end) (the gateway's windowed rate telemetry)."""
        a, b = self.col(max(start, -self.warmup_steps)), self.col(end)
        per = max(1, round(60.0 / self.step_s))
        if b - a < per:
            return self.mean_rps(start, end)
        n = (b - a) // per
        window = self.counts[:, b - n * per : b].reshape(len(self.slices), n, per).sum(axis=2)
        return window.max(axis=1) / (per * self.step_s)


def diurnal(t: TrafficIn, local_hour: np.ndarray) -> np.ndarray:
    if t.diurnal is not None:
        values = np.array(t.diurnal + [t.diurnal[0]], dtype=float)
        return np.interp(local_hour % 24.0, np.arange(25, dtype=float), values)
    return 1.0 + t.diurnal_amplitude * np.cos(2 * math.pi * (local_hour - t.peak_hour_local) / 24.0)


def utc_offset(sim: SimScenario, region: str) -> float:
    given = sim.settings.traffic.utc_offset_h or {}
    if region in given:
        return given[region]
    return round(sim.scenario.snapshot.region_by_name[region].lon / 15.0)


def build_traffic(sim: SimScenario, hours: float, warmup_s: float, seed: int) -> Traffic:
    step = sim.settings.step_s
    warm = math.ceil(warmup_s / step)
    total = warm + math.ceil(hours * 3600.0 / step)
    times = (np.arange(total) - warm) * step
    rng = np.random.default_rng([seed, 1])
    slices: list[SimSlice] = []
    rows: list[np.ndarray] = []
    regions = [r.name for r in sim.scenario.snapshot.regions]
    for d in sim.scenario.snapshot.deployments:
        spec = sim.traces.get(d.name)
        shapes_by_bucket: list[RequestShape] = []
        base: np.ndarray | None = None  # [bucket, bin] requests/s of the unscaled trace
        if spec is not None:
            shapes_by_bucket, base = _trace_bins(sim.base_dir / spec.trace, spec.buckets, step, d.name)
        for s in d.demand:
            slices.append(SimSlice(d.name, s.client_region, s.shape))
            mult = diurnal(sim.settings.traffic, times / 3600.0 + utc_offset(sim, s.client_region))
            if spec is None or base is None:
                rate = np.full(total, s.rps) * mult
            else:
                share = spec.split.get(s.client_region, 0.0)
                rate = np.zeros(total)
                bins = base.shape[1]
                # Regions replay the trace from different points so they do not burst in lockstep.
                phase = (regions.index(s.client_region) * bins) // max(1, len(regions))
                idx = (np.arange(total) - warm + phase) % bins
                for b, shape in enumerate(shapes_by_bucket):
                    if shape == s.shape:
                        rate = rate + base[b, idx]
                rate = rate * spec.rate_scale * share * mult
            rows.append(rng.poisson(rate * step).astype(np.float64))
    return Traffic(tuple(slices), step, warm, np.vstack(rows) if rows else np.zeros((0, total)))


def _trace_bins(path: Path, buckets: int, step: float, dep: str) -> tuple[list[RequestShape], np.ndarray]:
    where = f"deployment {dep}: trace"
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = {name.strip().lower(): name for name in (reader.fieldnames or [])}
            t_col, p_col, o_col = (_column(cols, names, path) for names in (_TIME, _PROMPT, _OUTPUT))
            rows = [(_time(r[t_col]), int(float(r[p_col])), int(float(r[o_col]))) for r in reader]
    except (OSError, ValueError, KeyError, TraceError) as exc:
        raise ScenarioError(where, f"cannot read {path}: {exc}") from exc
    rows = [r for r in rows if r[1] > 0 and r[2] > 0]
    if len(rows) < 2:
        raise ScenarioError(where, f"{path} has fewer than two usable requests")
    t0 = min(r[0] for r in rows)
    span = max(r[0] for r in rows) - t0
    bins = max(1, math.ceil(span / step))
    by_prompt = sorted(rows, key=lambda r: r[1])
    n, k = len(by_prompt), min(buckets, len(by_prompt))
    shapes: list[RequestShape] = []
    base = np.zeros((k, bins))
    for b in range(k):
        part = by_prompt[b * n // k : (b + 1) * n // k]  # the same split as scenario_trace.read_trace
        shapes.append(
            RequestShape(
                max(1, round(sum(r[1] for r in part) / len(part))),
                max(1, round(sum(r[2] for r in part) / len(part))),
            )
        )
        idx = np.minimum(((np.array([r[0] for r in part]) - t0) // step).astype(int), bins - 1)
        np.add.at(base[b], idx, 1.0)
    # Per-bin rates whose mean over the span is the trace's mean rate (requests / span).
    return shapes, base * (n / span) / (n / bins)
