"""Client side: how the API (and tests) start and signal workflows. Imports no activity code."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from workflows.autoscale import AutoscaleWorkflow, autoscale_workflow_id
from workflows.deploy import DeployWorkflow, deploy_workflow_id
from workflows.failover import WATCH_ID, FleetWatchWorkflow
from workflows.rollout import RolloutWorkflow, rollout_workflow_id
from workflows.types import AutoscaleInput, DeployInput, RolloutInput, WatchInput


@dataclass(frozen=True, slots=True)
class Labels:
    """Shown in the Temporal UI (memo) so runs can be found by team, deployment and version."""

    team: str
    deployment: str
    version: str

    def memo(self) -> dict[str, str]:
        return {"team": self.team, "deployment": self.deployment, "version": self.version}


async def start_deploy(client: Client, task_queue: str, inp: DeployInput, labels: Labels) -> WorkflowHandle:
    """Start `deploy-{name}`, or reuse the run already in flight (then ask it to plan again when done)."""
    handle = await client.start_workflow(
        DeployWorkflow.run, inp, id=deploy_workflow_id(inp.deployment), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE, memo=labels.memo(),
    )
    return handle


async def request_redeploy(client: Client, task_queue: str, inp: DeployInput, labels: Labels) -> WorkflowHandle:
    """A spec changed: start a deploy, or signal the running one to plan again after its current pass."""
    handle = await client.start_workflow(
        DeployWorkflow.run, inp, id=deploy_workflow_id(inp.deployment), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE, memo=labels.memo(),
        start_signal="redeploy",
    )
    return handle


async def start_rollout(client: Client, task_queue: str, inp: RolloutInput, labels: Labels) -> WorkflowHandle:
    """Start `rollout-{name}-{version}`; a repeated request while it runs returns the same run."""
    return await client.start_workflow(
        RolloutWorkflow.run, inp, id=rollout_workflow_id(inp.deployment, inp.to_version), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE, memo=labels.memo(),
    )


class TemporalLink:
    """The API's handle on Temporal: connects on first use (so the API starts even while Temporal is still
    coming up) and keeps one client. One instance per app, created by the app factory."""

    def __init__(self, address: str, namespace: str, task_queue: str, ui_url: str | None = None) -> None:
        self.address, self.namespace, self.task_queue, self.ui_url = address, namespace, task_queue, ui_url
        self._client: Client | None = None

    async def client(self) -> Client:
        if self._client is None:
            # The tracing interceptor records StartWorkflow under the API request's span (no-op untraced).
            self._client = await Client.connect(self.address, namespace=self.namespace,
                                                interceptors=[TracingInterceptor()])
        return self._client

    def ui_link(self, workflow_id: str, run_id: str | None) -> str | None:
        if not self.ui_url:
            return None
        tail = f"/{run_id}" if run_id else ""
        return f"{self.ui_url.rstrip('/')}/namespaces/{self.namespace}/workflows/{workflow_id}{tail}"

    async def running_for(self, deployment: str) -> list[dict[str, str | None]]:
        """Running workflows of a deployment: deploy, autoscale, and its rollouts."""
        client = await self.client()
        query = (f'ExecutionStatus = "Running" AND (WorkflowId = "deploy-{deployment}" OR '
                 f'WorkflowId = "autoscale-{deployment}" OR WorkflowId STARTS_WITH "rollout-{deployment}-")')
        out: list[dict[str, str | None]] = []
        async for execution in client.list_workflows(query):
            out.append({"workflow_id": execution.id, "run_id": execution.run_id,
                        "type": execution.workflow_type, "status": execution.status.name.lower()
                        if execution.status is not None else None,
                        "url": self.ui_link(execution.id, execution.run_id)})
        return sorted(out, key=lambda w: w["workflow_id"] or "")


async def signal_autoscale(client: Client, task_queue: str, inp: AutoscaleInput, labels: Labels,
                           signal: str) -> WorkflowHandle:
    """Pause or resume `autoscale-{name}`, starting it first when it is not running (signal-with-start)."""
    return await client.start_workflow(
        AutoscaleWorkflow.run, inp, id=autoscale_workflow_id(inp.deployment), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE, memo=labels.memo(), start_signal=signal,
    )


async def start_fleet_watch(client: Client, task_queue: str, inp: WatchInput) -> WorkflowHandle:
    """The failover detector (`fleet-watch`); one per namespace, reused when already running."""
    return await client.start_workflow(
        FleetWatchWorkflow.run, inp, id=WATCH_ID, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
