"""Prometheus metrics of one simulated replica, with vLLM's current names, types, labels and buckets.

Every replica has its own CollectorRegistry (many replicas share a process). Series carry the labels vLLM
uses: model_name and engine="0". Latencies are in simulated seconds, so they compare with SLOs whatever the
speed-up. Histograms use a small collector with bulk observation: a decode step gives every sequence in the
batch the same inter-token latency, so one update per step replaces one per token; the exposition is the
same as prometheus_client's own Histogram (buckets, _count, _sum, _created).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence as Seq

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from agents.sim import buckets
from agents.sim.sequence import FinishReason, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LABELS = ("model_name", "engine")
_ENGINE = "0"


def cache_config_labels(block_size: int, num_blocks: int, prefix_caching: bool, max_model_len: int) -> dict[str, str]:
    """vllm:cache_config_info's labels: vLLM 0.32's full set, with this replica's KV numbers filled in."""
    tokens = num_blocks * block_size
    labels = {
        "_block_size_resolved": "True", "cache_dtype": "auto", "cache_hit_alignment_tokens": "None",
        "enable_mamba_shared_prefix_checkpoint": "False", "gpu_memory_utilization": "0.9",
        "hash_block_size": "None", "is_attention_free": "False", "kv_cache_dtype_skip_layers": "[]",
        "kv_cache_layout": "None", "kv_cache_memory_bytes": "None", "kv_offloading_backend": "native",
        "kv_offloading_size": "None", "kv_sharing_fast_prefill": "False", "mamba_block_size": "None",
        "mamba_cache_dtype": "auto", "mamba_cache_mode": "none", "mamba_page_size_padded": "None",
        "mamba_ssm_cache_dtype": "float32", "num_cpu_blocks": "None", "num_gpu_blocks_override": "None",
        "prefix_cache_retention_interval": "0", "prefix_caching_hash_algo": "sha256", "prefix_match_unit": "None",
        "replayssm_buffer_len": "16", "skip_page_size_padded": "None", "sliding_window": "None",
        "swa_bounded_replay": "True", "use_kda_recoverssm": "False", "use_replayssm": "False",
        "user_specified_block_size": "False",
    }
    labels.update({
        "block_size": str(block_size),
        "effective_attention_block_size": str(block_size),
        "enable_prefix_caching": str(prefix_caching),
        "num_gpu_blocks": str(num_blocks),
        "kv_cache_size_tokens": str(tokens),
        "kv_cache_max_concurrency": str(round(tokens / max_model_len, 2)),
    })
    return labels


