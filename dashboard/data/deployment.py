"""One deployment: its cost and $ per 1M tokens, SLO and latency trends, traffic by region, A/B arms side by
side, and the current plan and why."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from dashboard import queries
from dashboard.api import ApiError, ControlPlane
from dashboard.data.slo import Goodput, goodput_of
from dashboard.prometheus import Prometheus, PrometheusError, matrix_frame

TREND_SPAN = timedelta(hours=1)
TREND_POINTS = 120
RATE_WINDOW = "5m"


@dataclass(slots=True)
class PlanView:
    status: str | None
    cost_per_hour: float | None
    lower_bound_per_hour: float | None
    reasons: list[str]


@dataclass(slots=True)
class DeploymentView:
    name: str
    summary: dict[str, Any]  # team, model, version, phase, environment, SLO, budget
    cost: dict[str, Any]  # GET /v1/deployments/{name}/cost
    goodput: Goodput | None
    by_region: pd.DataFrame  # region, usd_per_hour, replicas
    placement: pd.DataFrame  # cluster, pool, variant, tensor_parallel, count
    replicas: pd.DataFrame  # one row per replica with its latest telemetry
    demand: pd.DataFrame  # declared demand by client region
    plan: PlanView | None
    history: pd.DataFrame  # recent audit events: what changed the placement and why
    shares: pd.DataFrame | None  # client_region x cluster routing shares; None when the key may not read them
    version_weights: dict[str, float] = field(default_factory=dict)
    experiment: dict[str, Any] | None = None
    latency: pd.DataFrame | None = None  # Prometheus: p95 TTFT/TPOT (ms) and the SLO lines over time
    traffic: pd.DataFrame | None = None  # Prometheus: req/s by client region over time
    arms: pd.DataFrame | None = None  # Prometheus: one row per (version, arm)
    problems: list[str] = field(default_factory=list)


def replicas_frame(deployment: dict[str, Any]) -> pd.DataFrame:
    slo = deployment["slo"]
    rows = []
    for r in deployment["observed"]["replicas"]:
        t = r.get("telemetry") or {}
        ttft, tpot = t.get("ttft_p95_ms"), t.get("tpot_p95_ms")
        within = None if ttft is None or tpot is None else (ttft <= slo["ttft_p95_ms"] and tpot <= slo["tpot_p95_ms"])
        rows.append({"replica": r["name"], "cluster": r["cluster"], "pool": r["pool"], "variant": r["variant"],
                     "status": r["status"], "req_per_s": t.get("request_rate"), "ttft_p95_ms": ttft,
                     "tpot_p95_ms": tpot, "within_slo": within, "restarts": r["restarts"]})
    return pd.DataFrame(rows, columns=["replica", "cluster", "pool", "variant", "status", "req_per_s",
                                       "ttft_p95_ms", "tpot_p95_ms", "within_slo", "restarts"])


def shares_frame(route: dict[str, Any]) -> pd.DataFrame:
    """Routing shares as rows (client_region, cluster, share)."""
    rows = [{"client_region": region, "cluster": cluster, "share": share}
            for region, split in sorted(route.get("shares", {}).items()) for cluster, share in sorted(split.items())]
    return pd.DataFrame(rows, columns=["client_region", "cluster", "share"])


def plan_view(plan: dict[str, Any]) -> PlanView:
    # The registry keeps the plan's idempotency tag ("key:...") first among its reasons; it explains nothing.
    reasons = [str(r) for r in plan.get("reasons", []) if not str(r).startswith("key:")]
    return PlanView(status=plan.get("status"), cost_per_hour=plan.get("cost_per_hour"),
                    lower_bound_per_hour=plan.get("lower_bound_per_hour"), reasons=reasons)


def load_deployment(api: ControlPlane, prom: Prometheus | None, name: str, now: datetime) -> DeploymentView:
    d = api.deployment(name)
    cost = api.deployment_cost(name)
    placement = api.placement(name)
    plan = api.plan(name)
    summary = {"team": d["team"], "model": d["model"], "version": d["version"], "phase": d["phase"],
               "environment": d["environment"], "ttft_p95_ms": d["slo"]["ttft_p95_ms"],
               "tpot_p95_ms": d["slo"]["tpot_p95_ms"], "budget_usd_per_hour": d["constraints"].get("budget_per_hour"),
               "replicas_by_status": d["observed"]["replicas_by_status"]}
    view = DeploymentView(
        name=name, summary=summary, cost=cost, goodput=goodput_of(cost),
        by_region=pd.DataFrame(cost.get("by_region", []), columns=["region", "usd_per_hour", "replicas"]),
        placement=pd.DataFrame(placement["replicas"], columns=["cluster", "pool", "variant", "tensor_parallel", "count"]),
        replicas=replicas_frame(d),
        demand=pd.DataFrame(d["demand"], columns=["client_region", "rps", "prompt_tokens", "output_tokens"]),
        plan=plan_view(plan) if plan is not None else None,
        history=pd.DataFrame([{"at": e["at"], "actor": e["actor"], "action": e["action"],
                               "details": _short(e["details"])} for e in api.audit("deployment", name)],
                             columns=["at", "actor", "action", "details"]),
        shares=None,
    )
    try:
        table = api.routing()
    except ApiError as error:
        view.problems.append(f"routing table: {error}")
        table = None
    route = next((r for r in (table or {}).get("deployments", []) if r["name"] == name), None)
    if table is not None:
        view.shares = shares_frame(route or {})
        view.version_weights = dict((route or {}).get("version_weights", {}))
        view.experiment = (route or {}).get("experiment")
    if prom is not None:
        try:
            _add_prometheus(view, prom, now)
        except PrometheusError as error:
            view.problems.append(str(error))
    return view


def _short(details: dict[str, Any], limit: int = 160) -> str:
    text = ", ".join(f"{k}={v}" for k, v in details.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _add_prometheus(view: DeploymentView, prom: Prometheus, now: datetime) -> None:
    step = TREND_SPAN.total_seconds() / TREND_POINTS
    w, name = RATE_WINDOW, view.name
    frames = [
        matrix_frame(prom.range(queries.p95("ttft", name, w), now, TREND_SPAN, step), None, name="p95 TTFT (ms)",
                     scale=1000),
        matrix_frame(prom.range(queries.p95("tpot", name, w), now, TREND_SPAN, step), None, name="p95 TPOT (ms)",
                     scale=1000),
    ]
    latency = pd.concat(frames, axis=1) if any(not f.empty for f in frames) else pd.DataFrame()
    if not latency.empty:
        # The SLO as flat lines on the same axis (from the spec: a line exists even before Prometheus scrapes it).
        latency["SLO TTFT (ms)"] = float(view.summary["ttft_p95_ms"])
        latency["SLO TPOT (ms)"] = float(view.summary["tpot_p95_ms"])
    view.latency = latency
    view.traffic = matrix_frame(prom.range(queries.requests_by(name, "client_region", w), now, TREND_SPAN, step),
                                "client_region")
    view.arms = arms_frame(
        requests=prom.instant(queries.requests_by(name, "version, arm", w)),
        error_ratio=prom.instant(queries.error_ratio_by(name, "version, arm", w)),
        ttft=prom.instant(queries.p95_by("ttft", name, "version, arm", w)),
        tpot=prom.instant(queries.p95_by("tpot", name, "version, arm", w)),
        tokens=prom.instant(queries.tokens_by(name, "version, arm", w)),
    )


def _by_arm(result: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for series in result:
        value = float(series["value"][1])
        if not math.isnan(value):
            out[(series["metric"].get("version", ""), series["metric"].get("arm", ""))] = value
    return out


def arms_frame(*, requests: list[dict[str, Any]], error_ratio: list[dict[str, Any]], ttft: list[dict[str, Any]],
               tpot: list[dict[str, Any]], tokens: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (version, arm) the gateways labelled, side by side."""
    req, err, p_ttft, p_tpot, tok = (_by_arm(x) for x in (requests, error_ratio, ttft, tpot, tokens))
    # No 5xx series for an arm with traffic: none failed.
    rows = [{"version": v, "arm": a, "req_per_s": rps, "error_ratio": err.get((v, a), 0.0 if rps > 0 else None),
             "ttft_p95_ms": p_ttft[(v, a)] * 1000 if (v, a) in p_ttft else None,
             "tpot_p95_ms": p_tpot[(v, a)] * 1000 if (v, a) in p_tpot else None,
             "tokens_per_s": tok.get((v, a))}
            for (v, a), rps in sorted(req.items())]
    return pd.DataFrame(rows, columns=["version", "arm", "req_per_s", "error_ratio", "ttft_p95_ms", "tpot_p95_ms",
                                       "tokens_per_s"])

