"""SkyServe's policy, rendered fairly: one instance type per deployment, replicas = instances.

What SkyServe does (sky/serve): a service runs N identical replicas of one resource spec, each replica
a whole instance (vLLM with tensor parallelism over all its GPUs), N set by a target QPS per replica;
spot replicas may be mixed with on-demand ones. We are generous to it: the instance type is the
cheapest per hour that fits the model *and* meets the SLO; each client region is served from the
cheapest region whose RTT still meets the SLO (SkyServe itself does not pick regions per client); the
replica count uses the same performance model and headroom as llmfleet; spot takes floor(cap x N) of
each region's replicas. It always serves the deployment's full-quality variant.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from scheduler.placement.baselines.common import (
    BaselineResult,
    Placed,
    Quotas,
    add_spares,
    ceil_div,
    full_quality,
    infeasible,
)
from scheduler.placement.candidates import Candidate, CandidateTable
from scheduler.placement.eligibility import pool_allowed
from scheduler.placement.rtt import RttMatrix
from scheduler.placement.snapshot import Deployment, Pool, Snapshot

NAME = "skyserve"


@dataclass(frozen=True)
class _Type:
    cloud: str
    instance_type: str
    gpus: int


def skyserve(snapshot: Snapshot, table: CandidateTable) -> BaselineResult:
    rtt = RttMatrix.build(snapshot.regions, snapshot.rtt_overrides_ms)
    quotas = Quotas(snapshot.pools)
    options = full_quality(table, snapshot)
    total = 0.0
    placed: list[Placed] = []
    per_dep: dict[str, float] = {}
    for d in sorted(snapshot.deployments, key=lambda d: -d.total_rps):
        result = _deployment(snapshot, rtt, d, options.get(d.name, []), quotas)
        if isinstance(result, str):
            return infeasible(NAME, f"{d.name}: {result}")
        cost, mine = result
        total += cost
        per_dep[d.name] = cost
        placed += mine
    return BaselineResult(
        NAME,
        total,
        "one instance type per deployment, cheapest region per client region",
        tuple(placed),
        per_dep,
    )


def _deployment(
    snapshot: Snapshot, rtt: RttMatrix, d: Deployment, opts: list[Candidate], quotas: Quotas
) -> tuple[float, list[Placed]] | str:
    # A replica is a whole instance: tensor parallelism over all of its GPUs.
    whole = [
        k
        for k in opts
        if k.tp == snapshot.pool_by_id[k.pool].gpus and pool_allowed(d, snapshot.pool_by_id[k.pool])
    ]
    by_type: dict[_Type, list[Candidate]] = defaultdict(list)
    for k in whole:
        p = snapshot.pool_by_id[k.pool]
        by_type[_Type(p.cloud, p.instance_type, p.gpus)].append(k)
    if not by_type:
        return "no instance type fits the full-quality variant within the allowed regions/clouds"

    def hourly(t: _Type) -> float:
        pools = [snapshot.pool_by_id[k.pool] for k in by_type[t]]
        od = [p.price_per_hour for p in pools if not p.is_spot]
        return min(od) if od else min(p.price_per_hour for p in pools)

    failures: list[str] = []
    for t in sorted(by_type, key=lambda t: (hourly(t), t.instance_type)):
        result = _with_type(snapshot, rtt, d, by_type[t], quotas)
        if isinstance(result, str):
            failures.append(f"{t.instance_type}: {result}")
            continue
        return result
    return (
        "no instance type can serve every client region within the SLO and quotas ("
        + "; ".join(failures[:3])
        + ")"
    )


def _with_type(
    snapshot: Snapshot, rtt: RttMatrix, d: Deployment, opts: list[Candidate], quotas: Quotas
) -> tuple[float, list[Placed]] | str:
    pools = {k.pool: k for k in opts}
    regions: dict[str, list[Pool]] = defaultdict(list)
    for pid in pools:
        p = snapshot.pool_by_id[pid]
        regions[p.region].append(p)
    h = snapshot.headroom_of(d)
    sigma = d.constraints.max_spot_share
    trial = Quotas([])
    trial.left = dict(quotas.left)

    def od_price(region: str) -> float:
        prices = [p.price_per_hour for p in regions[region] if not p.is_spot]
        return min(prices) if prices else float("inf")

    # Per client region: regions whose RTT keeps every bucket within the SLO, cheapest first. Client
    # regions whose first choice is the same region share its replicas.
    choices: dict[str, list[tuple[float, float, str]]] = {}
    for client in d.client_regions:
        slices = [s for s in d.demand if s.client_region == client and s.rps > 0]
        if not slices:
            continue
        ranked: list[tuple[float, float, str]] = []
        for region in regions:
            ms = rtt.get(client, region)
            k = pools[regions[region][0].id]
            if all(k.best_point(s.shape, d.slo.ttft_p95_ms - ms) for s in slices) and od_price(
                region
            ) < float("inf"):
                ranked.append((od_price(region), ms, region))
        if not ranked:
            return f"no region meets the SLO for clients in {client}"
        choices[client] = sorted(ranked)
    groups: dict[str, list[str]] = defaultdict(list)
    for client, ranked in choices.items():
        groups[ranked[0][2]].append(client)
    placed: list[Placed] = []
    cost = 0.0
    for first, clients in groups.items():
        slices = [s for s in d.demand if s.client_region in clients and s.rps > 0]
        # Regions every client of the group can use, cheapest first: SkyPilot fails over to the next
        # region when one has no capacity left (here: quota).
        usable = [
            r for _, _, r in choices[clients[0]] if all(r in {x for _, _, x in choices[c]} for c in clients)
        ]
        left = 1.0  # fraction of the group's traffic still to place
        for region in usable:
            if left <= 1e-12:
                break
            k = pools[regions[region][0].id]
            load = sum(
                s.rps / k.best_point(s.shape, d.slo.ttft_p95_ms - rtt.get(s.client_region, region)).rps  # type: ignore[union-attr]
                for s in slices
            )
            n = ceil_div(left * load, h)
            spot_pools = sorted((p for p in regions[region] if p.is_spot), key=lambda p: p.price_per_hour)
            od_pools = sorted((p for p in regions[region] if not p.is_spot), key=lambda p: p.price_per_hour)
            got = 0
            spot_got = 0
            # Spot first, up to its cap of what this region hosts; the rest on-demand.
            for p in spot_pools:
                take = min(int(sigma * n + 1e-9) - spot_got, trial.left.get(p.id, 0))
                if take > 0:
                    trial.take(p.id, take)
                    placed.append((d.name, pools[p.id].variant, p.id, pools[p.id].tp, take))
                    cost += take * p.price_per_hour
                    spot_got += take
            got = spot_got
            for p in od_pools:
                take = min(n - got, trial.left.get(p.id, 0))
                if take > 0:
                    trial.take(p.id, take)
                    placed.append((d.name, pools[p.id].variant, p.id, pools[p.id].tp, take))
                    cost += take * p.price_per_hour
                    got += take
            if got >= n:
                left = 0.0
            else:
                # Keep the spot share honest for the partial region: spot replicas carry at most
                # their share, so count only on-demand ones beyond floor(cap x got).
                served = min(got, (got - spot_got) + int(sigma * got + 1e-9))
                left -= left * served / n if n else 0.0
        if left > 1e-12:
            return f"quota: the regions meeting the SLO for {', '.join(clients)} have too few instances"
    spares = add_spares(snapshot, rtt, d, opts, placed, trial)
    if spares is None:
        return "cannot add the replicas min_replicas/spread require with this instance type"
    quotas.left = trial.left
    return cost + spares[0], placed + spares[1]
