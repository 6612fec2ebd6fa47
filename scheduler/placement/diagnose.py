"""Why a plan is infeasible, in terms a user can act on.

Two passes. Pre-checks look at each deployment alone (no variant within the quality budget, nothing
allowed fits, no pool meets the SLO for some client region, one failure domain only, traffic that only
spot can serve under a spot cap). If those pass, the conflict is between deployments or with quotas:
the elastic model (every constraint family given a slack, uncovered demand blamed last) is solved as an
LP and, if the LP is feasible, as a MILP; the rows with slack are the binding constraints.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from scheduler.placement.candidates import Candidate, CandidateTable
from scheduler.placement.cbc import run_cbc
from scheduler.placement.eligibility import pool_allowed, spot_cap_rule, tp_options, variant_allowed
from scheduler.placement.milp import build_model
from scheduler.placement.options import SolveOptions
from scheduler.placement.problem import Problem, usable
from scheduler.placement.pruning import option_arrays
from scheduler.placement.snapshot import Snapshot


def precheck(problem: Problem, table: CandidateTable) -> list[str]:
    snap = problem.snapshot
    raw = table.by_deployment()
    out: list[str] = []
    for d in snap.deployments:
        ks = problem.cands_by_deployment.get(d.name, [])
        positive = [si for si in problem.slices_by_deployment.get(d.name, []) if problem.slices[si].rps > 0]
        served, od_served = _served_slices(problem, d.name, ks)
        unserved = [si for si in positive if si not in served]
        # Looking at the raw table is only needed to explain a problem (it can be very large).
        usable_raw = [c for c in raw.get(d.name, []) if usable(snap, c)] if (unserved or not ks) else []
        if not ks and not usable_raw and (positive or d.constraints.min_replicas > 0):
            why = list(table.notes.get(d.name, ())) + _rule_failures(snap, d.name, raw.get(d.name, []))
            notes = "; ".join(dict.fromkeys(why)) or "no candidate options were given"
            out.append(f"no option: deployment {d.name} has no usable (variant, pool, tp) option ({notes})")
            continue
        for si in unserved:
            s = problem.slices[si]
            best: tuple[float, str] | None = None
            for c in usable_raw:
                points = c.perf.get(s.shape)
                pool = snap.pool_by_id.get(c.pool)
                if not points or pool is None:
                    continue
                bp = min(points, key=lambda p: p.ttft_ms)
                ms = problem.rtt.get(s.client_region, pool.region)
                total = ms + bp.ttft_ms
                if best is None or total < best[0]:
                    best = (
                        total,
                        f"{c.variant} on {pool.id} tp{c.tp}: RTT {ms:.0f} + TTFT {bp.ttft_ms:.0f} ms",
                    )
            shape = f"{s.shape.prompt_tokens}/{s.shape.output_tokens} tokens"
            if best is None:
                out.append(
                    f"slo: deployment {d.name}: no allowed option meets the SLO (TTFT {d.slo.ttft_p95_ms:g} ms, "
                    f"TPOT {d.slo.tpot_p95_ms:g} ms) on bucket {shape} even next to the client"
                )
            else:
                out.append(
                    f"slo: deployment {d.name}: no allowed pool meets TTFT {d.slo.ttft_p95_ms:g} ms for clients "
                    f"in {s.client_region} (bucket {shape}); the closest is {best[1]} = {best[0]:.0f} ms"
                )
        if d.constraints.spread and ks:
            domains = {problem.domain(k) for k in ks}
            if len(domains) < 2:
                out.append(
                    f"spread: deployment {d.name} can only use failure domain {next(iter(domains))} "
                    f"({snap.failure_domain}); spread needs two"
                )
        cap = d.constraints.max_spot_share
        total = sum(problem.slices[si].rps for si in positive)
        if cap < 1.0 and total > 0:
            spot_only = sum(problem.slices[si].rps for si in positive if si in served and si not in od_served)
            if spot_only / total > cap + 1e-9:
                out.append(
                    f"max_spot_share: deployment {d.name}: {spot_only / total:.0%} of its traffic can only be "
                    f"served by spot pools within the SLO, above max_spot_share {cap:.0%}"
                )
    return list(dict.fromkeys(out))  # one line per distinct problem


def _served_slices(problem: Problem, dep: str, ks: list[int]) -> tuple[set[int], set[int]]:
    """The deployment's slices some option can serve within the SLO, and those an on-demand option can
    (from the route arrays: building every option's Route tuples costs seconds on large fleets)."""
    if not ks:
        return set(), set()
    arrays = option_arrays(problem)
    idx = np.asarray(ks, dtype=np.int64)
    mine, cap = arrays.capacity(dep, idx)
    has = cap > 0
    served = {si for si, any_ in zip(mine, has.any(axis=0).tolist()) if any_}
    od = has[~arrays.spot[idx]]
    od_served = {si for si, any_ in zip(mine, od.any(axis=0).tolist()) if any_}
    return served, od_served


def _rule_failures(snap: Snapshot, dep: str, cands: list[Candidate]) -> list[str]:
    """Why hand-made or stale options were unusable, one line per cause."""
    d = snap.deployment_by_name[dep]
    out: list[str] = []
    for c in cands:
        pool = snap.pool_by_id.get(c.pool)
        try:
            v = d.variant(c.variant)
        except KeyError:
            out.append(f"unknown variant {c.variant}")
            continue
        if pool is None:
            out.append(f"unknown pool {c.pool}")
        elif not variant_allowed(d, v):
            out.append(
                f"quality: variant {v.name} loses {v.quality_delta:g} > max_quality_drop "
                f"{d.constraints.max_quality_drop:g}"
            )
        elif not pool_allowed(d, pool):
            out.append(
                f"allowed regions/clouds/spot: pool {pool.id} ({pool.cloud} {pool.region} {pool.market}) excluded"
            )
        elif c.tp not in tp_options(pool.gpus):
            out.append(f"tp {c.tp} does not pack into {pool.gpus}-GPU instances of {pool.id}")
    return out


def elastic_diagnosis(problem: Problem, options: SolveOptions) -> list[str]:
    everything = range(len(problem.candidates))
    for mip in (False, True):
        built = build_model(problem, everything, elastic=True)
        outcome = run_cbc(
            built.prob,
            mip=mip,
            time_limit_s=options.time_limit_s,
            threads=options.threads,
            gap_rel=options.gap_rel,
        )
        if not outcome.has_solution:
            return ["unknown: the elastic model could not be solved within the time limit"]
        found = _describe(problem, built)
        if found:
            return found
    return [
        "integrality: the LP relaxation is feasible but no integer plan is (replicas are whole, "
        "instances are whole): raise quotas or relax min_replicas/spread"
    ]


def _describe(problem: Problem, built) -> list[str]:  # type: ignore[no-untyped-def]
    snap = problem.snapshot
    by_family: dict[str, list[str]] = defaultdict(list)
    users: dict[str, set[str]] = defaultdict(set)
    for k in built.active:
        if (built.n[k].value() or 0) > 1e-6:
            users[problem.pool_of[k].id].add(problem.candidates[k].deployment)
    for (family, key), var in built.slacks.items():
        v = var.value() or 0.0
        if v <= 1e-6:
            continue
        if family == "quota":
            pool = snap.pool_by_id[key]
            who = ", ".join(sorted(users.get(key, ()))) or "its deployments"
            by_family[family].append(
                f"quota: pool {key} (max_instances {pool.max_instances}) would need "
                f"{v:.2f} more instances for {who}"
            )
        elif family == "spot":
            d = snap.deployment_by_name[key]
            by_family[family].append(
                f"max_spot_share: deployment {key} would need {v:.2f} rps more on spot than "
                f"its cap {d.constraints.max_spot_share:.0%} allows"
            )
        elif family == "spot_pool":
            dep, pid = key
            pool = snap.pool_by_id[pid]
            by_family["spot"].append(
                f"spot_pool: deployment {dep} would need {v:.2f} rps more on spot pool {pid} than "
                f"{spot_cap_rule(snap.deployment_by_name[dep], pool)} allows"
            )
        elif family == "minrep":
            d = snap.deployment_by_name[key]
            by_family[family].append(
                f"min_replicas: deployment {key} falls {v:.2f} replicas short of "
                f"{d.constraints.min_replicas} within quotas"
            )
        elif family == "spread":
            dep, dom = key
            by_family[family].append(f"spread: deployment {dep} cannot keep enough replicas outside {dom}")
        elif family == "demand":
            s = problem.slices[key]
            by_family[family].append(
                f"demand: deployment {s.deployment} cannot serve {v:.2f} of {s.rps:.2f} rps from "
                f"{s.client_region} within the SLO and quotas"
            )
    order = ["quota", "spot", "minrep", "spread", "demand"]
    return [m for f in order for m in by_family.get(f, [])]
