"""Rollouts of a deployment: each step's verdict, and the running workflows with links into the Temporal UI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pandas as pd

from dashboard.api import ControlPlane

ARM_FIELDS = ("requests", "errors", "ttft_p95_ms", "tpot_p95_ms")  # the canary analysis' ArmMetrics


@dataclass(slots=True)
class RolloutView:
    deployment: str
    rollouts: list[dict[str, Any]]  # as the API returns them, newest first
    steps: dict[str, pd.DataFrame]  # to_version → one row per analysed step
    workflows: pd.DataFrame  # workflow_id, type, status, url
    temporal: bool  # False: the API runs without Temporal
    problems: list[str] = field(default_factory=list)


def temporal_link(ui_url: str | None, namespace: str, workflow_id: str | None, run_id: str | None = None) -> str | None:
    """A Temporal UI link built here, for when the API did not give one (its UI URL unset)."""
    if not ui_url or not workflow_id:
        return None
    tail = f"/{quote(run_id, safe='')}" if run_id else ""
    return f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}{tail}"


def steps_frame(rollout: dict[str, Any]) -> pd.DataFrame:
    """One row per planned step: its traffic percent, and the verdict when it has been analysed."""
    verdicts = {int(v.get("step", -1)): v for v in rollout.get("verdicts", [])}
    rows = []
    for i, percent in enumerate(rollout.get("steps", [])):
        v = verdicts.get(i, {})
        canary, baseline = v.get("canary") or {}, v.get("baseline") or {}
        if v:
            state = "analysed"
        elif i == rollout.get("current_step") and rollout.get("state") in ("running", "paused"):
            state = rollout["state"]
        else:
            state = "done" if i < rollout.get("current_step", 0) else "pending"
        rows.append({"step": i, "percent": percent, "state": state, "verdict": v.get("verdict"),
                     "approved": v.get("approved"), "reasons": "; ".join(map(str, v.get("reasons", []))),
                     **{f"{arm}_{k}": m.get(k) for k in ARM_FIELDS for arm, m in (("canary", canary), ("baseline", baseline))}})
    return pd.DataFrame(rows, columns=["step", "percent", "state", "verdict", "approved", "reasons",
                                       *(f"{arm}_{k}" for k in ARM_FIELDS for arm in ("canary", "baseline"))])


def load_rollouts(api: ControlPlane, name: str, temporal_ui_url: str | None, namespace: str = "default") -> RolloutView:
    rollouts = api.rollouts(name)
    running = api.workflows(name)
    rows = [{"workflow_id": w["workflow_id"], "type": w.get("type"), "status": w.get("status"),
             "url": w.get("url") or temporal_link(temporal_ui_url, namespace, w["workflow_id"], w.get("run_id"))}
            for w in running.get("workflows", [])]
    for r in rollouts:  # finished rollouts are not running, but their history is still in the UI
        r.setdefault("url", temporal_link(temporal_ui_url, namespace, r.get("workflow_id")))
    return RolloutView(
        deployment=name, rollouts=rollouts, steps={r["to_version"]: steps_frame(r) for r in rollouts},
        workflows=pd.DataFrame(rows, columns=["workflow_id", "type", "status", "url"]),
        temporal=bool(running.get("temporal")),
    )
