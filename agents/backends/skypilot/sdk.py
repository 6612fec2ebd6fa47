"""The SkyPilot SDK boundary: the few calls the backend makes, as a small protocol, and the real adapter.

SkyPilot 0.14's client SDK is asynchronous by request: ``sky.launch``, ``sky.status``, ``sky.down``...
each send a request to the SkyPilot API server (started locally on first use) and return a request id;
``sky.get(request_id)`` waits for the result and re-raises the request's exception. ``sky.api_status``
reads a request's state without waiting, which is how the backend watches a launch that takes minutes
while ``poll`` stays non-blocking.

``SkyPilotApi`` is what the backend depends on; ``SkyPilotSdk`` implements it with the real ``sky``
module (injectable, for a client configured elsewhere). Tests use a fake of ``SkyPilotApi``: this is the
one seam where a fake stands in for the cloud. The translations from SkyPilot's records are pure
functions below, tested on SkyPilot's own types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agents.backends.skypilot.sky_task import one_line
from agents.backends.skypilot.states import ClusterObservation, LaunchOutcome, LaunchPhase

if TYPE_CHECKING:
    from types import ModuleType

    import sky

_FINISHED_REQUEST = {"SUCCEEDED", "FAILED", "CANCELLED"}
_JOB_DONE = {"SUCCEEDED", "FAILED", "FAILED_SETUP", "FAILED_DRIVER", "CANCELLED"}


@runtime_checkable
class SkyPilotApi(Protocol):
    """What the ``skypilot`` backend asks of SkyPilot. Every method but ``down(wait=True)`` is short."""

    def launch(self, task: sky.Task, cluster_name: str) -> str:
        """Submit ``sky launch`` for the task on a new cluster; return the request id at once."""
        ...

    def launch_outcome(self, request_id: str) -> LaunchOutcome:
        """Where a submitted launch is, without waiting for it."""
        ...

    def cancel_request(self, request_id: str) -> None:
        """Cancel a submitted request (a launch still provisioning); a finished one is left alone."""
        ...

    def clusters(self, names: Sequence[str], *, force_refresh: bool) -> dict[str, ClusterObservation]:
        """Status of the named clusters; absent ones are missing from the result.

        Without ``force_refresh`` SkyPilot refreshes from the cloud only what may have changed behind its
        back (spot clusters, autostop); with it, every named cluster.
        """
        ...

    def endpoint(self, cluster_name: str, port: int) -> str | None:
        """``http://host:port`` of the port on the cluster's head node, None while not exposed."""
        ...

    def cancel_job(self, cluster_name: str) -> None:
        """Cancel the cluster's running job: SkyPilot sends SIGTERM to its process group."""
        ...

    def job_running(self, cluster_name: str) -> bool:
        """True while the cluster's latest job has not finished."""
        ...

    def down(self, cluster_name: str, *, wait: bool) -> None:
        """Tear the cluster down (billing stops); with ``wait``, until done. A missing cluster is fine."""
        ...


