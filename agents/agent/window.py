"""Short windows of one replica's scrapes, turned into the telemetry a heartbeat carries.

Rates are counter deltas over the window; p95 latencies come from histogram bucket deltas over the
window (so they describe the last minute, not the replica's life). A window starts with an all-zero
baseline at launch: the agent starts every replica it scrapes, so its counters start at zero too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from agents.agent.scrape import Buckets, ReplicaSample, quantile


@dataclass(frozen=True, slots=True)
class TelemetrySummary:
    window_s: float
    request_rate: float
    prompt_tokens_per_s: float
    generation_tokens_per_s: float
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None
    e2e_p95_ms: float | None
    running: float | None
    queue_length: float | None
    kv_cache_usage: float | None
    errors: int


def _delta(new: float, old: float) -> float:
    # A counter that went down was reset (the replica restarted under us): count from zero.
    return new - old if new >= old else new


def _bucket_delta(new: Buckets, old: Buckets | None) -> Buckets:
    if old is None or [b for b, _ in old] != [b for b, _ in new]:
        return new
    return tuple((bound, _delta(n, o)) for (bound, n), (_, o) in zip(new, old))


class TelemetryWindow:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, ReplicaSample]] = deque()
        self._failures: deque[float] = deque()

    def reset(self, at: float) -> None:
        """A new incarnation of the replica: forget the old one's samples, start from zero."""
        self._samples.clear()
        self._failures.clear()
        self._samples.append((at, ReplicaSample()))

    def add(self, at: float, sample: ReplicaSample) -> None:
        self._samples.append((at, sample))
        self._trim(at)

    def add_failure(self, at: float) -> None:
        self._failures.append(at)
        self._trim(at)

    def _trim(self, now: float) -> None:
        start = now - self.window_s
        # Keep the newest sample at or before the window start as the baseline of every delta.
        while len(self._samples) >= 2 and self._samples[1][0] <= start:
            self._samples.popleft()
        while self._failures and self._failures[0] < start:
            self._failures.popleft()

    def summary(self) -> TelemetrySummary | None:
        if len(self._samples) < 2:
            return None
        (t0, old), (t1, new) = self._samples[0], self._samples[-1]
        span = max(t1 - t0, 1e-6)

        def rate(key: str) -> float:
            if key not in new.counters:
                return 0.0
            return _delta(new.counters[key], old.counters.get(key, 0.0)) / span

        def p95_ms(key: str) -> float | None:
            if key not in new.histograms:
                return None
            value = quantile(0.95, _bucket_delta(new.histograms[key], old.histograms.get(key)))
            return None if value is None else value * 1000.0

        return TelemetrySummary(
            window_s=span,
            request_rate=rate("requests"),
            prompt_tokens_per_s=rate("prompt_tokens"),
            generation_tokens_per_s=rate("generation_tokens"),
            ttft_p95_ms=p95_ms("ttft"),
            tpot_p95_ms=p95_ms("tpot"),
            e2e_p95_ms=p95_ms("e2e"),
            running=new.gauges.get("running"),
            queue_length=new.gauges.get("waiting"),
            kv_cache_usage=new.gauges.get("kv_cache_usage"),
            errors=int(_delta(new.errors, old.errors)) + len(self._failures),
        )
