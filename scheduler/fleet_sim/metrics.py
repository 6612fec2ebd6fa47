"""What a simulated day delivered: requests, SLO attainment, latency percentiles, tokens, cost over time.

Latencies are kept as request-weighted histograms on log-spaced bins (1 ms to ~17 minutes), filled from
each cell's distribution (see replica_model.py); a request meets its SLO when its TTFT and its TPOT are
both within the deployment's targets (the two are treated as independent within a cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

EDGES_MS = np.logspace(0.0, 6.0, 361)  # bin edges; below 1 ms goes to the first bin, above to the last


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and this avoids a scipy dependency.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-a * a)
    return s * y


def normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def ttft_cdf(x: np.ndarray, base: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """P(TTFT <= x) for TTFT = base + exponential(scale); broadcasting (cells x points)."""
    over = x - base
    safe = np.where(scale > 0, scale, 1.0)
    tail = np.where(scale > 0, 1.0 - np.exp(-np.clip(over, 0.0, None) / safe), 1.0)
    return np.where(over >= 0, tail, 0.0)


@dataclass
class Metrics:
    requests: float = 0.0  # arrived (routed or not)
    routed: float = 0.0
    dropped: float = 0.0  # no replica of the deployment was ready anywhere
    disrupted: float = 0.0  # in flight or queued on a replica that was preempted or lost in an outage
    met: float = 0.0
    tokens: float = 0.0  # prompt + output tokens of routed requests
    ttft_hist: np.ndarray = field(default_factory=lambda: np.zeros(len(EDGES_MS) + 1))
    tpot_hist: np.ndarray = field(default_factory=lambda: np.zeros(len(EDGES_MS) + 1))

    def add_cells(
        self,
        counts: np.ndarray,
        base_ms: np.ndarray,
        wait_scale_ms: np.ndarray,
        tpot_mean_ms: np.ndarray,
        tpot_sigma_ms: np.ndarray,
        slo_ttft_ms: np.ndarray,
        slo_tpot_ms: np.ndarray,
        tokens: np.ndarray,
    ) -> float:
        """Record one step's cells; returns the requests among them that met the SLO."""
        if counts.size == 0:
            return 0.0
        self.requests += float(counts.sum())
        self.routed += float(counts.sum())
        self.tokens += float((counts * tokens).sum())
        b, w = base_ms[:, None], wait_scale_ms[:, None]
        cdf = ttft_cdf(EDGES_MS[None, :], b, w)
        self.ttft_hist += _mass(cdf, counts)
        z = (EDGES_MS[None, :] - tpot_mean_ms[:, None]) / tpot_sigma_ms[:, None]
        self.tpot_hist += _mass(normal_cdf(z), counts)
        ok_ttft = ttft_cdf(slo_ttft_ms, base_ms, wait_scale_ms)
        ok_tpot = normal_cdf((slo_tpot_ms - tpot_mean_ms) / tpot_sigma_ms)
        met = float((counts * ok_ttft * ok_tpot).sum())
        self.met += met
        return met

    def add_dropped(self, count: float) -> None:
        self.requests += count
        self.dropped += count
        self.ttft_hist[-1] += count
        self.tpot_hist[-1] += count

    def add_disrupted(self, count: float) -> None:
        self.disrupted += count

    @property
    def slo_attainment(self) -> float:
        if self.requests <= 0:
            return 1.0
        return max(0.0, self.met - self.disrupted) / self.requests

    def percentile(self, which: str, q: float) -> float | None:
        hist = self.ttft_hist if which == "ttft" else self.tpot_hist
        total = hist.sum()
        if total <= 0:
            return None
        cum = np.cumsum(hist)
        i = int(np.searchsorted(cum, q * total))
        if i >= len(EDGES_MS):
            return math.inf
        if i == 0:
            return float(EDGES_MS[0])
        # Interpolate inside bin i = (EDGES[i-1], EDGES[i]] in log space.
        lo, hi = EDGES_MS[i - 1], EDGES_MS[i]
        frac = (q * total - cum[i - 1]) / max(hist[i], 1e-12)
        return float(lo * (hi / lo) ** min(max(frac, 0.0), 1.0))


def _mass(cdf: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-bin request counts from per-cell CDFs at the bin edges (first and last bins open-ended)."""
    padded = np.concatenate([np.zeros((cdf.shape[0], 1)), cdf, np.ones((cdf.shape[0], 1))], axis=1)
    return (np.diff(padded, axis=1) * counts[:, None]).sum(axis=0)


@dataclass
class Timeline:
    """One row per control tick: what the fleet cost and served so far."""

    hours: list[float] = field(default_factory=list)
    cost_usd: list[float] = field(default_factory=list)  # cumulative
    replicas: list[int] = field(default_factory=list)  # running (ready + starting)
    requests: list[float] = field(default_factory=list)  # in the tick
    met: list[float] = field(default_factory=list)  # in the tick
