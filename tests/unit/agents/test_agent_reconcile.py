"""The agent's reconcile loop against a fake backend and a fake control plane (httpx.MockTransport), with a
fake clock: start, readiness, crash and backoff, give-up, drain, duplicate and stale desired states, and
a control plane that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import httpx

from agents.agent.main import AgentParts
from tests.unit.agents.agent_fakes import FakeBackend, FakeClock, FakeControlPlane, make_agent

Scenario = Callable[[AgentParts, FakeBackend, FakeControlPlane, FakeClock], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **overrides: object) -> None:
    backend, control_plane, clock = FakeBackend(), FakeControlPlane(), FakeClock()

    async def main() -> None:
        parts = make_agent(tmp_path, backend, control_plane, clock, **overrides)  # type: ignore[arg-type]
        try:
            await scenario(parts, backend, control_plane, clock)
        finally:
            await parts.agent.shutdown()
            await parts.scrape_http.aclose()

    asyncio.run(main())


async def tick(parts: AgentParts, times: int = 1) -> None:
    for _ in range(times):
        await parts.agent.tick()
        await parts.agent.replicas.wait_for_stops()  # background stops finish before we look


def test_desired_three_become_three_ready(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1", "chat-2", "chat-3")
        await tick(parts)
        assert backend.running() == {"chat-1", "chat-2", "chat-3"}
        assert set(cp.last_states().values()) == {"starting"}
        spec = backend.started[0]
        assert spec.served_model_name == "chat" and spec.accelerator == "L4" and spec.tensor_parallel_size == 1
        backend.ready("chat-1", "chat-2", "chat-3")
        await tick(parts)
        assert cp.last_states() == {"chat-1": "ready", "chat-2": "ready", "chat-3": "ready"}
        assert cp.heartbeats[-1]["applied_generation"] == cp.generation
        assert all(r["endpoint"].startswith("http://127.0.0.1:") for r in cp.heartbeats[-1]["replicas"])
        assert b'agent_replicas{state="ready"} 3.0' in parts.agent.metrics.render()

    run(tmp_path, scenario)


def test_a_crashed_replica_restarts_with_growing_backoff_on_the_same_port(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1")
        await tick(parts)
        backend.ready("chat-1")
        await tick(parts)
        port = backend.started[0].port
        backend.crash("chat-1")
        await tick(parts)
        assert cp.last_states() == {"chat-1": "starting"} and backend.starts_of("chat-1") == 1  # waiting
        clock.advance(1.0)  # base delay
        await tick(parts)
        assert backend.starts_of("chat-1") == 2 and backend.started[-1].port == port
        assert cp.last_report("chat-1")["restarts"] == 1
        backend.ready("chat-1")
        await tick(parts)
        backend.crash("chat-1")
        await tick(parts)
        clock.advance(1.0)
        await tick(parts)
        assert backend.starts_of("chat-1") == 2  # the second crash in a row waits twice as long
        clock.advance(1.0)
        await tick(parts)
        assert backend.starts_of("chat-1") == 3 and cp.last_report("chat-1")["restarts"] == 2

    run(tmp_path, scenario)


def test_a_crash_loop_ends_in_failed_and_a_stable_replica_starts_its_count_over(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1")
        await tick(parts)
        for _ in range(3):  # max_consecutive_restarts = 3
            backend.ready("chat-1")
            await tick(parts)
            backend.crash("chat-1")
            await tick(parts)
            clock.advance(8.0)
            await tick(parts)
        assert backend.starts_of("chat-1") == 4
        backend.ready("chat-1")
        await tick(parts)
        clock.advance(30.0)  # stable_after_s: the streak is forgiven
        await tick(parts)
        backend.crash("chat-1")
        await tick(parts)
        assert cp.last_states() == {"chat-1": "starting"}  # restarting, not failed
        clock.advance(1.0)  # and back to the base delay
        await tick(parts)
        assert backend.starts_of("chat-1") == 5
        for _ in range(3):  # two more restarts make three in a row; the crash after them is one too many
            backend.ready("chat-1")
            await tick(parts)
            backend.crash("chat-1")
            await tick(parts)
            clock.advance(8.0)
            await tick(parts)
        report = cp.last_report("chat-1")
        assert report["state"] == "failed" and report["failure_reason"].startswith("crash loop")
        assert backend.starts_of("chat-1") == 7

    run(tmp_path, scenario)


def test_a_replica_that_never_becomes_ready_is_failed_once_and_not_relaunched(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1", "chat-2", "chat-3")
        backend.fail_launch.add("chat-3")
        await tick(parts)
        backend.die_before_ready("chat-1")
        clock.advance(61.0)  # past ready_timeout_s for chat-2, which never answers its health check
        await tick(parts)
        await tick(parts, times=5)
        clock.advance(600.0)
        await tick(parts, times=3)
        assert cp.last_states() == {"chat-1": "failed", "chat-2": "failed", "chat-3": "failed"}
        assert "CUDA out of memory" in cp.last_report("chat-1")["failure_reason"]
        assert "not ready within 60 s" in cp.last_report("chat-2")["failure_reason"]
        assert "launch failed" in cp.last_report("chat-3")["failure_reason"]
        assert (backend.starts_of("chat-1"), backend.starts_of("chat-2"), backend.starts_of("chat-3")) == (1, 1, 0)
        assert ("chat-2", False) in backend.stopped  # the hung one is stopped at once, not drained

    run(tmp_path, scenario)


def test_a_preempted_replica_is_reported_and_not_restarted_in_place(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1")
        await tick(parts)
        backend.ready("chat-1")
        await tick(parts)
        backend.preempt("chat-1")
        await tick(parts)
        clock.advance(120.0)
        await tick(parts, times=3)
        assert cp.last_report("chat-1")["state"] == "preempted" and backend.starts_of("chat-1") == 1
        assert cp.last_report("chat-1")["failure_reason"].startswith("preempted")
        cp.want()  # the control plane recorded it and placed a replacement elsewhere
        await tick(parts)
        assert cp.heartbeats[-1]["replicas"] == []

    run(tmp_path, scenario)


def test_desired_zero_drains_then_reports_terminated_and_forgets_once_unlisted(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1", "chat-2")
        await tick(parts)
        backend.ready("chat-1", "chat-2")
        await tick(parts)
        cp.want(stopped=("chat-1", "chat-2"))  # the control plane asks both to drain
        await tick(parts)
        assert sorted(backend.stopped) == [("chat-1", True), ("chat-2", True)]
        await tick(parts)
        assert cp.last_states() == {"chat-1": "terminated", "chat-2": "terminated"}
        cp.want()  # it recorded the terminations: they leave the snapshot
        await tick(parts)
        assert cp.heartbeats[-1]["replicas"] == [] and backend.running() == set()

    run(tmp_path, scenario)


def test_repeated_and_stale_desired_states_change_nothing(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1", "chat-2")
        await tick(parts)
        backend.ready("chat-1", "chat-2")
        await tick(parts, times=3)
        assert cp.not_modified == 3  # the same state again: 304 via If-None-Match
        starts = len(backend.started)
        # The same desired state, re-sent in full (say, a proxy dropped the ETag): nothing new happens.
        assert parts.agent.desired is not None
        parts.agent.desired = replace(parts.agent.desired, etag=None)
        await tick(parts, times=2)
        assert len(backend.started) == starts and backend.stopped == []
        # A stale snapshot (an older generation that wants nothing) arrives: ignored.
        applied = cp.generation
        cp.generation, cp.replicas = applied - 1, []
        await tick(parts, times=2)
        assert backend.stopped == [] and backend.running() == {"chat-1", "chat-2"}
        assert cp.heartbeats[-1]["applied_generation"] == applied
        assert b"agent_stale_desired_total 2.0" in parts.agent.metrics.render()

    run(tmp_path, scenario)


def test_control_plane_down_keeps_replicas_serving_and_the_agent_catches_up(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1", "chat-2")
        await tick(parts)
        backend.ready("chat-1", "chat-2")
        await tick(parts)
        delivered = len(cp.heartbeats)
        cp.down = True
        backend.crash("chat-2")  # things keep happening while it is away
        for _ in range(5):
            clock.advance(5.0)
            await tick(parts)
        assert len(cp.heartbeats) == delivered and backend.stopped == []
        assert backend.starts_of("chat-2") == 2  # the agent kept reconciling from its last desired state
        backend.ready("chat-2")
        assert b'agent_control_plane_errors_total{operation="desired"} 5.0' in parts.agent.metrics.render()
        cp.want("chat-1", stopped=("chat-2",))  # changed while the agent could not see it
        cp.down = False
        await tick(parts)
        await tick(parts)
        assert ("chat-2", True) in backend.stopped
        assert cp.last_states() == {"chat-1": "ready", "chat-2": "terminated"}
        assert cp.last_report("chat-2")["restarts"] == 1
        assert parts.agent.status()["control_plane_up"] is True

    run(tmp_path, scenario)


def test_the_agent_starts_nothing_before_it_has_ever_seen_a_desired_state(tmp_path: Path) -> None:
    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.down = True
        await tick(parts, times=3)
        assert backend.started == [] and parts.agent.status()["generation"] is None
        cp.down = False
        cp.want("chat-1")
        await tick(parts)
        assert backend.running() == {"chat-1"}

    run(tmp_path, scenario)


def test_heartbeats_carry_windowed_telemetry_from_replica_metrics(tmp_path: Path) -> None:
    scraped = {"n": 0}

    def metrics(request: httpx.Request) -> httpx.Response:
        scraped["n"] += 1
        n = scraped["n"] * 10
        text = (
            '# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name="chat"} 4.0\n'
            '# TYPE vllm:request_success counter\n'
            f'vllm:request_success_total{{model_name="chat",finished_reason="stop"}} {n}\n'
            '# TYPE vllm:time_to_first_token_seconds histogram\n'
            f'vllm:time_to_first_token_seconds_bucket{{model_name="chat",le="0.2"}} {n}\n'
            f'vllm:time_to_first_token_seconds_bucket{{model_name="chat",le="+Inf"}} {n}\n'
        )
        return httpx.Response(200, text=text)

    async def scenario(parts: AgentParts, backend: FakeBackend, cp: FakeControlPlane, clock: FakeClock) -> None:
        cp.want("chat-1")
        await tick(parts)
        backend.ready("chat-1")
        clock.advance(5.0)
        await tick(parts)
        clock.advance(5.0)
        await tick(parts)
        telemetry = cp.last_report("chat-1")["telemetry"]
        assert telemetry["request_rate"] == 2.0  # 20 requests over the 10 s since launch
        assert telemetry["queue_length"] == 4.0 and 0 < telemetry["ttft_p95_ms"] <= 200
        assert telemetry["observed_at"].endswith("+00:00")
        missing = parts.agent.metrics.render().decode()
        assert 'agent_scrape_missing_series_total{series="vllm:kv_cache_usage_perc"} 2.0' in missing

    run(tmp_path, scenario, scrape=httpx.MockTransport(metrics))
