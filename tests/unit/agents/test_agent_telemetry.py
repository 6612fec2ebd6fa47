"""Scraping vLLM's /metrics text and turning windows of scrapes into rates and p95 latencies."""

from __future__ import annotations

import math

import pytest

from agents.agent.scrape import parse_metrics, quantile
from agents.agent.window import TelemetryWindow


def exposition(requests: float, gen_tokens: float, ttft_buckets: dict[str, float], *, old_names: bool = False,
               errors: float = 0.0) -> str:
    kv = "vllm:gpu_cache_usage_perc" if old_names else "vllm:kv_cache_usage_perc"
    tpot = "vllm:time_per_output_token_seconds" if old_names else "vllm:inter_token_latency_seconds"
    labels = 'model_name="chat",engine="0"'
    lines = [
        "# TYPE vllm:num_requests_running gauge", f"vllm:num_requests_running{{{labels}}} 3.0",
        "# TYPE vllm:num_requests_waiting gauge", f"vllm:num_requests_waiting{{{labels}}} 2.0",
        f"# TYPE {kv} gauge", f"{kv}{{{labels}}} 0.25",
        "# TYPE vllm:prompt_tokens counter", f"vllm:prompt_tokens_total{{{labels}}} {gen_tokens * 4}",
        f"vllm:prompt_tokens_created{{{labels}}} 1.7e9",
        "# TYPE vllm:generation_tokens counter", f"vllm:generation_tokens_total{{{labels}}} {gen_tokens}",
        "# TYPE vllm:request_success counter",
        f'vllm:request_success_total{{{labels},finished_reason="stop"}} {requests}',
        f'vllm:request_success_total{{{labels},finished_reason="abort"}} {errors}',
        "# TYPE vllm:time_to_first_token_seconds histogram",
    ]
    total = 0.0
    for le, count in ttft_buckets.items():
        total = count
        lines.append(f'vllm:time_to_first_token_seconds_bucket{{{labels},le="{le}"}} {count}')
    lines += [f"vllm:time_to_first_token_seconds_count{{{labels}}} {total}",
              f"vllm:time_to_first_token_seconds_sum{{{labels}}} 1.0",
              f"# TYPE {tpot} histogram",
              f'{tpot}_bucket{{{labels},le="0.05"}} 10.0', f'{tpot}_bucket{{{labels},le="+Inf"}} 10.0',
              f"{tpot}_count{{{labels}}} 10.0", f"{tpot}_sum{{{labels}}} 0.2"]
    return "\n".join(lines) + "\n"


def test_current_vllm_names_parse_and_nothing_is_missing_but_e2e() -> None:
    sample = parse_metrics(exposition(5, 100, {"0.1": 4, "0.5": 5, "+Inf": 5}))
    assert sample.gauges == {"running": 3.0, "waiting": 2.0, "kv_cache_usage": 0.25}
    assert sample.counters == {"prompt_tokens": 400.0, "generation_tokens": 100.0, "requests": 5.0}
    assert sample.histograms["ttft"] == ((0.1, 4.0), (0.5, 5.0), (math.inf, 5.0))
    assert sample.missing == ("vllm:e2e_request_latency_seconds",)


def test_renamed_series_are_found_through_their_aliases() -> None:
    sample = parse_metrics(exposition(1, 1, {"+Inf": 1}, old_names=True))
    assert sample.gauges["kv_cache_usage"] == 0.25 and "tpot" in sample.histograms
    assert "vllm:kv_cache_usage_perc" not in sample.missing


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        (((0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)), 0.5, 0.1),
        (((0.1, 0.0), (0.2, 100.0), (math.inf, 100.0)), 0.5, 0.15),  # linear inside the bucket
        (((0.1, 90.0), (math.inf, 100.0)), 0.95, 0.1),  # in +Inf: the largest finite bound
        (((0.1, 0.0), (math.inf, 0.0)), 0.95, None),
    ],
)
def test_quantile_follows_prometheus_histogram_quantile(
    buckets: tuple[tuple[float, float], ...], q: float, expected: float | None
) -> None:
    result = quantile(q, buckets)
    assert result == expected if expected is None else result == pytest.approx(expected)


def test_window_rates_and_p95_come_from_deltas_over_the_window() -> None:
    window = TelemetryWindow(window_s=60)
    window.reset(0.0)
    # Before the window: 100 slow requests (TTFT in the 0.5-1 s bucket).
    window.add(10.0, parse_metrics(exposition(100, 1000, {"0.1": 0, "0.5": 0, "1.0": 100, "+Inf": 100})))
    # In the last minute: 60 more requests, all fast (< 0.1 s), 2 aborted.
    window.add(75.0, parse_metrics(exposition(130, 1300, {"0.1": 30, "0.5": 30, "1.0": 130, "+Inf": 130},
                                              errors=1)))
    window.add(100.0, parse_metrics(exposition(160, 1600, {"0.1": 60, "0.5": 60, "1.0": 160, "+Inf": 160},
                                               errors=2)))
    summary = window.summary()
    assert summary is not None
    assert summary.window_s == pytest.approx(90.0)  # baseline: the newest scrape at or before the window start
    assert summary.request_rate == pytest.approx(62 / 90)  # every finished request, the 2 aborted too
    assert summary.generation_tokens_per_s == pytest.approx(600 / 90)
    assert summary.ttft_p95_ms is not None and summary.ttft_p95_ms < 100  # the old slow ones are out
    assert summary.running == 3.0 and summary.queue_length == 2.0 and summary.kv_cache_usage == 0.25
    assert summary.errors == 2


def test_a_new_incarnation_starts_from_zero_and_failed_scrapes_count_as_errors() -> None:
    window = TelemetryWindow(window_s=60)
    window.reset(0.0)
    assert window.summary() is None  # nothing scraped yet
    window.add(2.0, parse_metrics(exposition(4, 40, {"0.1": 4, "+Inf": 4})))
    window.add_failure(3.0)
    summary = window.summary()
    assert summary is not None and summary.request_rate == pytest.approx(2.0) and summary.errors == 1
    window.reset(5.0)
    window.add(6.0, parse_metrics(exposition(1, 10, {"0.1": 1, "+Inf": 1})))
    again = window.summary()
    assert again is not None and again.request_rate == pytest.approx(1.0) and again.errors == 0