class SkyPilotSdk:
    """``SkyPilotApi`` through SkyPilot's Python client SDK."""

    def __init__(self, sdk: ModuleType | None = None) -> None:
        if sdk is None:
            import sky

            sdk = sky
        # Any: the module is injectable (a client configured elsewhere), so no static type fits all.
        self._sky: Any = sdk

    def launch(self, task: sky.Task, cluster_name: str) -> str:
        # No retry_until_up: when a zone has no capacity the scheduler should pick another pool, not wait.
        # No autostop/down: a serving replica is idle between requests by design.
        request_id = self._sky.launch(task, cluster_name=cluster_name, retry_until_up=False, down=False)
        return str(request_id)

    def launch_outcome(self, request_id: str) -> LaunchOutcome:
        payloads = self._sky.api_status([request_id])
        if not payloads:
            # The API server no longer knows it (restarted): the cluster table will tell what happened;
            # the startup timeout bounds the wait.
            return LaunchOutcome(LaunchPhase.PENDING)
        status = str(payloads[0].status).upper()
        if status not in _FINISHED_REQUEST:
            return LaunchOutcome(LaunchPhase.PENDING)
        try:
            self._sky.get(request_id)  # finished: returns at once, re-raising the launch's exception
        except Exception as exc:  # noqa: BLE001  # any launch error is reported, never raised, by poll
            return launch_outcome_from_error(exc, self._sky.exceptions.ResourcesUnavailableError)
        return LaunchOutcome(LaunchPhase.SUCCEEDED)

    def cancel_request(self, request_id: str) -> None:
        self._sky.get(self._sky.api_cancel(request_id, silent=True))

    def clusters(self, names: Sequence[str], *, force_refresh: bool) -> dict[str, ClusterObservation]:
        if not names:
            return {}
        mode = self._sky.StatusRefreshMode.FORCE if force_refresh else self._sky.StatusRefreshMode.AUTO
        records = self._sky.get(self._sky.status(list(names), refresh=mode))
        observations = (observation_from_record(record) for record in records)
        return {obs.name: obs for obs in observations if obs.name in names}

    def endpoint(self, cluster_name: str, port: int) -> str | None:
        try:
            endpoints = self._sky.get(self._sky.endpoints(cluster_name, port))
        except (ValueError, RuntimeError):  # not UP yet, or the port not exposed yet
            return None
        return endpoint_url(endpoints, port)

    def cancel_job(self, cluster_name: str) -> None:
        try:
            self._sky.get(self._sky.cancel(cluster_name, all=True))
        except (self._sky.exceptions.ClusterNotUpError, self._sky.exceptions.ClusterDoesNotExist):
            pass  # nothing runs there any more

    def job_running(self, cluster_name: str) -> bool:
        try:
            statuses = self._sky.get(self._sky.job_status(cluster_name, None))
        except (self._sky.exceptions.ClusterNotUpError, self._sky.exceptions.ClusterDoesNotExist):
            return False
        return jobs_running(statuses)

    def down(self, cluster_name: str, *, wait: bool) -> None:
        try:
            request_id = self._sky.down(cluster_name)
            if wait:
                self._sky.get(request_id)
        except self._sky.exceptions.ClusterDoesNotExist:
            pass


# -- translations (pure) ----------------------------------------------------------------------------------


def _field(record: Any, name: str) -> Any:
    # sky.status returns StatusResponse models in 0.14; older clients and the server side use dicts.
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def observation_from_record(record: Any) -> ClusterObservation:
    """A ``ClusterObservation`` from one record of ``sky.status``."""
    status = _field(record, "status")
    status_name = getattr(status, "value", status)
    reason = _field(record, "init_status_reason") or _field(record, "last_event") or ""
    return ClusterObservation(
        name=str(_field(record, "name")),
        status=str(status_name).upper(),
        unhealthy=_field(record, "init_kind") == "unhealthy",
        reason=one_line(str(reason)),
    )


def launch_outcome_from_error(error: BaseException, no_capacity_type: type[BaseException]) -> LaunchOutcome:
    return LaunchOutcome(
        LaunchPhase.FAILED,
        error=one_line(f"{type(error).__name__}: {error}")[:500],
        no_capacity=isinstance(error, no_capacity_type),
    )


def endpoint_url(endpoints: Mapping[Any, str], port: int) -> str | None:
    """The URL for ``port`` from ``sky.endpoints``' {port: "host:port" or URL} result."""
    url = endpoints.get(port) or endpoints.get(str(port))
    if not url:
        return None
    return url if "://" in url else f"http://{url}"


def jobs_running(statuses: Mapping[Any, Any]) -> bool:
    """From ``sky.job_status``: {job id: JobStatus or None}; None means no such job."""
    for status in statuses.values():
        if status is None:
            continue
        if str(getattr(status, "value", status)).upper() not in _JOB_DONE:
            return True
    return False
