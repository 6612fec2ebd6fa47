"""The canary's PromQL strings and how Prometheus' answers become arms (answers from httpx.MockTransport;
the real Prometheus is in tests/integration/workflows/test_canary_prometheus.py)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from workflows import promql
from workflows.prometheus_canary import PrometheusArms, PrometheusError
from workflows.settings import WorkflowSettings


def test_queries_escape_the_deployment_and_round_the_window_up() -> None:
    q = promql.errors_by_version('we"ird', 12.2)
    assert q == ('sum by (version) (increase(llmfleet_gateway_requests_total'
                 '{deployment="we\\"ird",status=~"5.."}[13s]))')
    assert "llmfleet_gateway_tpot_seconds_bucket" in promql.latency_p95_by_version("tpot", "chat", 30)
    with pytest.raises(ValueError):
        promql.latency_p95_by_version("e2e", "chat", 30)
    with pytest.raises(ValueError):
        promql.window(0)


def vector(*points: tuple[str, str]) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"version": v}, "value": [0, value]} for v, value in points]}}


def test_answers_become_arms_and_nan_is_no_data() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        if "5.." in query:
            body = vector(("v2", "3"))
        elif "requests_total" in query:
            body = vector(("v1", "100"), ("v2", "50"))
        elif "ttft" in query:
            body = vector(("v1", "0.1"), ("v2", "NaN"))
        else:
            body = vector(("v1", "0.02"))
        return httpx.Response(200, content=json.dumps(body))

    arms = asyncio.run(PrometheusArms("http://prom", transport=httpx.MockTransport(answer))
                       .arms("chat", ["v1", "v2"], 60))
    assert arms["v1"].requests == 100 and arms["v1"].errors == 0 and arms["v1"].ttft_p95_ms == pytest.approx(100)
    assert arms["v2"].requests == 47 and arms["v2"].errors == 3
    assert arms["v2"].ttft_p95_ms is None and arms["v2"].tpot_p95_ms is None


def test_a_query_error_is_an_error_not_an_empty_answer() -> None:
    def bad(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "parse error"})

    with pytest.raises(PrometheusError, match="parse error"):
        asyncio.run(PrometheusArms("http://prom", transport=httpx.MockTransport(bad)).arms("chat", ["v1"], 60))


def test_settings_read_the_control_planes_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMFLEET_PROMETHEUS_URL", "http://127.0.0.1:9090/")
    assert WorkflowSettings().prometheus_base == "http://127.0.0.1:9090"
    monkeypatch.setenv("LLMFLEET_PROMETHEUS_URL", "")  # set but empty, as some launchers write it: unset
    assert WorkflowSettings().prometheus_base is None
    monkeypatch.delenv("LLMFLEET_PROMETHEUS_URL")
    assert WorkflowSettings().prometheus_base is None
