"""The fleet overview: cost now (API) and over time (Prometheus), SLO attainment, replicas by region, GPU
type and market."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from dashboard import queries
from dashboard.api import ApiError, ControlPlane
from dashboard.data.slo import RequestAttainment, fleet_goodput, goodput_of, request_attainment
from dashboard.prometheus import Prometheus, PrometheusError, matrix_frame

BREAKDOWNS = ("region", "accelerator", "market", "team")
ATTAINMENT_WINDOW = "1h"
HISTORY_SPANS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(days=1),
                 "7d": timedelta(days=7)}
HISTORY_POINTS = 180


@dataclass(slots=True)
class FleetOverview:
    as_of: str
    total_usd_per_hour: float
    replicas: int
    gpus: int
    breakdowns: dict[str, pd.DataFrame]  # group → key, usd_per_hour, replicas, gpus
    deployments: pd.DataFrame  # one row per deployment
    goodput_share: float | None  # API: tokens within SLO / tokens
    attainment: RequestAttainment | None = None  # Prometheus: requests within SLO / requests
    cost_history: pd.DataFrame | None = None  # Prometheus: $/h over time, total and by deployment
    problems: list[str] = field(default_factory=list)


def cost_frame(costs: dict[str, Any]) -> pd.DataFrame:
    rows = [{"key": i["key"], "usd_per_hour": float(i["usd_per_hour"]), "replicas": int(i["replicas"]),
             "gpus": int(i["gpus"])} for i in costs.get("items", [])]
    return pd.DataFrame(rows, columns=["key", "usd_per_hour", "replicas", "gpus"])


def load_fleet(api: ControlPlane, prom: Prometheus | None, now: datetime,
               history: timedelta = HISTORY_SPANS["1h"]) -> FleetOverview:
    by_deployment = api.costs("deployment")
    breakdowns = {"deployment": cost_frame(by_deployment)}
    for group in BREAKDOWNS:
        breakdowns[group] = cost_frame(api.costs(group))
    cost_of = {i["key"]: i for i in by_deployment.get("items", [])}
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    goodputs = []
    for d in api.deployments():
        name = d["name"]
        try:
            cost = api.deployment_cost(name)
        except ApiError as error:
            problems.append(f"cost of {name}: {error}")
            cost = {}
        goodput = goodput_of(cost)
        goodputs.append(goodput)
        by_status: dict[str, int] = d["observed"]["replicas_by_status"]
        rows.append({
            "deployment": name, "team": d["team"], "version": d["version"], "phase": d["phase"],
            "ready": by_status.get("ready", 0), "replicas": sum(by_status.values()),
            "usd_per_hour": float(cost_of.get(name, {}).get("usd_per_hour", cost.get("usd_per_hour", 0.0))),
            "budget_usd_per_hour": d["constraints"].get("budget_per_hour"),
            "usd_per_million_tokens": cost.get("usd_per_million_tokens"),
            "goodput_share": goodput.share if goodput else None,
            "slo_attainment": None,
        })
    deployments = pd.DataFrame(rows, columns=[
        "deployment", "team", "version", "phase", "ready", "replicas", "usd_per_hour", "budget_usd_per_hour",
        "usd_per_million_tokens", "goodput_share", "slo_attainment"])
    overview = FleetOverview(
        as_of=by_deployment.get("as_of", ""), total_usd_per_hour=float(by_deployment["total_usd_per_hour"]),
        replicas=int(breakdowns["deployment"]["replicas"].sum()), gpus=int(breakdowns["deployment"]["gpus"].sum()),
        breakdowns=breakdowns, deployments=deployments, goodput_share=fleet_goodput(goodputs), problems=problems,
    )
    if prom is not None:
        _add_prometheus(overview, prom, now, history)
    return overview


def _add_prometheus(overview: FleetOverview, prom: Prometheus, now: datetime, span: timedelta) -> None:
    try:
        overview.attainment = request_attainment(prom, ATTAINMENT_WINDOW)
        step = span.total_seconds() / HISTORY_POINTS
        total = matrix_frame(prom.range(queries.FLEET_COST, now, span, step), None, name="fleet")
        split = matrix_frame(prom.range(queries.cost_by("deployment"), now, span, step), "deployment")
        overview.cost_history = total.join(split, how="outer") if not split.empty else total
    except PrometheusError as error:
        overview.problems.append(str(error))
        return
    overview.deployments["slo_attainment"] = [overview.attainment.of(n) for n in overview.deployments["deployment"]]
