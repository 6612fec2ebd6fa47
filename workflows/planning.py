"""Registry rows → the optimizer's Snapshot, and its Plan → placement items and routing shares.

Runs inside an activity (it reads the database); the decisions themselves stay in `scheduler.placement`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clusters import Cluster, ClusterHealth
from registry.deployments import Deployment
from registry.replicas import DesiredState, ReplicaStatus, live_replicas_of
from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement import (
    Constraints,
    DemandSlice,
    PlacedReplicas,
    Plan,
    Pool,
    Region,
    Snapshot,
)
from scheduler.placement import Deployment as PlanDeployment
from scheduler.spot_hints import SpotHintPolicy, with_spot_availability
from workflows.regions import FAR_RTT_MS, NEAR_RTT_MS, REGION_COORDS
from workflows.spot_facts import zone_hints

UNLIMITED_QUOTA = 64  # a pool with no quota recorded: large enough never to bind for one deployment
UNPLACEABLE = (ClusterHealth.UNHEALTHY, ClusterHealth.CORDONED)
STARTING_OR_READY = (ReplicaStatus.PENDING, ReplicaStatus.PROVISIONING, ReplicaStatus.STARTING, ReplicaStatus.READY)


def pool_id(cluster: str, pool: str) -> str:
    return f"{cluster}/{pool}"


def split_pool_id(pid: str) -> tuple[str, str]:
    cluster, _, pool = pid.partition("/")
    return cluster, pool


def _regions(names: Iterable[str], clouds: dict[str, str]) -> tuple[tuple[Region, ...], dict[tuple[str, str], float]]:
    names = sorted(set(names))
    regions = tuple(Region(n, clouds.get(n, "unknown"), *REGION_COORDS.get(n, (0.0, 0.0))) for n in names)
    if all(n in REGION_COORDS for n in names):
        return regions, {}
    # Without coordinates a great-circle RTT would be fiction: say near/far explicitly instead.
    return regions, {(a, b): NEAR_RTT_MS if a == b else FAR_RTT_MS for a in names for b in names}


def build_snapshot(session: Session, deployment: Deployment, exclude_clusters: Iterable[str] = (),
                   now: datetime | None = None, spot_policy: SpotHintPolicy | None = None,
                   count_starting: bool = False) -> Snapshot:
    """The fleet as the optimizer sees it for one deployment: placeable pools, the deployment's demand and
    rules, and its healthy replicas now (so re-planning pays for churn). `count_starting` also counts the
    replicas on their way up as placed (the autoscaler re-plans while its last scale-up is still starting;
    without them it would move what it just asked for). With `now`, spot pools in zones
    that recently lost replicas to preemption (or found no capacity) get their `spot_availability` from
    `scheduler.spot_hints`, which caps how much of the deployment they may carry."""
    excluded = set(exclude_clusters)
    clusters = [c for c in session.scalars(select(Cluster).order_by(Cluster.name))
                if c.health not in UNPLACEABLE and c.name not in excluded]
    pools = tuple(
        Pool(id=pool_id(c.name, p.name), cloud=c.cloud, region=c.region, instance_type=p.instance_type,
             accelerator=p.accelerator, gpus=p.gpus_per_instance, market=p.market.value,
             price_per_hour=p.price_per_hour,
             max_instances=p.max_instances if p.max_instances is not None else UNLIMITED_QUOTA, zone=p.zone)
        for c in clusters for p in c.pools
    )
    version = deployment.model_version
    arch = ModelArch(name=deployment.model.name, params_b=version.params_b, layers=version.layers,
                     hidden=version.hidden, kv_heads=version.kv_heads, head_dim=version.head_dim,
                     context=version.context)
    allowed = set(deployment.variants) or {v.name for v in version.variants}
    variants = tuple(Variant(v.name, v.bytes_per_param, v.quality_delta, v.kv_bytes_per_elem)
                     for v in version.variants if v.name in allowed)
    demand_rps: dict[tuple[str, RequestShape], float] = defaultdict(float)
    for d in deployment.demand:
        demand_rps[(d["client_region"], RequestShape(int(d["prompt_tokens"]), int(d["output_tokens"])))] += float(d["rps"])
    demand = tuple(DemandSlice(region, shape, rps) for (region, shape), rps in demand_rps.items())
    constraints = Constraints(
        min_replicas=deployment.min_replicas, spread=deployment.spread, max_spot_share=deployment.max_spot_share,
        max_spot_pool_share=deployment.max_spot_pool_share, max_quality_drop=deployment.max_quality_drop,
        allowed_regions=frozenset(deployment.allowed_regions) or None,
        allowed_clouds=frozenset(deployment.allowed_clouds) or None,
    )
    plan_dep = PlanDeployment(name=deployment.name, arch=arch, variants=variants,
                              slo=Slo(deployment.ttft_p95_ms, deployment.tpot_p95_ms), demand=demand,
                              constraints=constraints)
    all_clusters = list(session.scalars(select(Cluster)))
    clouds = {c.region: c.cloud for c in all_clusters}
    region_names = {c.region for c in all_clusters} | {s.client_region for s in demand}
    regions, rtt = _regions(region_names, clouds)
    known_pools = {p.id for p in pools}
    placed_statuses = STARTING_OR_READY if count_starting else (ReplicaStatus.READY,)
    current: dict[tuple[str, str, int], int] = defaultdict(int)
    for r in live_replicas_of(session, deployment.id):
        pid = pool_id(r.cluster.name, r.pool.name)
        if (r.status in placed_statuses and r.desired_state is DesiredState.RUNNING
                and r.version_id == deployment.version_id and pid in known_pools and r.variant in allowed):
            current[(pid, r.variant, r.tensor_parallel)] += 1
    placed = tuple(PlacedReplicas(deployment.name, v, pid, tp, n) for (pid, v, tp), n in sorted(current.items()))
    snapshot = Snapshot(regions=regions, pools=pools, deployments=(plan_dep,), rtt_overrides_ms=rtt, current=placed)
    if now is None:
        return snapshot
    policy = spot_policy or SpotHintPolicy()
    return with_spot_availability(snapshot, zone_hints(session, now, policy.max_age_s), now.timestamp(), policy)


def plan_to_items(plan: Plan, deployment: str) -> list[tuple[str, str, str, int, int]]:
    """(cluster, pool, variant, tp, count) per replica decision with count > 0, in a stable order."""
    out: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for r in plan.replicas:
        if r.deployment == deployment and r.count > 0:
            cluster, pool = split_pool_id(r.pool)
            out[(cluster, pool, r.variant, r.tp)] += r.count
    return [(c, p, v, tp, n) for (c, p, v, tp), n in sorted(out.items())]


def plan_to_shares(plan: Plan, deployment: str) -> list[tuple[str, str, float]]:
    """(client region, cluster, share) with shares per client region summing to 1 (pools of one cluster merged)."""
    by_region: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in plan.routing:
        if s.deployment == deployment and s.share > 0:
            by_region[s.client_region][split_pool_id(s.pool)[0]] += s.share
    out: list[tuple[str, str, float]] = []
    for region in sorted(by_region):
        total = sum(by_region[region].values())
        for cluster in sorted(by_region[region]):
            out.append((region, cluster, by_region[region][cluster] / total))
    return out
