"""Properties of every plan on random small fleets (hypothesis)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement import (
    BucketPerf,
    Candidate,
    CandidateTable,
    Constraints,
    DemandSlice,
    Deployment,
    Plan,
    Pool,
    Region,
    Snapshot,
    SolveOptions,
    solve,
)
from scheduler.placement.eligibility import pool_allowed, variant_allowed
from scheduler.placement.problem import NEGLIGIBLE_RPS, compile_problem

ARCH = ModelArch("m", 8, 32, 4096, 8, 128, 8192)
SHAPES = (RequestShape(300, 100), RequestShape(2000, 200))
REGIONS = (Region("r0", "c0", 40.7, -74.0), Region("r1", "c1", 45.5, -122.7), Region("r2", "c0", 50.1, 8.7))
VARIANTS = (Variant("bf16", 2.0, 0.0), Variant("int4", 0.5, 1.0))


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Snapshot, CandidateTable]:
    pools = []
    for i in range(draw(st.integers(2, 5))):
        region = draw(st.integers(0, 2))
        gpus = draw(st.sampled_from((1, 2, 4)))
        pools.append(
            Pool(
                f"p{i}",
                f"c{region % 2}",
                f"r{region}",
                "t",
                "G",
                gpus,
                draw(st.sampled_from(("on-demand", "spot"))),
                draw(st.floats(0.3, 4.0)) * gpus,
                draw(st.integers(0, 5)),
            )
        )
    deployments, options = [], []
    for j in range(draw(st.integers(1, 2))):
        clients = draw(st.lists(st.sampled_from(("r0", "r1", "r2")), min_size=1, max_size=2, unique=True))
        demand = tuple(
            DemandSlice(c, s, draw(st.floats(0.0, 6.0)))
            for c in clients
            for s in SHAPES
            if draw(st.booleans()) or s is SHAPES[0]
        )
        allowed = draw(st.one_of(st.none(), st.sets(st.sampled_from(("r0", "r1", "r2")), min_size=1)))
        cons = Constraints(
            min_replicas=draw(st.integers(0, 2)),
            spread=draw(st.booleans()),
            max_spot_share=draw(st.sampled_from((0.0, 0.5, 1.0))),
            max_quality_drop=draw(st.sampled_from((None, 0.0, 1.0))),
            allowed_regions=frozenset(allowed) if allowed else None,
        )
        name = f"d{j}"
        deployments.append(
            Deployment(name, ARCH, VARIANTS, Slo(draw(st.sampled_from((250.0, 600.0))), 50), demand, cons)
        )
        # Options for every pool, variant and tp — including disallowed ones the solver must ignore.
        for p in pools:
            for v in VARIANTS:
                for tp in (1, 2, 4):
                    if tp <= p.gpus and draw(st.booleans()):
                        perf = {
                            s: BucketPerf(draw(st.floats(0.5, 8.0)) * tp, draw(st.floats(50, 240)))
                            for s in SHAPES
                            if draw(st.booleans())
                        }
                        if perf:
                            options.append(Candidate(name, v.name, p.id, tp, perf))
    headroom = draw(st.sampled_from((0.7, 1.0)))
    return Snapshot(REGIONS, tuple(pools), tuple(deployments), headroom=headroom), CandidateTable(
        tuple(options)
    )


def check(snap: Snapshot, table: CandidateTable, plan: Plan) -> None:
    if not plan.ok:
        assert plan.status == "infeasible" and plan.binding
        return
    assert plan.stats["verified"] == "ok"
    assert plan.objective_per_hour is not None and plan.lower_bound_per_hour is not None
    assert plan.objective_per_hour >= plan.lower_bound_per_hour - 1e-6 * max(1.0, plan.objective_per_hour)
    problem = compile_problem(snap, table.candidates)
    reachable = {
        (problem.candidates[k].deployment, problem.slices[r.slice].client_region, problem.pool_of[k].id)
        for k in range(len(problem.candidates))
        for r in problem.routes_of[k]
    }
    shares: dict[tuple[str, str], float] = defaultdict(float)
    spot: dict[str, float] = defaultdict(float)
    for r in plan.routing:
        d = snap.deployment_by_name[r.deployment]
        pool = snap.pool_by_id[r.pool]
        assert pool_allowed(d, pool)
        assert (r.deployment, r.client_region, r.pool) in reachable  # only SLO-feasible routes
        shares[(r.deployment, r.client_region)] += r.share
        if pool.is_spot:
            spot[r.deployment] += r.rps
    for d in snap.deployments:
        for client in {s.client_region for s in d.demand if s.rps >= NEGLIGIBLE_RPS}:
            assert abs(shares[(d.name, client)] - 1.0) < 1e-6  # all demand covered
        assert spot[d.name] <= d.constraints.max_spot_share * d.total_rps + 1e-6
    for u in plan.pools:
        assert u.instances <= snap.pool_by_id[u.pool].max_instances
    for r in plan.replicas:
        d = snap.deployment_by_name[r.deployment]
        assert variant_allowed(d, d.variant(r.variant))
        assert pool_allowed(d, snap.pool_by_id[r.pool])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_every_plan_respects_every_rule(fleet: tuple[Snapshot, CandidateTable]) -> None:
    snap, table = fleet
    check(snap, table, solve(snap, table, SolveOptions(time_limit_s=20)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_pruning_keeps_rules_and_a_valid_bound(fleet: tuple[Snapshot, CandidateTable]) -> None:
    snap, table = fleet
    full = solve(snap, table, SolveOptions(time_limit_s=20, prune=False))
    pruned = solve(snap, table, SolveOptions(time_limit_s=20, prune_above=0, keep_per_slice=1))
    check(snap, table, pruned)
    assert full.ok == pruned.ok or pruned.status == "no_solution"
    if full.status == "optimal" and pruned.lower_bound_per_hour is not None:
        # The pruned run's bound is a bound on the full problem.
        assert pruned.lower_bound_per_hour <= full.objective_per_hour + 1e-6 * max(
            1.0, full.objective_per_hour
        )
        assert pruned.objective_per_hour is not None
        assert pruned.objective_per_hour >= full.objective_per_hour - 1e-6 * max(1.0, full.objective_per_hour)
