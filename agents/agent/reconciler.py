"""Carrying out reconcile actions through the replica backend, and watching what the replicas do.

The backend protocol is synchronous (a stop may block for a whole drain), so every backend call runs in a
worker thread; stops run as background tasks so one slow drain never holds up the next pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from agents.agent.backoff import restart_delay
from agents.agent.desired import DesiredReplica
from agents.agent.local import LocalPhase, LocalReplica
from agents.agent.metrics import AgentMetrics
from agents.agent.plan import Action, ActionKind
from agents.agent.scrape import parse_metrics
from agents.agent.window import TelemetryWindow
from agents.backends.base import ReplicaBackend, ReplicaSpec, ReplicaState, ReplicaStatus

log = logging.getLogger(__name__)

SpecBuilder = Callable[[DesiredReplica, int], ReplicaSpec]  # (desired replica, port) -> what to launch
PortPicker = Callable[[int | None], int]  # preferred port (or None) -> a free port


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    base_s: float
    max_s: float
    max_consecutive: int
    stable_after_s: float


class ReplicaManager:
    def __init__(
        self,
        backend: ReplicaBackend,
        *,
        build_spec: SpecBuilder,
        pick_port: PortPicker,
        scrape_http: httpx.AsyncClient,
        metrics: AgentMetrics,
        restart: RestartPolicy,
        window_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.backend = backend
        self.records: dict[str, LocalReplica] = {}
        self._build_spec = build_spec
        self._pick_port = pick_port
        self._scrape_http = scrape_http
        self._metrics = metrics
        self._restart = restart
        self._window_s = window_s
        self._clock = clock
        self._stops: set[asyncio.Task[None]] = set()

    # ---- acting --------------------------------------------------------------------------------------

    async def apply(self, actions: list[Action], desired: dict[str, DesiredReplica]) -> None:
        for action in actions:
            self._metrics.actions_total.labels(action.kind.value).inc()
            record = self.records.get(action.name)
            if action.kind is ActionKind.START:
                await self._start(action.name, desired[action.name])
            elif action.kind is ActionKind.DRAIN and record is not None:
                log.info("draining %s: %s", action.name, action.reason)
                record.phase = LocalPhase.DRAINING
                self._stop_in_background(record, drain=True, then=LocalPhase.TERMINATED)
            elif action.kind is ActionKind.ABANDON and record is not None:
                log.warning("giving up on %s: %s", action.name, action.reason)
                self._fail(record, action.reason)
                self._stop_in_background(record, drain=False, then=LocalPhase.FAILED)
            elif action.kind is ActionKind.SETTLE:
                if record is None:
                    record = self.records[action.name] = LocalReplica(
                        action.name, desired[action.name], LocalPhase.TERMINATED, TelemetryWindow(self._window_s))
                record.phase = LocalPhase.TERMINATED
                record.handle = None
            elif action.kind is ActionKind.FORGET:
                self.records.pop(action.name, None)

    async def _start(self, name: str, desired: DesiredReplica) -> None:
        record = self.records.get(name)
        restart = record is not None and record.phase is LocalPhase.BACKOFF
        if record is None:
            record = self.records[name] = LocalReplica(
                name, desired, LocalPhase.STARTING, TelemetryWindow(self._window_s))
        record.desired = desired
        now = self._clock()
        try:
            port = self._pick_port(record.port)  # a restarted replica keeps its endpoint when it can
            handle = await asyncio.to_thread(self.backend.start, self._build_spec(desired, port))
        except Exception as error:  # noqa: BLE001 - one replica that cannot launch must not stop the agent
            log.warning("cannot launch %s: %s", name, error)
            self._fail(record, f"launch failed: {error}")
            return
        log.info("%s %s on %s", "restarted" if restart else "started", name, handle.base_url)
        record.handle, record.port, record.phase = handle, port, LocalPhase.STARTING
        record.launched_at, record.ready_since, record.ever_ready, record.retry_at = now, None, False, None
        record.window.reset(now)
        if restart:
            record.restarts += 1
            self._metrics.restarts_total.inc()

    def _fail(self, record: LocalReplica, reason: str) -> None:
        record.phase = LocalPhase.FAILED
        record.failure_reason = reason
        self._metrics.failures_total.inc()

    def _stop_in_background(self, record: LocalReplica, *, drain: bool, then: LocalPhase) -> None:
        handle = record.handle
        if handle is None:
            record.phase = then
            return

        async def stop() -> None:
            try:
                await asyncio.to_thread(self.backend.stop, handle, drain)
            except Exception:  # the backend guarantees the replica is gone; log and go on
                log.exception("stopping %s failed", record.name)
            if record.handle is handle:
                record.handle = None
                if record.phase is LocalPhase.DRAINING:
                    record.phase = then

        task = asyncio.create_task(stop(), name=f"stop-{record.name}")
        self._stops.add(task)
        task.add_done_callback(self._stops.discard)

    # ---- watching ------------------------------------------------------------------------------------

    async def observe(self) -> None:
        """Poll every launched replica that is not being stopped, and follow what happened to it."""
        watched = [(r, r.handle) for r in self.records.values()
                   if r.handle is not None and r.phase in (LocalPhase.STARTING, LocalPhase.READY)]
        results = await asyncio.gather(
            *(asyncio.to_thread(self.backend.poll, handle) for _, handle in watched), return_exceptions=True
        )
        now = self._clock()
        for (record, _), result in zip(watched, results):
            if isinstance(result, BaseException):
                status = ReplicaStatus(ReplicaState.FAILED, ever_ready=record.ever_ready, detail=f"poll: {result}")
            else:
                status = result
            self._follow(record, status, now)

    def _follow(self, record: LocalReplica, status: ReplicaStatus, now: float) -> None:
        if status.state is ReplicaState.READY:
            if record.phase is LocalPhase.STARTING:
                log.info("%s is ready", record.name)
                record.phase, record.ready_since, record.ever_ready = LocalPhase.READY, now, True
            elif record.ready_since is not None and now - record.ready_since >= self._restart.stable_after_s:
                record.crash_streak = 0
            return
        if not status.state.terminal:
            return  # still starting, or draining on its own: look again next pass
        record.handle = None
        if status.preempted:
            # The capacity is gone, not the replica broken: restarting here would only be preempted again.
            log.warning("%s was preempted: %s", record.name, status.detail)
            record.phase, record.failure_reason = LocalPhase.PREEMPTED, status.detail or "preempted"
            return
        if not (record.ever_ready or status.ever_ready):
            # Never came up: relaunching would most likely fail the same way, over and over.
            self._fail(record, status.detail or f"exited ({status.exit_code}) before becoming ready")
            return
        if record.crash_streak >= self._restart.max_consecutive:
            self._fail(record, f"crash loop: {record.crash_streak} restarts in a row; last: {status.detail}")
            return
        delay = restart_delay(record.crash_streak, self._restart.base_s, self._restart.max_s)
        log.warning("%s crashed (%s); restarting in %.1f s", record.name, status.detail or status.state, delay)
        record.phase, record.retry_at = LocalPhase.BACKOFF, now + delay
        record.crash_streak += 1
        record.failure_reason = status.detail or None

    async def scrape(self) -> None:
        ready = [r for r in self.records.values() if r.phase is LocalPhase.READY and r.endpoint is not None]
        await asyncio.gather(*(self._scrape_one(r) for r in ready))

    async def _scrape_one(self, record: LocalReplica) -> None:
        try:
            response = await self._scrape_http.get(f"{record.endpoint}/metrics")
            response.raise_for_status()
            sample = parse_metrics(response.text)
        except (httpx.HTTPError, ValueError) as error:
            log.debug("scrape of %s failed: %s", record.name, error)
            self._metrics.scrape_errors_total.inc()
            record.window.add_failure(self._clock())
            return
        for series in sample.missing:
            self._metrics.missing_series_total.labels(series).inc()
        record.window.add(self._clock(), sample)

    # ---- reporting -----------------------------------------------------------------------------------

    def reports(self, observed_at: datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for record in sorted(self.records.values(), key=lambda r: r.name):
            report: dict[str, Any] = {"name": record.name, "state": record.phase.reported,
                                      "restarts": record.restarts}
            if record.endpoint is not None and not record.phase.settled:
                report["endpoint"] = record.endpoint
            if record.phase in (LocalPhase.FAILED, LocalPhase.PREEMPTED) and record.failure_reason:
                report["failure_reason"] = record.failure_reason[:1000]
            summary = record.window.summary()
            if summary is not None and record.phase in (LocalPhase.READY, LocalPhase.DRAINING):
                report["telemetry"] = {"observed_at": observed_at.isoformat(), **asdict(summary)}
            out.append(report)
        return out

    def status(self) -> list[dict[str, Any]]:
        return [
            {"name": r.name, "deployment": r.desired.deployment, "state": r.phase.value, "endpoint": r.endpoint,
             "restarts": r.restarts, "failure_reason": r.failure_reason}
            for r in sorted(self.records.values(), key=lambda r: r.name)
        ]

    # ---- ending --------------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Drain every replica still running and wait for all stops (on agent exit)."""
        for record in self.records.values():
            if record.handle is not None and record.phase in (LocalPhase.STARTING, LocalPhase.READY):
                record.phase = LocalPhase.DRAINING
                self._stop_in_background(record, drain=True, then=LocalPhase.TERMINATED)
        await self.wait_for_stops()

    async def wait_for_stops(self) -> None:
        """Wait until every stop started so far has finished."""
        if self._stops:
            await asyncio.gather(*list(self._stops), return_exceptions=True)