class BulkHistogram:
    """One histogram series that accepts `observe(value, count)`; registered as a collector."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: dict[str, str],
        bounds: Seq[float],
        registry: CollectorRegistry,
        created: float,
    ) -> None:
        self._name = name
        self._doc = documentation
        self._labels = labels
        self._bounds = [*bounds, math.inf]
        self._le = [floatToGoString(b) for b in self._bounds]
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._created = created
        registry.register(self)

    def observe(self, value: float, count: int = 1) -> None:
        self._counts[bisect_left(self._bounds, value)] += count
        self._sum += value * count

    @property
    def count(self) -> int:
        return sum(self._counts)

    def describe(self) -> list[Metric]:
        return [Metric(self._name, self._doc, "histogram")]

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self._name, self._doc, "histogram")
        cumulative = 0
        for le, count in zip(self._le, self._counts):
            cumulative += count
            metric.add_sample(self._name + "_bucket", {**self._labels, "le": le}, cumulative)
        metric.add_sample(self._name + "_count", self._labels, cumulative)
        metric.add_sample(self._name + "_sum", self._labels, self._sum)
        metric.add_sample(self._name + "_created", self._labels, self._created)
        yield metric


class ReplicaMetrics:
    """Implements agents.sim.observer.EngineObserver and renders /metrics (families in vLLM's order)."""

    def __init__(
        self,
        model_name: str,
        max_model_len: int,
        cache_info: dict[str, str],
        wall_clock: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        values = (model_name, _ENGINE)
        labels = dict(zip(_LABELS, values))

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, _LABELS, registry=reg).labels(*values)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, _LABELS, registry=reg).labels(*values)

        def labelled_counter(name: str, doc: str, label: str, label_values: Seq[str]) -> dict[str, Counter]:
            family = Counter(name, doc, [*_LABELS, label], registry=reg)
            return {v: family.labels(*values, v) for v in label_values}

        def histogram(name: str, doc: str, bounds: Seq[float]) -> BulkHistogram:
            return BulkHistogram(name, doc, labels, bounds, reg, wall_clock())

        # Series a real engine has that mean nothing here stay at zero, so dashboards and name checks see
        # the same families as on vLLM.
        for name, doc in (
            ("vllm:estimated_flops_per_gpu", "Estimated number of floating point operations per GPU."),
            ("vllm:estimated_read_bytes_per_gpu", "Estimated number of bytes read from memory per GPU."),
            ("vllm:estimated_write_bytes_per_gpu", "Estimated number of bytes written to memory per GPU."),
        ):
            counter(name, doc)
        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        by_reason = Gauge(
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason. Sum of all reasons equals vllm:num_requests_waiting.",
            [*_LABELS, "reason"],
            registry=reg,
        )
        self.waiting_capacity = by_reason.labels(*values, "capacity")
        by_reason.labels(*values, "deferred").set(0)
        sleep_state = Gauge("vllm:engine_sleep_state", "Engine sleep state; awake = 1 means the engine is awake.",
                            [*_LABELS, "sleep_state"], registry=reg)
        for state, value in (("awake", 1), ("weights_offloaded", 0), ("discard_all", 0)):
            sleep_state.labels(*values, state).set(value)
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.")
        self.prefix_hits = counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.")
        for name, doc in (
            ("vllm:external_prefix_cache_queries", "External prefix cache queries, in number of queried tokens."),
            ("vllm:external_prefix_cache_hits", "External prefix cache hits, in number of cached tokens."),
            ("vllm:mm_cache_queries", "Multi-modal cache queries, in terms of number of queried items."),
            ("vllm:mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items."),
        ):
            counter(name, doc)
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        by_source = labelled_counter("vllm:prompt_tokens_by_source", "Number of prompt tokens by source.", "source",
                                     ("local_compute", "local_cache_hit", "external_kv_transfer"))
        self.prompt_computed = by_source["local_compute"]
        self.prompt_cache_hit = by_source["local_cache_hit"]
        self.prompt_cached = counter("vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).")
        cached_by_source = labelled_counter(
            "vllm:prompt_tokens_cached_by_source", "Prefix-cache hit tokens by the cache tier that supplied them.",
            "source", ("device", "host", "p2p", "disk", "external_unspecified"))
        self.prompt_cached_device = cached_by_source["device"]
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = labelled_counter("vllm:request_success", "Count of successfully processed requests.",
                                   "finished_reason", ("stop", "length", "abort", "error", "repetition"))
        self.success = {reason: success[reason.value] for reason in FinishReason}
        rejections = Counter("vllm:admission_rejections",
                             "Number of admission attempts rejected by a queue limit, by reason.",
                             ["model_name", "reason"], registry=reg)
        for reason in ("max_num_queued_reqs", "max_num_queued_tokens"):
            rejections.labels(model_name, reason)

        request_tokens = buckets.one_two_five(max_model_len)
        self.req_prompt_tokens = histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.",
                                           request_tokens)
        self.req_generation_tokens = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", request_tokens)
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", buckets.ITERATION_TOKENS)
        self.req_max_generation = histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.", request_tokens)
        self.req_params_n = histogram("vllm:request_params_n", "Histogram of the n request parameter.",
                                      buckets.REQUEST_PARAMS_N)
        self.req_params_max_tokens = histogram(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", request_tokens)
        self.ttft = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              buckets.TIME_TO_FIRST_TOKEN)
        self.itl = histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                             buckets.INTER_TOKEN_LATENCY)
        self.tpot = histogram("vllm:request_time_per_output_token_seconds",
                              "Histogram of time_per_output_token_seconds per request.", buckets.INTER_TOKEN_LATENCY)
        self.e2e = histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                             buckets.REQUEST_LATENCY)
        self.queue = histogram("vllm:request_queue_time_seconds",
                               "Histogram of time spent in WAITING phase for request.", buckets.REQUEST_LATENCY)
        self.inference = histogram("vllm:request_inference_time_seconds",
                                   "Histogram of time spent in RUNNING phase for request.", buckets.REQUEST_LATENCY)
        self.prefill = histogram("vllm:request_prefill_time_seconds",
                                 "Histogram of time spent in PREFILL phase for request.", buckets.REQUEST_LATENCY)
        self.decode = histogram("vllm:request_decode_time_seconds",
                                "Histogram of time spent in DECODE phase for request.", buckets.REQUEST_LATENCY)
        self.req_preemptions = histogram("vllm:request_num_preemptions",
                                         "Histogram of the number of times a request was preempted.",
                                         buckets.REQUEST_NUM_PREEMPTIONS)
        self.req_prefill_computed = histogram(
            "vllm:request_prefill_kv_computed_tokens",
            "Histogram of new KV tokens computed during prefill (excluding cached tokens).", request_tokens)
        info = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                     [*sorted(cache_info), "engine"], registry=reg)
        info.labels(*(cache_info[k] for k in sorted(cache_info)), _ENGINE).set(1)

    # ----- EngineObserver -----

    def on_step(self, num_tokens: int) -> None:
        self.iteration_tokens.observe(num_tokens)

    def on_admit(self, seq: Sequence) -> None:
        self.prefix_queries.inc(seq.num_tokens)
        if seq.cached_tokens:
            self.prefix_hits.inc(seq.cached_tokens)

    def on_preempt(self, seq: Sequence) -> None:
        self.preemptions.inc()

    def on_first_token(self, seq: Sequence, ttft: float) -> None:
        self.ttft.observe(ttft)
        self.generation_tokens.inc()
        self.prompt_tokens.inc(seq.prompt_tokens)
        computed = seq.prompt_tokens - seq.cached_tokens
        self.prompt_computed.inc(computed)
        if seq.cached_tokens:
            self.prompt_cache_hit.inc(seq.cached_tokens)
            self.prompt_cached.inc(seq.cached_tokens)
            self.prompt_cached_device.inc(seq.cached_tokens)

    def on_tokens(self, inter_token_latency: float, count: int) -> None:
        self.itl.observe(inter_token_latency, count)
        self.generation_tokens.inc(count)

    def on_finish(self, seq: Sequence) -> None:
        assert seq.finish_reason is not None
        self.success[seq.finish_reason].inc()
        if seq.first_token is None or seq.first_scheduled is None or seq.finished_at is None:
            return  # aborted before its first token: vLLM records no latencies either
        self.e2e.observe(seq.finished_at - seq.arrival)
        self.queue.observe(seq.first_scheduled - seq.arrival)
        self.prefill.observe(seq.first_token - seq.first_scheduled)
        self.decode.observe(seq.finished_at - seq.first_token)
        self.inference.observe(seq.finished_at - seq.first_scheduled)
        if seq.output_tokens > 1:
            self.tpot.observe((seq.finished_at - seq.first_token) / (seq.output_tokens - 1))
        self.req_prompt_tokens.observe(seq.prompt_tokens)
        self.req_generation_tokens.observe(seq.output_tokens)
        self.req_max_generation.observe(seq.max_tokens)
        self.req_params_max_tokens.observe(seq.max_tokens)
        self.req_params_n.observe(1)
        self.req_prefill_computed.observe(seq.prompt_tokens - seq.cached_tokens)
        self.req_preemptions.observe(seq.num_preemptions)

    # ----- exposition -----

    def render(self, running: int, waiting: int, kv_usage: float) -> bytes:
        """Text exposition; gauges are set here, at scrape time, rather than on every engine step."""
        self.running.set(running)
        self.waiting.set(waiting)
        self.waiting_capacity.set(waiting)
        self.kv_usage.set(kv_usage)
        return generate_latest(self.registry)
