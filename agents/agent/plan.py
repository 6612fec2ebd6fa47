"""The reconcile decision: a pure function of the desired state, the local records and the time.

Level-triggered: it looks only at where things are now, never at what changed, so running it twice, or on
a repeated snapshot, asks for nothing new. The agent applies the actions (agents.agent.reconciler).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from agents.agent.desired import DesiredReplica
from agents.agent.local import LocalPhase, LocalReplica


class ActionKind(enum.StrEnum):
    START = "start"  # launch (first time, after a crash's backoff, or wanted again)
    DRAIN = "drain"  # stop gracefully: no longer wanted
    ABANDON = "abandon"  # stop at once and mark failed: it never became ready in time
    SETTLE = "settle"  # nothing runs; record it as terminated (stopped while waiting, or never started)
    FORGET = "forget"  # the control plane no longer lists it and nothing runs: drop the record


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    name: str
    reason: str = ""


_RUNNING = (LocalPhase.STARTING, LocalPhase.READY)


def plan(
    desired: Mapping[str, DesiredReplica],
    local: Mapping[str, LocalReplica],
    now: float,
    ready_timeout_s: float,
) -> list[Action]:
    actions: list[Action] = []
    for name, want in sorted(desired.items()):
        have = local.get(name)
        phase = have.phase if have is not None else None
        if want.running:
            if have is None or phase is LocalPhase.TERMINATED:
                actions.append(Action(ActionKind.START, name))
            elif phase is LocalPhase.BACKOFF and have.retry_at is not None and now >= have.retry_at:
                actions.append(Action(ActionKind.START, name, "restart after crash"))
            elif (phase is LocalPhase.STARTING and have.launched_at is not None
                  and now - have.launched_at > ready_timeout_s):
                actions.append(Action(ActionKind.ABANDON, name, f"not ready within {ready_timeout_s:g} s"))
        elif phase in _RUNNING:
            actions.append(Action(ActionKind.DRAIN, name, "desired stopped"))
        elif have is None or phase is LocalPhase.BACKOFF:
            actions.append(Action(ActionKind.SETTLE, name, "desired stopped"))
    for name, have in sorted(local.items()):
        if name in desired:
            continue
        if have.phase in _RUNNING:
            actions.append(Action(ActionKind.DRAIN, name, "no longer desired"))
        elif have.phase is not LocalPhase.DRAINING:
            actions.append(Action(ActionKind.FORGET, name))
    return actions
