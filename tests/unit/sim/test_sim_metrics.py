"""/metrics exposition: vLLM's names, types and labels; the bulk histogram renders like prometheus_client's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.sim.metrics import BulkHistogram, ReplicaMetrics, cache_config_labels
from agents.sim.sequence import FinishReason, Sequence

# The families (and types) vLLM 0.32 exposes with the `vllm:` prefix, as the text parser names them.
EXPECTED = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:num_requests_waiting_by_reason": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:engine_sleep_state": "gauge",
    "vllm:cache_config_info": "gauge",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
    "vllm:num_preemptions": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_time_per_output_token_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:iteration_tokens_total": "histogram",
}


def _metrics() -> ReplicaMetrics:
    return ReplicaMetrics("llama", 4096, cache_config_labels(16, 1000, True, 4096), lambda: 1.0)


def _finished_seq() -> Sequence:
    seq = Sequence("1", prompt_tokens=100, max_tokens=10, arrival=0.0)
    seq.first_scheduled, seq.first_token, seq.finished_at = 0.5, 1.0, 2.0
    seq.output_tokens = 10
    seq.finish_reason = FinishReason.LENGTH
    return seq


def test_every_expected_family_with_its_type_and_labels() -> None:
    m = _metrics()
    seq = _finished_seq()
    m.on_first_token(seq, 1.0)
    m.on_tokens(0.1, 9)
    m.on_finish(seq)
    families = {f.name: f for f in text_string_to_metric_families(m.render(2, 3, 0.25).decode())}
    for name, kind in EXPECTED.items():
        assert name in families, name
        assert families[name].type == kind, name
        for sample in families[name].samples:
            if name != "vllm:cache_config_info":
                assert sample.labels["model_name"] == "llama"
            assert sample.labels["engine"] == "0"
    value = {s.name: s.value for f in families.values() for s in f.samples if not s.labels.get("le")}
    assert value["vllm:num_requests_running"] == 2 and value["vllm:num_requests_waiting"] == 3
    assert value["vllm:kv_cache_usage_perc"] == 0.25
    assert value["vllm:generation_tokens_total"] == 10
    success = {s.labels["finished_reason"]: s.value for s in families["vllm:request_success"].samples
               if s.name.endswith("_total")}
    assert success["length"] == 1 and success["stop"] == 0 and set(success) >= {"stop", "length", "abort"}


def test_bulk_histogram_exposition_equals_prometheus_client_histogram() -> None:
    bounds = (0.01, 0.1, 1.0)
    reference_registry, bulk_registry = CollectorRegistry(), CollectorRegistry()
    ref = Histogram("vllm:x_seconds", "doc", ["model_name", "engine"], buckets=bounds,
                    registry=reference_registry).labels("m", "0")
    bulk = BulkHistogram("vllm:x_seconds", "doc", {"model_name": "m", "engine": "0"}, bounds, bulk_registry, 0.0)
    for value, count in ((0.005, 3), (0.01, 1), (0.5, 2), (7.0, 1)):
        for _ in range(count):
            ref.observe(value)
        bulk.observe(value, count)

    def without_created(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    assert without_created(bulk_registry) == without_created(reference_registry)
    assert "vllm:x_seconds_created" in generate_latest(bulk_registry).decode()


def test_request_token_buckets_follow_1_2_5_up_to_max_model_len() -> None:
    text = ReplicaMetrics("m", 256, cache_config_labels(16, 100, True, 256), lambda: 0.0).render(0, 0, 0).decode()
    les = [line.split('le="')[1].split('"')[0] for line in text.splitlines()
           if line.startswith("vllm:request_prompt_tokens_bucket")]
    assert les == ["1.0", "2.0", "5.0", "10.0", "20.0", "50.0", "100.0", "200.0", "+Inf"]


def test_registries_are_per_replica() -> None:
    a, b = _metrics(), _metrics()
    a.on_preempt(_finished_seq())
    assert b"vllm:num_preemptions_total{engine=\"0\",model_name=\"llama\"} 0.0" in b.render(0, 0, 0)
    assert b"vllm:num_preemptions_total{engine=\"0\",model_name=\"llama\"} 1.0" in a.render(0, 0, 0)
