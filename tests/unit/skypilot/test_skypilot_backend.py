"""The ``skypilot`` backend against FakeSkyPilotSdk (the fake at the SkyPilot SDK boundary).

Launch, state mapping, preemption and teardown. The replica's health endpoint is never up here (the fake
exposes a loopback port nothing listens on), so these tests stop short of READY; the integration tests
add a real simulated replica behind the endpoint for the READY -> preempted path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from types import ModuleType

import pytest

from agents.backends.base import BackendError, ReplicaBackend, ReplicaSpec, ReplicaState
from agents.backends.skypilot.backend import SkyPilotBackend
from agents.backends.skypilot.naming import cluster_name_for
from agents.backends.skypilot.placement import Placement
from agents.backends.skypilot.sdk import SkyPilotApi
from agents.backends.skypilot.task_config import API_KEY_SECRET, TaskSettings
from tests.fixtures.skypilot.fake_sky_sdk import FakeSkyPilotSdk

SECRET = "sk-backend-secret-31337"
SPOT = Placement("aws", "us-east-1", "g5.xlarge", "A10G", 1, "spot", "use1-az2", 128)
ON_DEMAND = Placement("nebius", "eu-north1", "gpu-h100-sxm_1gpu-16vcpu-200gb", "H100", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def spec(replica_id: str = "r1", placement: Placement = SPOT, **kw: object) -> ReplicaSpec:
    base = ReplicaSpec(
        replica_id=replica_id,
        model="meta-llama/Llama-3.1-8B-Instruct",
        served_model_name="chat-8b",
        port=8000,
        api_key=SECRET,
        startup_timeout_s=1800,
        options=placement.to_options(),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(sky: ModuleType, fake_sdk: FakeSkyPilotSdk, clock: Clock) -> Iterator[SkyPilotBackend]:
    b = SkyPilotBackend(fake_sdk, clock=clock, sleep=clock.sleep, status_ttl_s=15, probe_timeout_s=0.5)
    yield b
    b.close()


def test_protocols(backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk) -> None:
    assert isinstance(backend, ReplicaBackend)
    assert isinstance(fake_sdk, SkyPilotApi)


def test_start_launches_a_validated_task_with_the_key_as_secret(
    sky: ModuleType, backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk
) -> None:
    handle = backend.start(spec())
    assert handle.backend == "skypilot" and handle.pid is None
    [(cluster, task)] = fake_sdk.launched
    assert cluster == cluster_name_for("r1")
    assert isinstance(task, sky.Task)
    assert task.secrets[API_KEY_SECRET].get_secret_value() == SECRET
    assert not task.managed_secret_refs
    resources = next(iter(task.resources))
    assert resources.use_spot and resources.instance_type == "g5.xlarge"
    assert SECRET not in task.run and SECRET not in backend.task(handle).yaml()
    assert backend.poll(handle).state is ReplicaState.STARTING


def test_repeated_start_is_a_no_op_and_a_changed_spec_is_refused(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk
) -> None:
    handle = backend.start(spec())
    assert backend.start(spec()) == handle
    assert len(fake_sdk.launched) == 1
    with pytest.raises(BackendError, match="different spec"):
        backend.start(spec(port=8001))


def test_a_public_replica_needs_a_key(backend: SkyPilotBackend) -> None:
    with pytest.raises(BackendError, match="needs an API key"):
        backend.start(spec(api_key=None))


def test_bad_placement_is_a_backend_error(backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk) -> None:
    with pytest.raises(BackendError, match="needs more GPUs"):
        backend.start(spec(tensor_parallel_size=2))
    options = tuple((k, v) for k, v in SPOT.to_options() if k != "instance_type")
    with pytest.raises(BackendError, match="instance_type"):
        backend.start(spec(options=options))
    assert fake_sdk.launched == []


def test_sdk_refusal_is_a_backend_error(backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk) -> None:
    fake_sdk.refuse_launch = RuntimeError("API server unreachable")
    with pytest.raises(BackendError, match="SkyPilot refused the launch: API server unreachable"):
        backend.start(spec())


def test_extra_secrets_need_values(sky: ModuleType, fake_sdk: FakeSkyPilotSdk) -> None:
    settings = TaskSettings(extra_secrets=("HF_TOKEN",))
    with pytest.raises(ValueError, match="HF_TOKEN"):
        SkyPilotBackend(fake_sdk, settings=settings)
    backend = SkyPilotBackend(fake_sdk, settings=settings, secrets={"HF_TOKEN": "hf_x"})
    backend.start(spec())
    task = fake_sdk.launched[0][1]
    assert task.secrets["HF_TOKEN"].get_secret_value() == "hf_x"
    backend.close()


def test_up_but_not_answering_is_starting_until_the_timeout(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, clock: Clock
) -> None:
    handle = backend.start(spec())
    fake_sdk.finish_launch(cluster_name_for("r1"))  # UP; vLLM still downloading weights (no answer)
    assert backend.poll(handle).state is ReplicaState.STARTING
    clock.now += 1801
    status = backend.poll(handle)
    assert status.state is ReplicaState.FAILED and "startup timeout" in status.detail
    assert not status.preempted
    assert fake_sdk.downs == [(cluster_name_for("r1"), False)]  # ordered, not waited for in poll
    assert backend.poll(handle) == status  # final


@pytest.mark.parametrize("how", ["terminated", "stopped", "partial"])
def test_spot_preemption_during_startup_is_reported_with_the_next_status(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, clock: Clock, how: str
) -> None:
    handle = backend.start(spec())
    name = cluster_name_for("r1")
    assert backend.poll(handle).state is ReplicaState.STARTING  # provisioning
    fake_sdk.finish_launch(name)
    assert backend.poll(handle).state is ReplicaState.STARTING  # up, vLLM loading
    fake_sdk.preempt(name, how)  # type: ignore[arg-type]
    # Within the status TTL the backend has not asked yet; the first poll after it reports.
    assert backend.poll(handle).state is ReplicaState.STARTING
    clock.now += 15
    status = backend.poll(handle)
    assert status.state is ReplicaState.FAILED
    assert status.preempted and status.detail.startswith("preempted")
    assert (name, False) in fake_sdk.downs or how == "terminated"


def test_on_demand_cluster_gone_is_a_failure_not_a_preemption(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, clock: Clock
) -> None:
    handle = backend.start(spec(placement=ON_DEMAND))
    name = cluster_name_for("r1")
    fake_sdk.finish_launch(name)
    backend.poll(handle)
    fake_sdk.preempt(name, "terminated")  # someone terminated it in the console
    clock.now += 16
    status = backend.poll(handle)
    assert status.state is ReplicaState.FAILED and not status.preempted
    assert "terminated outside llmfleet" in status.detail


def test_no_capacity_fails_fast_and_tears_down(backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk) -> None:
    handle = backend.start(spec())
    name = cluster_name_for("r1")
    fake_sdk.fail_launch(name, "ResourcesUnavailableError: no spot capacity in us-east-1", no_capacity=True)
    status = backend.poll(handle)
    assert status.state is ReplicaState.FAILED and status.detail.startswith("no capacity: ")
    assert fake_sdk.downs == [(name, False)]  # the INIT leftover goes


def test_one_status_call_per_ttl_for_all_replicas(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, clock: Clock
) -> None:
    handles = [backend.start(spec(f"r{i}")) for i in range(3)]
    fake_sdk.status_calls.clear()
    for handle in handles:
        backend.poll(handle)
    clock.now += 5
    for handle in handles:
        backend.poll(handle)
    assert len(fake_sdk.status_calls) == 1
    names, forced = fake_sdk.status_calls[0]
    assert sorted(names) == sorted(cluster_name_for(f"r{i}") for i in range(3)) and not forced
    clock.now += 15
    backend.poll(handles[0])
    assert len(fake_sdk.status_calls) == 2


def test_a_finished_launch_forces_a_fresh_status(backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk) -> None:
    handle = backend.start(spec())
    backend.poll(handle)
    fake_sdk.status_calls.clear()
    fake_sdk.finish_launch(cluster_name_for("r1"))
    backend.poll(handle)
    assert fake_sdk.status_calls and fake_sdk.status_calls[0][1] is True


def test_stop_tears_down_and_waits(backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk) -> None:
    handle = backend.start(spec())
    name = cluster_name_for("r1")
    fake_sdk.finish_launch(name)
    final = backend.stop(handle, drain=True)
    assert final.state is ReplicaState.EXITED and not final.ever_ready
    assert fake_sdk.cancels == []  # never served: nothing to drain
    assert fake_sdk.downs == [(name, True)]
    assert name not in fake_sdk.table()
    assert backend.stop(handle) == final and backend.poll(handle) == final
    assert fake_sdk.downs == [(name, True)]  # stopping twice does nothing more


def test_stop_after_a_failure_makes_sure_the_cluster_is_gone(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk, clock: Clock
) -> None:
    handle = backend.start(spec())
    fake_sdk.finish_launch(cluster_name_for("r1"))
    clock.now += 2000
    failed = backend.poll(handle)
    assert failed.state is ReplicaState.FAILED
    assert backend.stop(handle) == failed
    assert len(fake_sdk.downs) == 1  # the teardown ordered by poll is not repeated


def test_an_existing_cluster_is_adopted_not_launched_twice(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk
) -> None:
    fake_sdk.add_existing(cluster_name_for("r1"), "UP")
    handle = backend.start(spec())
    assert fake_sdk.launched == []
    assert backend.poll(handle).state is ReplicaState.STARTING  # until its endpoint answers


def test_a_stopped_cluster_of_that_name_is_relaunched(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk
) -> None:
    fake_sdk.add_existing(cluster_name_for("r1"), "STOPPED")
    backend.start(spec())
    assert len(fake_sdk.launched) == 1


def test_unknown_handle_is_an_error(
    sky: ModuleType, backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk
) -> None:
    other = SkyPilotBackend(FakeSkyPilotSdk())
    handle = other.start(spec())
    with pytest.raises(BackendError, match="not started by this backend"):
        backend.poll(handle)
    other.close()


def test_stop_during_provisioning_cancels_the_launch_first(
    backend: SkyPilotBackend, fake_sdk: FakeSkyPilotSdk
) -> None:
    handle = backend.start(spec())
    assert backend.poll(handle).state is ReplicaState.STARTING
    final = backend.stop(handle, drain=True)
    assert final.state is ReplicaState.EXITED
    assert fake_sdk.cancelled_requests == ["req-0"]
    assert fake_sdk.downs == [(cluster_name_for("r1"), True)]
