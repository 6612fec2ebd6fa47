"""The real adapter's translations, fed SkyPilot's own record types (no fake involved)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from agents.backends.skypilot.sdk import (
    SkyPilotApi,
    SkyPilotSdk,
    endpoint_url,
    jobs_running,
    launch_outcome_from_error,
    observation_from_record,
)
from agents.backends.skypilot.states import LaunchPhase


def status_response(sky: ModuleType, status: Any, **extra: Any) -> Any:
    from sky.schemas.api.responses import StatusResponse

    fields: dict[str, Any] = {
        "name": "llmf-r1-abc123",
        "launched_at": 1_700_000_000,
        "status": status,
        "autostop": -1,
        "to_down": False,
        "cluster_hash": "h",
        "cluster_ever_up": True,
        "user_hash": "u",
        "user_name": "llmfleet",
        "workspace": "default",
        "is_managed": False,
        "nodes": 1,
    }
    return StatusResponse(**{**fields, **extra})


@pytest.mark.parametrize("status", ["INIT", "UP", "STOPPED", "AUTOSTOPPING", "PENDING"])
def test_every_cluster_status_translates(sky: ModuleType, status: str) -> None:
    record = status_response(sky, sky.ClusterStatus[status])
    obs = observation_from_record(record)
    assert obs.name == "llmf-r1-abc123" and obs.status == status and not obs.unhealthy


def test_abnormal_init_is_unhealthy_with_its_reason(sky: ModuleType) -> None:
    from sky.utils import status_lib

    record = status_response(
        sky,
        sky.ClusterStatus.INIT,
        init_kind=status_lib.INIT_KIND_UNHEALTHY,
        init_status_reason="Cluster is abnormal because\nnode i-123 is terminated",
    )
    obs = observation_from_record(record)
    assert obs.unhealthy and obs.reason == "Cluster is abnormal because; node i-123 is terminated"
    launching = status_response(sky, sky.ClusterStatus.INIT, init_kind=status_lib.INIT_KIND_LAUNCHING)
    assert not observation_from_record(launching).unhealthy


def test_dict_records_translate_too(sky: ModuleType) -> None:
    obs = observation_from_record({"name": "c", "status": sky.ClusterStatus.UP, "init_kind": None})
    assert obs.status == "UP"


def test_launch_errors(sky: ModuleType) -> None:
    unavailable = sky.exceptions.ResourcesUnavailableError("Failed to acquire resources in all zones")
    outcome = launch_outcome_from_error(unavailable, sky.exceptions.ResourcesUnavailableError)
    assert outcome.phase is LaunchPhase.FAILED and outcome.no_capacity
    assert outcome.error.startswith("ResourcesUnavailableError: Failed to acquire")
    other = launch_outcome_from_error(ValueError("bad\nthing"), sky.exceptions.ResourcesUnavailableError)
    assert not other.no_capacity and other.error == "ValueError: bad; thing"


def test_endpoints_become_urls() -> None:
    assert endpoint_url({8000: "34.1.2.3:8000"}, 8000) == "http://34.1.2.3:8000"
    assert endpoint_url({8000: "https://x.example/api"}, 8000) == "https://x.example/api"
    assert endpoint_url({"8000": "1.2.3.4:8000"}, 8000) == "http://1.2.3.4:8000"
    assert endpoint_url({}, 8000) is None


def test_job_statuses(sky: ModuleType) -> None:
    from sky.skylet.job_lib import JobStatus

    assert jobs_running({1: JobStatus.RUNNING})
    assert jobs_running({1: JobStatus.SETTING_UP})
    assert not jobs_running({1: JobStatus.CANCELLED, 2: JobStatus.FAILED})
    assert not jobs_running({None: None})


def test_the_real_adapter_fits_the_protocol(sky: ModuleType) -> None:
    assert isinstance(SkyPilotSdk(sky), SkyPilotApi)
    for name in (
        "launch",
        "api_status",
        "api_cancel",
        "get",
        "status",
        "endpoints",
        "cancel",
        "job_status",
        "down",
    ):
        assert callable(getattr(sky, name)), name
    assert {"AUTO", "FORCE"} <= {m.name for m in sky.StatusRefreshMode}
