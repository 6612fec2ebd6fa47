"""An independent check of a solution against every hard rule, written apart from the MILP.

The solver runs it on its own output (tolerance-level slips of the LP solver would show up here), and
the tests run it on every plan they produce.
"""

from __future__ import annotations

import math
from collections import defaultdict

from scheduler.placement.eligibility import (
    meets_ttft,
    pool_allowed,
    pool_spot_cap,
    spot_cap_rule,
    tp_options,
    variant_allowed,
)
from scheduler.placement.problem import Problem

TOL = 1e-5


def violations(problem: Problem, counts: dict[int, int], flows: dict[tuple[int, int], float]) -> list[str]:
    snap = problem.snapshot
    out: list[str] = []
    served: dict[int, float] = defaultdict(float)
    load: dict[int, float] = defaultdict(float)
    spot: dict[str, float] = defaultdict(float)
    spot_by_pool: dict[tuple[str, str], float] = defaultdict(float)
    for (k, si), f in flows.items():
        if f <= TOL:
            continue
        c, pool, d = problem.candidates[k], problem.pool_of[k], problem.deployment_of[k]
        s = problem.slices[si]
        if s.deployment != c.deployment:
            out.append(f"flow of {s.deployment} on an option of {c.deployment}")
            continue
        if not pool_allowed(d, pool) or not variant_allowed(d, d.variant(c.variant)):
            out.append(f"{c.deployment}: traffic on a disallowed option {c.key}")
        route = next((r for r in problem.routes_of[k] if r.slice == si), None)
        if route is None or not meets_ttft(d, route.rtt_ms, route.ttft_ms):
            out.append(f"{c.deployment}: traffic from {s.client_region} to {pool.id} misses the TTFT SLO")
            continue
        served[si] += f
        load[k] += f / route.capacity_rps
        if pool.is_spot:
            spot[c.deployment] += f
            spot_by_pool[(c.deployment, pool.id)] += f
    for si, s in enumerate(problem.slices):
        if abs(served[si] - s.rps) > TOL * max(1.0, s.rps):
            out.append(f"{s.deployment}: {s.client_region} demand {s.rps:.4f} rps served {served[si]:.4f}")
    gpus: dict[str, int] = defaultdict(int)
    per_dep: dict[str, list[int]] = defaultdict(list)
    for k, n in counts.items():
        if n < 0:
            out.append(f"negative replica count on {problem.candidates[k].key}")
        c = problem.candidates[k]
        if c.tp not in tp_options(problem.pool_of[k].gpus):
            out.append(f"{c.key}: tp {c.tp} does not pack into {problem.pool_of[k].gpus}-GPU instances")
        gpus[c.pool] += n * c.tp
        per_dep[c.deployment].append(k)
    for k, l in load.items():
        if l > problem.headroom(k) * counts.get(k, 0) + TOL:
            out.append(
                f"{problem.candidates[k].key}: load {l:.4f} replica-s/s over headroom x {counts.get(k, 0)}"
            )
    for pid, g in gpus.items():
        pool = snap.pool_by_id[pid]
        if math.ceil(g / pool.gpus - 1e-9) > pool.max_instances:
            out.append(f"quota: pool {pid} needs {math.ceil(g / pool.gpus)} instances > {pool.max_instances}")
    for d in snap.deployments:
        ks = [k for k in per_dep.get(d.name, []) if counts[k] > 0]
        total = sum(counts[k] for k in ks)
        c = d.constraints
        if total < c.min_replicas:
            out.append(f"min_replicas: {d.name} has {total} < {c.min_replicas}")
        if c.spread and total:
            per_domain: dict[str, int] = defaultdict(int)
            for k in ks:
                per_domain[problem.domain(k)] += counts[k]
            if len(per_domain) < 2 or any(total - n < c.spread_min_outside for n in per_domain.values()):
                out.append(f"spread: {d.name} replicas by domain {dict(per_domain)}")
        rps = sum(s.rps for s in problem.slices if s.deployment == d.name)
        if rps > 0 and spot[d.name] > c.max_spot_share * rps + TOL * max(1.0, rps):
            out.append(
                f"max_spot_share: {d.name} sends {spot[d.name] / rps:.2%} to spot > {c.max_spot_share:.0%}"
            )
        for (dep, pid), f in spot_by_pool.items():
            cap = pool_spot_cap(d, snap.pool_by_id[pid]) if dep == d.name else None
            if cap is not None and rps > 0 and f > cap * rps + TOL * max(1.0, rps):
                rule = spot_cap_rule(d, snap.pool_by_id[pid])
                out.append(f"spot_pool: {d.name} sends {f / rps:.2%} to {pid} > {rule}")
    return out
