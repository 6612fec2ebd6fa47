"""The ``skypilot`` backend with a live replica: readiness by a real HTTP probe, then preemption/failure.

The cloud is FakeSkyPilotSdk (the fake at the SkyPilot SDK boundary); the replica behind the endpoint it
reports is the project's real vLLM-compatible simulator (`python -m agents.sim`), started with an API
key, so the probe also shows that /health needs none.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import pytest

from agents.backends.base import ReplicaHandle, ReplicaSpec, ReplicaState
from agents.backends.skypilot.backend import SkyPilotBackend
from agents.backends.skypilot.naming import cluster_name_for
from agents.backends.skypilot.placement import Placement
from tests.fixtures.skypilot.fake_sky_sdk import FakeSkyPilotSdk
from tests.fixtures.skypilot.sky_offline import REPO_ROOT

SECRET = "sk-live-secret-8080"
SPOT = Placement("aws", "us-east-1", "g5.xlarge", "A10G", 1, "spot", "use1-az2", 128)
ON_DEMAND = Placement("nebius", "eu-north1", "gpu-h100-sxm_1gpu-16vcpu-200gb", "H100", 1)


@dataclass
class LiveReplica:
    process: subprocess.Popen[str]
    url: str

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def live_replica() -> Iterator[LiveReplica]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.sim", "--model", "Llama-3.1-8B", "--accelerator", "H100",
         "--port", "0", "--speedup", "100", "--api-key", SECRET],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    ready = process.stdout.readline()  # one JSON line once it listens
    replica = LiveReplica(process, json.loads(ready)["replicas"][0]["url"])
    yield replica
    replica.kill()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def spec(placement: Placement) -> ReplicaSpec:
    return ReplicaSpec(
        replica_id="live-1",
        model="meta-llama/Llama-3.1-8B-Instruct",
        served_model_name="chat-8b",
        port=8000,
        api_key=SECRET,
        drain_timeout_s=30,
        options=placement.to_options(),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(sky: ModuleType, fake_sdk: FakeSkyPilotSdk, clock: Clock) -> Iterator[SkyPilotBackend]:
    b = SkyPilotBackend(fake_sdk, clock=clock, sleep=clock.sleep, status_ttl_s=15, probe_timeout_s=2.0)
    yield b
    b.close()


def bring_up(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, replica: LiveReplica, placement: Placement
) -> ReplicaHandle:
    handle = backend.start(spec(placement))
    assert backend.poll(handle).state is ReplicaState.STARTING
    fake_sdk.finish_launch(cluster_name_for("live-1"), endpoint=replica.url)
    status = backend.poll(handle)
    assert status.state is ReplicaState.READY and status.ever_ready
    assert backend.endpoint(handle) == replica.url
    return handle


def test_spot_preemption_is_reported_on_the_first_failed_probe(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, live_replica: LiveReplica, clock: Clock
) -> None:
    handle = bring_up(backend, fake_sdk, live_replica, SPOT)
    clock.now += 1  # well inside the status TTL: no scheduled refresh would look before 15 s
    live_replica.kill()
    fake_sdk.preempt(cluster_name_for("live-1"), "terminated")
    fake_sdk.status_calls.clear()
    status = backend.poll(handle)
    assert status.state is ReplicaState.FAILED and status.preempted and status.ever_ready
    assert status.detail.startswith("preempted: spot cluster is gone")
    assert fake_sdk.status_calls == [((cluster_name_for("live-1"),), True)]  # the probe forced a refresh
    assert backend.poll(handle) == status


def test_on_demand_replica_that_stops_answering_fails_after_three_probes(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, live_replica: LiveReplica
) -> None:
    handle = bring_up(backend, fake_sdk, live_replica, ON_DEMAND)
    live_replica.kill()  # vLLM died; the VM is fine
    assert backend.poll(handle).state is ReplicaState.READY  # one failed probe is tolerated
    assert backend.poll(handle).state is ReplicaState.READY
    status = backend.poll(handle)
    assert status.state is ReplicaState.FAILED and not status.preempted
    assert "health check failed 3 times" in status.detail
    assert fake_sdk.downs == [(cluster_name_for("live-1"), False)]


def test_stop_drains_a_serving_replica_then_tears_it_down(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, live_replica: LiveReplica, clock: Clock
) -> None:
    handle = bring_up(backend, fake_sdk, live_replica, SPOT)
    fake_sdk.job_stays_running_polls = 3  # vLLM finishes in-flight requests for a few seconds
    final = backend.stop(handle, drain=True)
    assert final.state is ReplicaState.EXITED and final.ever_ready
    assert fake_sdk.cancels == [cluster_name_for("live-1")]  # SIGTERM to `vllm serve`
    assert clock.now == pytest.approx(3.0)  # waited for the job, not for the whole drain timeout
    assert fake_sdk.downs == [(cluster_name_for("live-1"), True)]
