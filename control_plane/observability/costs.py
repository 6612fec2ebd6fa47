"""Cost accounting over the registry: registry rows in, the pure `scheduler.cost_accounting` results out.

The one place that decides which telemetry is fresh enough to count, so the API and the Prometheus series
give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from registry import costs as registry
from scheduler.cost_accounting import BilledReplica, DeploymentTerms

# A telemetry window older than this is not trusted: the agent stopped reporting the replica's traffic.
TELEMETRY_MAX_AGE = timedelta(seconds=120)


def to_billed(row: registry.BilledReplicaRow, now: datetime) -> BilledReplica:
    fresh = row.telemetry_received_at is not None and now - row.telemetry_received_at <= TELEMETRY_MAX_AGE
    return BilledReplica(
        name=row.name, deployment=row.deployment, team=row.team, region=row.region, accelerator=row.accelerator,
        market=row.market, gpus=row.tensor_parallel, gpus_per_instance=row.gpus_per_instance,
        instance_price_per_hour=row.instance_price_per_hour,
        tokens_per_second=row.tokens_per_second if fresh else 0.0,
        ttft_p95_ms=row.ttft_p95_ms if fresh else None,
        tpot_p95_ms=row.tpot_p95_ms if fresh else None,
    )


def to_terms(row: registry.DeploymentTermsRow) -> DeploymentTerms:
    return DeploymentTerms(ttft_p95_ms=row.ttft_p95_ms, tpot_p95_ms=row.tpot_p95_ms,
                           budget_usd_per_hour=row.budget_usd_per_hour)


@dataclass(frozen=True, slots=True)
class CostInputs:
    replicas: list[BilledReplica]
    terms: dict[str, DeploymentTerms]
    deployments: list[registry.DeploymentTermsRow]


def load_inputs(session: Session, *, team: str | None, now: datetime) -> CostInputs:
    """Billed replicas and deployment terms, for one team or (None) the whole fleet."""
    deployments = registry.deployment_terms(session, team)
    return CostInputs(
        replicas=[to_billed(r, now) for r in registry.billed_replicas(session, team)],
        terms={d.name: to_terms(d) for d in deployments},
        deployments=deployments,
    )
