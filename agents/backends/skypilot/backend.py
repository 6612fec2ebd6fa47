"""The ``skypilot`` replica backend: each replica is one SkyPilot cluster running ``vllm serve``.

Implements ``agents.backends.base.ReplicaBackend``. ``ReplicaSpec.options`` carries the pool (see
``placement``); ``spec.api_key`` is required, because the replica's port is open on the internet.

- ``start`` builds the task (``task_config``), fills in the secrets as SkyPilot secret overrides and
  submits ``sky launch``; it returns as soon as SkyPilot has the request. A cluster of that name that
  already exists (an agent restart) is adopted instead of launched twice.
- ``poll`` reads the launch request's state, the cluster table (one ``sky.status`` call for all of this
  backend's clusters, at most every ``status_ttl_s``), and probes ``GET /health`` on the replica's endpoint
  once the cluster is UP; ``states.decide`` turns that into a status. A spot replica whose probe fails
  forces a cloud refresh at once, so a preemption is reported on that same poll. A failed, preempted or
  late replica's cluster is torn down (the ``sky down`` request is submitted; SkyPilot's API server
  finishes it).
- ``stop`` (blocking): with ``drain``, cancels the job (SIGTERM: vLLM stops taking requests and finishes
  in-flight ones for ``spec.drain_timeout_s``) and waits for it to end; then ``sky down`` and waits.

The SkyPilot SDK is injected (``sdk.SkyPilotApi``), as are the HTTP client and the clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Self

import httpx

from agents.backends.base import BackendError, ReplicaHandle, ReplicaSpec, ReplicaState, ReplicaStatus
from agents.backends.skypilot.sdk import SkyPilotApi
from agents.backends.skypilot.sky_task import to_sky_task
from agents.backends.skypilot.states import (
    ClusterObservation,
    LaunchOutcome,
    LaunchPhase,
    ReplicaView,
    decide,
)
from agents.backends.skypilot.task_config import API_KEY_SECRET, TaskBuild, TaskSettings, build_task_config

Sleep = Callable[[float], None]
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Replica:
    """Backend-private state of one replica."""

    handle: ReplicaHandle
    build: TaskBuild
    launch_request: str | None  # None when an existing cluster was adopted
    launch: LaunchOutcome
    seen_cluster: bool = False
    ever_ready: bool = False
    probe_failures: int = 0
    endpoint: str | None = None
    stop_requested: bool = False
    final: ReplicaStatus | None = None
    teardown_ordered: bool = False  # `sky down` submitted, or the cluster known to be gone
    settle_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cluster_name(self) -> str:
        return self.build.cluster_name


class SkyPilotBackend:
    """Runs vLLM replicas on cloud GPUs through SkyPilot."""

    name = "skypilot"

    def __init__(
        self,
        sdk: SkyPilotApi,
        *,
        settings: TaskSettings | None = None,
        secrets: Mapping[str, str] | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
        status_ttl_s: float = 15.0,
        probe_timeout_s: float = 3.0,
        unhealthy_after: int = 3,
        drain_grace_s: float = 15.0,
    ) -> None:
        self.sdk = sdk
        self.settings = settings or TaskSettings()
        # Values of the settings' extra secrets (e.g. HF_TOKEN), shared by every replica.
        self._secrets = dict(secrets or {})
        missing = [name for name in self.settings.extra_secrets if name not in self._secrets]
        if missing:
            raise ValueError(f"no value for secret(s) {missing} declared in the task settings")
        # trust_env=False: probes go straight to the replica, not through a proxy meant for other traffic.
        self._http = http if http is not None else httpx.Client(trust_env=False)
        self._owns_http = http is None
        self._clock = clock
        self._sleep = sleep
        self.status_ttl_s = status_ttl_s
        self.probe_timeout_s = probe_timeout_s
        self.unhealthy_after = unhealthy_after
        self.drain_grace_s = drain_grace_s
        self._replicas: dict[str, _Replica] = {}
        self._lock = threading.Lock()
        self._observed: dict[str, ClusterObservation] = {}
        self._observed_at: float | None = None

    # -- protocol -------------------------------------------------------------------------------------

    def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        with self._lock:
            existing = self._replicas.get(spec.replica_id)
        if existing is not None and existing.final is None:
            # Level-triggered callers may repeat a start; the same spec is not a new replica.
            if existing.handle.spec == spec:
                return existing.handle
            raise BackendError(f"replica {spec.replica_id} is running with a different spec; stop it first")
        if spec.api_key is None:
            raise BackendError(
                f"replica {spec.replica_id}: a cloud replica needs an API key (its port is public)"
            )
        try:
            build = build_task_config(spec, self.settings)
        except ValueError as exc:
            raise BackendError(f"replica {spec.replica_id}: {exc}") from exc
        present = self._refresh([build.cluster_name], force=True, complete=False).get(build.cluster_name)
        if present is not None and present.status != "STOPPED":
            # Ours from before an agent restart: launching again would start a second vLLM on the port.
            request_id, launch = None, LaunchOutcome(LaunchPhase.SUCCEEDED)
        else:
            secrets = {API_KEY_SECRET: spec.api_key, **self._secrets}
            try:
                task = to_sky_task(build.config, secrets)
                request_id = self.sdk.launch(task, build.cluster_name)
            except Exception as exc:  # the SDK's errors vary; all mean "not launched"
                raise BackendError(f"replica {spec.replica_id}: SkyPilot refused the launch: {exc}") from exc
            launch = LaunchOutcome(LaunchPhase.PENDING)
        handle = ReplicaHandle(
            replica_id=spec.replica_id, backend=self.name, spec=spec, started_at=self._clock()
        )
        replica = _Replica(handle, build, request_id, launch, seen_cluster=present is not None)
        with self._lock:
            self._replicas[spec.replica_id] = replica
        return handle

    def poll(self, handle: ReplicaHandle) -> ReplicaStatus:
        replica = self._get(handle)
        if replica.final is not None:
            return replica.final
        launch_changed = self._update_launch(replica)
        # A launch that just finished must be judged on a fresh table, not on one taken before it.
        cluster = self._cluster(replica, force=launch_changed)
        probe_ok: bool | None = None
        if cluster is not None and cluster.status == "UP" and not replica.stop_requested:
            probe_ok = self._probe(replica)
            if probe_ok is False and replica.ever_ready and replica.build.placement.use_spot:
                # A spot replica that stops answering is most likely being preempted: ask the cloud now.
                cluster = self._cluster(replica, force=True)
        decision = decide(self._view(replica, cluster, probe_ok))
        if decision.status.ever_ready:
            replica.ever_ready = True
        if decision.final:
            return self._settle(replica, decision.status, teardown=decision.teardown)
        return decision.status

    def stop(self, handle: ReplicaHandle, drain: bool = True) -> ReplicaStatus:
        replica = self._get(handle)
        if replica.final is not None:
            if not replica.teardown_ordered:  # e.g. the teardown request could not be submitted in poll
                self._down_or_raise(replica, handle)
            return replica.final
        replica.stop_requested = True
        name = replica.cluster_name
        try:
            if replica.launch_request is not None and replica.launch.phase is LaunchPhase.PENDING:
                # A launch still provisioning holds the cluster; stop it rather than wait it out.
                self.sdk.cancel_request(replica.launch_request)
            if drain and replica.ever_ready and handle.spec.drain_timeout_s > 0:
                self.sdk.cancel_job(name)
                deadline = self._clock() + handle.spec.drain_timeout_s + self.drain_grace_s
                while self.sdk.job_running(name) and self._clock() < deadline:
                    self._sleep(1.0)
        except Exception as exc:  # noqa: BLE001  # draining is best effort; the teardown below is not
            log.warning(
                "replica %s: drain of %s failed, tearing down anyway: %s", handle.replica_id, name, exc
            )
        self._down_or_raise(replica, handle)
        status = ReplicaStatus(ReplicaState.EXITED, ever_ready=replica.ever_ready)
        return self._settle(replica, status, teardown=False)

    # -- extras ---------------------------------------------------------------------------------------

    def endpoint(self, handle: ReplicaHandle) -> str | None:
        """The replica's public base URL (the OpenAI API is under /v1), once SkyPilot has exposed it.

        ``handle.base_url`` is the spec's local address and means nothing for a cloud replica.
        """
        return self._get(handle).endpoint

    def task(self, handle: ReplicaHandle) -> TaskBuild:
        """The task the replica was launched with (no secret values in it)."""
        return self._get(handle).build

    def close(self) -> None:
        """Release the HTTP client. Clusters keep running: they are the fleet, not this process's children."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------

    def _get(self, handle: ReplicaHandle) -> _Replica:
        with self._lock:
            replica = self._replicas.get(handle.replica_id)
        if replica is None or replica.handle != handle:
            raise BackendError(f"replica {handle.replica_id} was not started by this backend")
        return replica

    def _down_or_raise(self, replica: _Replica, handle: ReplicaHandle) -> None:
        try:
            self.sdk.down(replica.cluster_name, wait=True)
        except Exception as exc:
            # The contract is "nothing survives": a teardown that failed is the caller's to retry.
            raise BackendError(
                f"replica {handle.replica_id}: could not tear down {replica.cluster_name}: {exc}"
            ) from exc
        replica.teardown_ordered = True

    def _update_launch(self, replica: _Replica) -> bool:
        if replica.launch_request is None or replica.launch.phase is not LaunchPhase.PENDING:
            return False
        replica.launch = self.sdk.launch_outcome(replica.launch_request)
        return replica.launch.phase is not LaunchPhase.PENDING

    def _cluster(self, replica: _Replica, *, force: bool) -> ClusterObservation | None:
        """This replica's cluster as SkyPilot sees it; ``force`` asks the cloud about it right now."""
        if force:
            # Only this cluster: a forced refresh queries the cloud, which takes a while per cluster.
            self._refresh([replica.cluster_name], force=True, complete=False)
        elif self._observed_at is None or self._clock() - self._observed_at >= self.status_ttl_s:
            self._refresh(self._live_cluster_names(), force=False, complete=True)
        cluster = self._observed.get(replica.cluster_name)
        if cluster is not None:
            replica.seen_cluster = True
        return cluster

    def _live_cluster_names(self) -> list[str]:
        with self._lock:
            return [r.cluster_name for r in self._replicas.values() if r.final is None]

    def _refresh(self, names: list[str], *, force: bool, complete: bool) -> dict[str, ClusterObservation]:
        """One status call for many clusters: the API server does the cloud queries once per round.

        ``complete``: the names are all live clusters, so the result may reset the cache's age.
        """
        observed = self.sdk.clusters(names, force_refresh=force)
        with self._lock:
            for name in names:
                if name in observed:
                    self._observed[name] = observed[name]
                else:
                    self._observed.pop(name, None)
            if complete:
                self._observed_at = self._clock()
        return observed

    def _probe(self, replica: _Replica) -> bool:
        if replica.endpoint is None:
            replica.endpoint = self.sdk.endpoint(replica.cluster_name, replica.handle.spec.port)
            if replica.endpoint is None:
                return False
        try:
            # /health is open in vLLM even with an API key: only /v1 needs the bearer token.
            response = self._http.get(f"{replica.endpoint}/health", timeout=self.probe_timeout_s)
            healthy = response.status_code == 200
        except httpx.HTTPError:
            healthy = False
        replica.probe_failures = 0 if healthy else replica.probe_failures + 1
        return healthy

    def _view(
        self, replica: _Replica, cluster: ClusterObservation | None, probe_ok: bool | None
    ) -> ReplicaView:
        return ReplicaView(
            use_spot=replica.build.placement.use_spot,
            launch=replica.launch,
            cluster=cluster,
            seen_cluster=replica.seen_cluster,
            stop_requested=replica.stop_requested,
            ever_ready=replica.ever_ready,
            probe_ok=probe_ok if replica.endpoint is not None else None,
            probe_failures=replica.probe_failures,
            waited_s=self._clock() - replica.handle.started_at,
            startup_timeout_s=replica.handle.spec.startup_timeout_s,
            unhealthy_after=self.unhealthy_after,
        )

    def _settle(self, replica: _Replica, status: ReplicaStatus, *, teardown: bool) -> ReplicaStatus:
        # poll (reconcile thread) and stop (worker thread) may both get here; the first one wins.
        with replica.settle_lock:
            if replica.final is not None:
                return replica.final
            if teardown:
                try:
                    self.sdk.down(replica.cluster_name, wait=False)
                    replica.teardown_ordered = True
                except Exception as exc:  # noqa: BLE001  # reported, and stop() retries with wait
                    status = replace(status, detail=f"{status.detail}; teardown not submitted: {exc}")
            elif status.state is ReplicaState.FAILED:
                replica.teardown_ordered = True  # nothing left to tear down (the cluster is gone)
            replica.final = status
            return status
