"""Replay every recorded workflow history against today's workflow code: a change that is not
deterministic (a new activity call, a reordered step without a patch) fails here, before it reaches a
running fleet. Record again with LLMFLEET_RECORD_HISTORIES=1 and the workflow integration tests."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.workflow import NondeterminismError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from workflows.types import DeployInput, PlanRequest
from workflows.worker import WORKFLOWS

HISTORIES = Path(__file__).resolve().parents[2] / "fixtures" / "workflow_histories"
FILES = sorted(HISTORIES.glob("*.json"))


def test_histories_are_recorded() -> None:
    assert {"deploy", "deploy_restored", "rollout_promoted", "rollout_rolled_back", "rollout_aborted",
            "rollout_blue_green", "autoscale", "autoscale_before_replan", "failover", "fleet_watch_preemption"} <= {f.stem for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS)
    asyncio.run(replayer.replay_workflow(history))


@workflow.defn(name="DeployWorkflow")
class ReorderedDeploy:
    """DeployWorkflow with its first two steps swapped: the kind of edit replay must catch."""

    @workflow.run
    async def run(self, inp: DeployInput) -> None:
        await workflow.execute_activity("plan_deployment", PlanRequest(inp.deployment, key="x"),
                                        start_to_close_timeout=timedelta(seconds=10))


def test_a_non_deterministic_change_fails_replay() -> None:
    path = HISTORIES / "deploy.json"
    history = WorkflowHistory.from_json("deploy", path.read_text())
    result = asyncio.run(Replayer(workflows=[ReorderedDeploy], workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(history, raise_on_replay_failure=False))
    assert isinstance(result.replay_failure, NondeterminismError)
