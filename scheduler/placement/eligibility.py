"""The hard, per-option rules: which pools and variants a deployment may use, and which routes meet the SLO.

Used by candidate generation (to keep the table small) and again by the MILP and the baselines (so a
hand-made or stale candidate table can never make them route to a disallowed or too-slow pool).
"""

from __future__ import annotations

from scheduler.model_spec import Variant
from scheduler.placement.snapshot import Deployment, Pool


def pool_allowed(deployment: Deployment, pool: Pool) -> bool:
    c = deployment.constraints
    if c.allowed_regions is not None and pool.region not in c.allowed_regions:
        return False
    if c.allowed_clouds is not None and pool.cloud not in c.allowed_clouds:
        return False
    # The spot cap bounds traffic; with a cap of 0 a spot replica could still be bought as an idle spare
    # for spread, which is not what "no spot" means to anyone.
    if pool.is_spot and c.max_spot_share <= 0.0:
        return False
    cap = pool_spot_cap(deployment, pool)
    return cap is None or cap > 0.0


def pool_spot_cap(deployment: Deployment, pool: Pool) -> float | None:
    """The largest share of the deployment's traffic one spot pool may serve when a rule caps it below
    max_spot_share: max_spot_share x the pool's spot availability when that is known, and
    max_spot_pool_share when set (the smaller wins). None: only the deployment-wide spot cap applies (and
    always for on-demand pools)."""
    if not pool.is_spot:
        return None
    c = deployment.constraints
    cap = c.max_spot_share
    if pool.spot_availability is not None:
        cap = min(cap, c.max_spot_share * pool.spot_availability)
    if c.max_spot_pool_share is not None:
        cap = min(cap, c.max_spot_pool_share)
    return cap if cap < c.max_spot_share else None


def spot_cap_rule(deployment: Deployment, pool: Pool) -> str:
    """The rule pool_spot_cap took its cap from, in the words of the settings (for error messages)."""
    c = deployment.constraints
    cap = pool_spot_cap(deployment, pool)
    if c.max_spot_pool_share is not None and cap == c.max_spot_pool_share:
        return f"max_spot_pool_share {c.max_spot_pool_share:.0%}"
    if cap is not None and pool.spot_availability is not None:
        return f"spot_availability {pool.spot_availability:.0%} x max_spot_share {c.max_spot_share:.0%}"
    return f"max_spot_share {c.max_spot_share:.0%}"


def variant_allowed(deployment: Deployment, variant: Variant) -> bool:
    budget = deployment.constraints.max_quality_drop
    return budget is None or variant.quality_delta <= budget + 1e-12


def meets_ttft(deployment: Deployment, rtt_ms: float, ttft_ms: float) -> bool:
    """One network round trip plus the replica's p95 TTFT must fit in the TTFT SLO."""
    return rtt_ms + ttft_ms <= deployment.slo.ttft_p95_ms + 1e-9


def tp_options(gpus_per_instance: int) -> tuple[int, ...]:
    """Tensor-parallel sizes a pool can host: powers of two that divide its GPUs per instance.

    Powers of two that all divide the instance size pack into instances without fragmentation, so the
    MILP's aggregate GPU count per pool is an exact packing (no per-instance assignment variables needed).
    """
    out: list[int] = []
    t = 1
    while t <= gpus_per_instance:
        if gpus_per_instance % t == 0:
            out.append(t)
        t *= 2
    return tuple(out)
