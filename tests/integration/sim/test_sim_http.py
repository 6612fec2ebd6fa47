"""A simulated replica over real HTTP: API shapes, errors, auth, /metrics, load, faults and drain."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.sim.replica import ReplicaState
from tests.integration.sim.sim_harness import FAKE_TIMING, HostThread

EXPECTED_TYPES = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:num_preemptions": "counter",
    "vllm:request_success": "counter",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
}


def _metrics(url: str) -> dict[str, Any]:
    text = httpx.get(f"{url}/metrics").text
    return {f.name: f for f in text_string_to_metric_families(text)}


def _sample(url: str, name: str, **labels: str) -> float:
    for family in _metrics(url).values():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise KeyError(name)


def _complete(url: str, max_tokens: int = 8, **extra: Any) -> httpx.Response:
    body = {"model": "sim-model", "prompt": "hello " * 20, "max_tokens": max_tokens, **extra}
    return httpx.post(f"{url}/v1/completions", json=body, timeout=30)


def _stream_lines(url: str, path: str, body: dict[str, Any]) -> list[str]:
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        return list(response.iter_lines())


def test_health_models_version(sim_url: str) -> None:
    health = httpx.get(f"{sim_url}/health")
    assert health.status_code == 200 and health.text == ""
    models = httpx.get(f"{sim_url}/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "sim-model"
    assert models["data"][0]["owned_by"] == "vllm" and models["data"][0]["max_model_len"] == 8192
    assert "version" in httpx.get(f"{sim_url}/version").json()


def test_completion_body_and_usage(sim_url: str) -> None:
    body = _complete(sim_url, max_tokens=7).json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["text"].split()) == 7
    assert body["usage"]["completion_tokens"] == 7
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 7
    # Deterministic pseudo-text: the same prompt gives the same completion.
    assert _complete(sim_url, max_tokens=7).json()["choices"][0]["text"] == choice["text"]


def test_chat_stream_sse_framing(sim_url: str) -> None:
    lines = _stream_lines(sim_url, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True,
        "stream_options": {"include_usage": True},
    })
    assert lines[-2:] == ["data: [DONE]", ""]
    events = [line.removeprefix("data: ") for line in lines if line]
    assert all(line == "" for line in lines[1::2])  # every event is followed by a blank line
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(text.split()) == 5
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


def test_completion_stream_without_usage(sim_url: str) -> None:
    lines = _stream_lines(sim_url, "/v1/completions", {"prompt": "x", "max_tokens": 4, "stream": True})
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length" and "system_fingerprint" in chunks[-1]
    assert len("".join(c["choices"][0]["text"] for c in chunks).split()) == 4


@pytest.mark.parametrize(
    ("body", "status", "err_type"),
    [
        ({"model": "other", "prompt": "x"}, 404, "NotFoundError"),
        ({"prompt": "x", "max_tokens": 100_000}, 400, "BadRequestError"),
        ({"prompt": "x" * 40_000}, 400, "BadRequestError"),
        ({"prompt": ["a", "b"]}, 400, "BadRequestError"),
    ],
)
def test_errors_use_vllm_error_body(sim_url: str, body: dict[str, Any], status: int, err_type: str) -> None:
    response = httpx.post(f"{sim_url}/v1/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == err_type and error["code"] == status and "message" in error and "param" in error


def test_invalid_json_is_400(sim_url: str) -> None:
    response = httpx.post(f"{sim_url}/v1/completions", content=b"not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == 400


def test_api_key_guards_v1_only(sim_host: HostThread) -> None:
    url = sim_host.start(api_key="secret")
    assert httpx.post(f"{url}/v1/completions", json={"prompt": "x"}).status_code == 401
    denied = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401 and denied.json() == {"error": "Unauthorized"}
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(f"{url}/metrics").status_code == 200
    ok = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 2},
                    headers={"Authorization": "Bearer secret"})
    assert ok.status_code == 200
    assert httpx.get(f"{url}/admin/stats").status_code == 401


def test_metrics_has_every_expected_name_and_type(sim_url: str) -> None:
    _complete(sim_url, max_tokens=3)
    families = _metrics(sim_url)
    for name, kind in EXPECTED_TYPES.items():
        assert families[name].type == kind, name
    assert _sample(sim_url, "vllm:request_success_total", finished_reason="length") == 1
    assert _sample(sim_url, "vllm:generation_tokens_total") == 3
    assert _sample(sim_url, "vllm:time_to_first_token_seconds_count", model_name="sim-model", engine="0") == 1


def test_prefix_cache_hits_on_a_repeated_prompt(sim_url: str) -> None:
    long_prompt = {"prompt": "The same long system prompt. " * 40, "max_tokens": 2}
    httpx.post(f"{sim_url}/v1/completions", json=long_prompt)
    assert _sample(sim_url, "vllm:prefix_cache_hits_total") == 0
    httpx.post(f"{sim_url}/v1/completions", json=long_prompt)
    assert _sample(sim_url, "vllm:prefix_cache_hits_total") > 0


def test_latency_grows_with_load(sim_url: str) -> None:
    # Simulated latencies from /metrics (virtual time): independent of how busy this machine is.
    _complete(sim_url, max_tokens=32)
    alone = _sample(sim_url, "vllm:e2e_request_latency_seconds_sum")
    # All 48 leave together, so they share the engine's batches (threads started one by one could finish
    # each other's requests before the last one arrives, and latency would not grow).
    start = threading.Barrier(48)

    def together(_: int) -> httpx.Response:
        start.wait(timeout=30)
        return _complete(sim_url, max_tokens=32)

    with ThreadPoolExecutor(48) as pool:
        list(pool.map(together, range(48)))
    loaded = (_sample(sim_url, "vllm:e2e_request_latency_seconds_sum") - alone) / 48
    assert loaded > 2 * alone


def test_kv_limit_queues_requests(sim_host: HostThread) -> None:
    # 1024 KV tokens; each request holds ~150 without preemption, so only about 6 run at once.
    small_gpu = replace(FAKE_TIMING, kv_cache_tokens=1024)
    url = sim_host.start(timing=small_gpu, max_model_len=1024, preemption=False, speedup=5.0)
    results: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda: results.append(_complete(url, max_tokens=120))) for _ in range(20)]
    for t in threads:
        t.start()
    peak_waiting = 0.0
    while any(t.is_alive() for t in threads):
        peak_waiting = max(peak_waiting, _sample(url, "vllm:num_requests_waiting"))
        time.sleep(0.02)
    assert peak_waiting > 0
    assert all(r.status_code == 200 for r in results) and len(results) == 20
    assert _sample(url, "vllm:request_queue_time_seconds_sum") > 0


def _admin(url: str, method: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{url}/admin/fault", json=body, timeout=5)


def test_error_fault_returns_5xx_until_cleared(sim_url: str) -> None:
    assert _admin(sim_url, "POST", {"mode": "error", "probability": 1.0, "status": 503}).status_code == 200
    failed = _complete(sim_url)
    assert failed.status_code == 503 and failed.json()["error"]["code"] == 503
    assert httpx.get(f"{sim_url}/health").status_code == 200  # errors hit inference only
    _admin(sim_url, "DELETE")
    assert _complete(sim_url).status_code == 200


def test_partial_error_probability(sim_url: str) -> None:
    _admin(sim_url, "POST", {"mode": "error", "probability": 0.5})
    codes = [_complete(sim_url, max_tokens=1).status_code for _ in range(40)]
    assert 0 < codes.count(500) < 40 and codes.count(200) + codes.count(500) == 40


def test_slow_fault_multiplies_latency(sim_url: str) -> None:
    _complete(sim_url, max_tokens=16)
    normal = _sample(sim_url, "vllm:e2e_request_latency_seconds_sum")
    _admin(sim_url, "POST", {"mode": "slow", "slowdown": 4.0})
    _complete(sim_url, max_tokens=16)
    slowed = _sample(sim_url, "vllm:e2e_request_latency_seconds_sum") - normal
    assert slowed == pytest.approx(4 * normal, rel=0.05)


def test_hang_fault_stops_answering_until_cleared(sim_url: str) -> None:
    _admin(sim_url, "POST", {"mode": "hang"})
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{sim_url}/health", timeout=0.5)
    with pytest.raises(httpx.TimeoutException):
        _complete_with_timeout(sim_url, 0.5)
    assert _admin(sim_url, "GET").json()["hang"] is True  # the admin API still answers
    _admin(sim_url, "DELETE")
    assert httpx.get(f"{sim_url}/health", timeout=5).status_code == 200
    assert _complete(sim_url).status_code == 200


def _complete_with_timeout(url: str, timeout: float) -> httpx.Response:
    return httpx.post(f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 2}, timeout=timeout)


def test_crash_fault_kills_the_replica(sim_host: HostThread) -> None:
    url = sim_host.start()
    other = sim_host.start()
    assert _admin(url, "POST", {"mode": "crash"}).status_code == 200
    state = sim_host.call(sim_host.replica(url).wait(), timeout=10)
    assert state is ReplicaState.CRASHED
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
    assert httpx.get(f"{other}/health").status_code == 200  # its neighbour in the process is unaffected


def test_crash_resets_in_flight_streams(sim_host: HostThread) -> None:
    url = sim_host.start(speedup=2.0)
    errors: list[BaseException] = []

    def stream() -> None:
        try:
            _stream_lines(url, "/v1/completions", {"prompt": "x", "max_tokens": 2000, "stream": True})
        except (httpx.HTTPError, AssertionError) as exc:
            errors.append(exc)

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(0.3)
    _admin(url, "POST", {"mode": "crash"})
    worker.join(10)
    assert not worker.is_alive() and errors  # the client saw the connection die, not a clean end


def test_drain_finishes_in_flight_and_refuses_new(sim_host: HostThread) -> None:
    url = sim_host.start(speedup=2.0)  # 400 tokens take about 2 s of wall time: long enough to drain mid-way
    results: list[list[str]] = []
    body = {"prompt": "x", "max_tokens": 400, "stream": True}
    threads = [threading.Thread(target=lambda: results.append(_stream_lines(url, "/v1/completions", body)))
               for _ in range(5)]
    for t in threads:
        t.start()
    while _sample(url, "vllm:num_requests_running") < 5:
        time.sleep(0.01)
    drained = sim_host.submit(sim_host.replica(url).drain())
    time.sleep(0.05)
    refused = _complete(url)
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "ServiceUnavailableError"
    assert httpx.get(f"{url}/health").status_code == 503
    drained.result(30)
    for t in threads:
        t.join(10)
    assert len(results) == 5
    for lines in results:
        chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
        assert lines[-2] == "data: [DONE]"
        assert len("".join(c["choices"][0]["text"] for c in chunks).split()) == 400
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_client_disconnect_aborts_the_request(sim_host: HostThread) -> None:
    url = sim_host.start(speedup=2.0)
    with httpx.stream("POST", f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 5000, "stream": True},
                      timeout=10) as response:
        next(response.iter_lines())  # first token arrived; now hang up
    deadline = time.monotonic() + 10
    while _sample(url, "vllm:num_requests_running") > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _sample(url, "vllm:num_requests_running") == 0
    assert _sample(url, "vllm:request_success_total", finished_reason="abort") == 1
    assert _sample(url, "vllm:kv_cache_usage_perc") == 0


def test_drain_timeout_aborts_what_is_left(sim_host: HostThread) -> None:
    url = sim_host.start(speedup=1.0, drain_timeout_s=0.3)
    results: list[list[str]] = []
    body = {"prompt": "x", "max_tokens": 5000, "stream": True}
    worker = threading.Thread(target=lambda: results.append(_stream_lines(url, "/v1/completions", body)))
    worker.start()
    while _sample(url, "vllm:num_requests_running") < 1:
        time.sleep(0.01)
    sim_host.call(sim_host.replica(url).drain(), timeout=20)
    worker.join(10)
    chunks = [json.loads(line[6:]) for line in results[0] if line.startswith("data: {")]
    assert chunks[-1]["choices"][0]["finish_reason"] == "abort" and results[0][-2] == "data: [DONE]"
