"""Reading one replica's /metrics (vLLM's names) into the few series the agent keeps.

vLLM renames metrics between releases, so each series the agent needs has an alias list, newest name
first (FACTS: `vllm:gpu_cache_usage_perc` became `vllm:kv_cache_usage_perc`, `time_per_output_token`
became `inter_token_latency`). A series found under none of its names is reported as missing, and the
agent counts that in its own /metrics so a silent rename is noticed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Container
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

GAUGES: dict[str, tuple[str, ...]] = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
}
COUNTERS: dict[str, tuple[str, ...]] = {
    "prompt_tokens": ("vllm:prompt_tokens_total",),
    "generation_tokens": ("vllm:generation_tokens_total",),
    "requests": ("vllm:request_success_total",),
}
# TPOT as the SLO means it (a request's mean time per output token) is vLLM's per-request histogram; the
# per-token inter-token latency is the fallback on engines without it.
HISTOGRAMS: dict[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "tpot": (
        "vllm:request_time_per_output_token_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
    ),
    "e2e": ("vllm:e2e_request_latency_seconds",),
}
# Finished reasons of vllm:request_success that mean the request did not complete normally.
ERROR_REASONS = frozenset({"abort", "error"})

Buckets = tuple[tuple[float, float], ...]  # (upper bound, cumulative count), ascending, ending at +Inf


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """One scrape, reduced to canonical series (summed over label sets: one replica serves one model)."""

    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Buckets] = field(default_factory=dict)
    errors: float = 0.0  # requests finished with an error reason (cumulative)
    missing: tuple[str, ...] = ()


def _first(aliases: tuple[str, ...], present: Container[str]) -> str | None:
    return next((name for name in aliases if name in present), None)


def parse_metrics(text: str) -> ReplicaSample:
    values: dict[str, float] = defaultdict(float)  # sample name -> sum over label sets
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    errors = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            if sample.name.endswith("_bucket") and "le" in sample.labels:
                buckets[sample.name.removesuffix("_bucket")][float(sample.labels["le"])] += sample.value
                continue
            values[sample.name] += sample.value
            if sample.name == "vllm:request_success_total" and sample.labels.get("finished_reason") in ERROR_REASONS:
                errors += sample.value
    missing: list[str] = []
    gauges: dict[str, float] = {}
    for key, aliases in GAUGES.items():
        name = _first(aliases, values)
        if name is None:
            missing.append(aliases[0])
        else:
            gauges[key] = values[name]
    counters: dict[str, float] = {}
    for key, aliases in COUNTERS.items():
        name = _first(aliases, values)
        if name is None:
            missing.append(aliases[0])
        else:
            counters[key] = values[name]
    histograms: dict[str, Buckets] = {}
    for key, aliases in HISTOGRAMS.items():
        name = _first(aliases, buckets)
        if name is None or math.inf not in buckets[name]:
            missing.append(aliases[0])
        else:
            histograms[key] = tuple(sorted(buckets[name].items()))
    return ReplicaSample(gauges, counters, histograms, errors, tuple(missing))


def quantile(q: float, cumulative: Buckets) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the q-th rank; the
    +Inf bucket answers with the largest finite bound. None when the histogram is empty."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            inside = count - lower_count
            if inside <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / inside
        lower_bound, lower_count = bound, count
    return lower_bound
