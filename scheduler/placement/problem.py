"""The placement problem in index form: demand slices, candidate options and the routes between them.

Compiling once gives the MILP, its LP relaxation, the pricing step and the diagnosis the same view, and
re-applies the hard per-option rules (allowed places, quality, SLO) so a hand-made table cannot break
them. A route (slice, option) exists only when RTT(client region, pool region) + p95 TTFT meets the SLO.

Routes are computed per *template* — (deployment, performance entry, pool region) — because every pool
with the same accelerator in the same region has the same routes; with a thousand pools this keeps
compiling linear in the number of options rather than options x slices.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from scheduler.model_spec import RequestShape
from scheduler.placement.candidates import Candidate
from scheduler.placement.eligibility import pool_allowed, tp_options, variant_allowed
from scheduler.placement.rtt import RttMatrix
from scheduler.placement.snapshot import Deployment, Pool, Snapshot


@dataclass(frozen=True, slots=True)
class Slice:
    """Demand of one deployment from one client region in one request bucket."""

    deployment: str
    client_region: str
    shape: RequestShape
    rps: float


class Route(NamedTuple):
    """One (slice, option) pair that meets the SLO (a tuple: hundreds of thousands are built)."""

    slice: int
    capacity_rps: float  # one replica of the option, on this slice's bucket, at the SLO
    rtt_ms: float
    ttft_ms: float


@dataclass
class Problem:
    snapshot: Snapshot
    rtt: RttMatrix
    candidates: list[Candidate]
    routes_of: Sequence[tuple[Route, ...]]  # per candidate (shared between candidates of one template)
    slices: list[Slice]
    slices_by_deployment: dict[str, list[int]]
    cands_by_deployment: dict[str, list[int]]
    deployment_of: list[Deployment]
    pool_of: list[Pool]
    # Per option, computed once: these are read millions of times on large fleets.
    price_of: list[float] = field(default_factory=list)  # hourly price of the GPUs one replica occupies
    headroom_of: list[float] = field(default_factory=list)
    domain_of: list[str] = field(default_factory=list)
    replicas_needed: dict[str, float] = field(default_factory=dict)  # per deployment, see milp.py
    # Per option: its route template (deployment, performance entry, pool region); options of one
    # template share their routes_of tuple and differ only by pool. Empty for hand-built problems.
    template_of: list[int] = field(default_factory=list)
    # Things derived from the whole problem once and reused by every model built over it (cuts.py).
    derived: dict[str, object] = field(default_factory=dict)

    def domain(self, cand: int) -> str:
        return self.domain_of[cand]

    def replica_price(self, cand: int) -> float:
        """Hourly price of the GPUs one replica occupies (instances are shared through packing)."""
        return self.price_of[cand]

    def headroom(self, cand: int) -> float:
        return self.headroom_of[cand]


def usable(snapshot: Snapshot, c: Candidate) -> bool:
    """The per-option hard rules, re-checked whatever produced the candidate."""
    d = snapshot.deployment_by_name.get(c.deployment)
    p = snapshot.pool_by_id.get(c.pool)
    if d is None or p is None:
        return False
    try:
        v = d.variant(c.variant)
    except KeyError:
        return False
    return pool_allowed(d, p) and variant_allowed(d, v) and c.tp in tp_options(p.gpus)


# Demand below this (one request in about 12 days) is treated as none: CBC's feasibility tolerance is
# 1e-7 absolute, so covering a smaller rate could not be enforced and a plan would silently drop it.
NEGLIGIBLE_RPS = 1e-6


def compile_problem(
    snapshot: Snapshot, candidates: Iterable[Candidate], rtt: RttMatrix | None = None
) -> Problem:
    rtt = rtt or RttMatrix.build(snapshot.regions, snapshot.rtt_overrides_ms)
    slices: list[Slice] = []
    slices_by_dep: dict[str, list[int]] = defaultdict(list)
    for d in snapshot.deployments:
        # Zero-rate slices are kept: they decide where a deployment with min_replicas but no traffic
        # yet may put its replicas.
        for s in d.demand:
            slices_by_dep[d.name].append(len(slices))
            slices.append(Slice(d.name, s.client_region, s.shape, s.rps if s.rps >= NEGLIGIBLE_RPS else 0.0))
    # This loop runs once per option (hundreds of thousands on large fleets): everything that depends
    # only on the deployment, the pool or the template is looked up once and cached, and the routes are
    # computed afterwards for all templates at once (_template_routes).
    template_index: dict[tuple[str, int, str], int] = {}
    template_keys: list[tuple[Deployment, Candidate, str]] = []  # (deployment, a member, pool region)
    rules = _Rules(snapshot)
    usable_c: list[Candidate] = []
    usable_t: list[int] = []
    usable_dp: list[tuple[Deployment, Pool]] = []
    for c in candidates:
        ok = rules.usable(c)
        if ok is None:
            continue
        pool = ok[1]
        tkey = (c.deployment, id(c.perf), pool.region)
        t = template_index.get(tkey)
        if t is None:
            t = template_index[tkey] = len(template_keys)
            template_keys.append((ok[0], c, pool.region))
        usable_c.append(c)
        usable_t.append(t)
        usable_dp.append(ok)
    table = RouteTable(template_keys, slices, slices_by_dep, rtt)
    kept: list[Candidate] = []
    template_of: list[int] = []
    dep_of: list[Deployment] = []
    pool_of: list[Pool] = []
    for c, t, (d, pool) in zip(usable_c, usable_t, usable_dp):
        # An option that can take no traffic is never worth a replica (even for spread: a replica
        # nobody can reach within the SLO protects nothing). A deployment with no demand entries at all
        # has nothing to route, so any usable option may hold its min_replicas.
        if table.has_routes[t] or not d.demand:
            kept.append(c)
            template_of.append(t)
            dep_of.append(d)
            pool_of.append(pool)
    by_dep: dict[str, list[int]] = defaultdict(list)
    for ci, c in enumerate(kept):
        by_dep[c.deployment].append(ci)
    kind = snapshot.failure_domain
    domain_cache = {p.id: p.failure_domain(kind) for p in snapshot.pools}
    headroom_cache = {d.name: snapshot.headroom_of(d) for d in snapshot.deployments}
    problem = Problem(
        snapshot,
        rtt,
        kept,
        table.per_option(template_of),
        slices,
        dict(slices_by_dep),
        dict(by_dep),
        dep_of,
        pool_of,
        price_of=[c.tp * p.gpu_price_per_hour for c, p in zip(kept, pool_of)],
        headroom_of=[headroom_cache[d.name] for d in dep_of],
        domain_of=[domain_cache[p.id] for p in pool_of],
        template_of=template_of,
    )
    problem.derived["route_table"] = table
    for d in snapshot.deployments:
        problem.replicas_needed[d.name] = _replicas_needed(problem, d.name)
    return problem


def _replicas_needed(problem: Problem, dep: str) -> float:
    """Replicas the deployment needs at least: demand over the best capacity any replica can carry."""
    total = sum(problem.slices[si].rps for si in problem.slices_by_deployment.get(dep, []))
    if total <= 0:
        return 0.0
    table = problem.derived.get("route_table")
    if isinstance(table, RouteTable):
        block = table.blocks.get(dep)
        ks = problem.cands_by_deployment.get(dep, [])
        if block is None or not ks or block.capacity.size == 0:
            return 0.0
        # Every kept option's template has a route, and every template with a route has a kept option;
        # the headroom is the deployment's: max(h * cap) = h * max(cap), exactly.
        ts = block.templates
        top = block.capacity.max(axis=1)[table.perf_of[ts], table.region_of[ts]]
        best = problem.headroom_of[ks[0]] * float(top.max())
        return float(math.ceil(total / best - 1e-9)) if best > 0 else 0.0
    best = 0.0
    seen: set[int] = set()
    for k in problem.cands_by_deployment.get(dep, []):
        t = problem.template_of[k] if problem.template_of else -1 - k
        if t in seen:
            continue  # same routes, same deployment (same headroom): nothing new
        seen.add(t)
        for r in problem.routes_of[k]:
            best = max(best, problem.headroom_of[k] * r.capacity_rps)
    return float(math.ceil(total / best - 1e-9)) if best > 0 else 0.0


class _Rules:
    """usable() with its per-deployment and per-pool parts cached (it runs once per option)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.pool_ok: dict[tuple[str, str], Pool | bool] = {}
        self.variant_ok: dict[tuple[str, str], bool] = {}
        self.tps: dict[str, tuple[int, ...]] = {p.id: tp_options(p.gpus) for p in snapshot.pools}

    def usable(self, c: Candidate) -> tuple[Deployment, Pool] | None:
        """(deployment, pool) when the option passes every per-option rule, else None."""
        tps = self.tps.get(c.pool)
        d = self.snapshot.deployment_by_name.get(c.deployment)
        if tps is None or d is None or c.tp not in tps:
            return None
        vk = (c.deployment, c.variant)
        ok = self.variant_ok.get(vk)
        if ok is None:
            try:
                ok = variant_allowed(d, d.variant(c.variant))
            except KeyError:
                ok = False
            self.variant_ok[vk] = ok
        if not ok:
            return None
        pk = (c.deployment, c.pool)
        pool_ok = self.pool_ok.get(pk)
        if pool_ok is None:
            pool = self.snapshot.pool_by_id[c.pool]
            pool_ok = self.pool_ok[pk] = pool if pool_allowed(d, pool) else False
        return (d, pool_ok) if pool_ok else None


@dataclass
class RouteBlock:
    """One deployment's routes, for all its performance entries (c), slices (s) and pool regions (r)."""

    slices: list[int]  # the deployment's slices, in order
    capacity: np.ndarray  # [c, s, r]: capacity_rps of the route, 0 where there is none
    templates: np.ndarray  # the (global) templates of the block; other (c, r) pairs are no template
    ok: list[list[list[bool]]]  # the same data as Python lists, for building Route tuples
    rps: list[list[list[float]]]
    ttft: list[list[list[float]]]
    ms: list[list[float]]  # [s, r]


class RouteTable:
    """Routes of every template (deployment, performance entry, pool region), computed with numpy per
    deployment over all its performance entries, slices, operating points and pool regions at once;
    the Route tuples themselves are built only when someone reads them (most templates' never are).

    A route exists for slice s when the highest-rps operating point with TTFT <= SLO - RTT + 1e-9 also
    has RTT + TTFT <= SLO + 1e-9 (Candidate.best_point and eligibility.meets_ttft; the first such point
    wins ties, as there). The arithmetic is the scalar one, elementwise, so the results are identical.
    """

    def __init__(
        self,
        keys: list[tuple[Deployment, Candidate, str]],
        slices: list[Slice],
        slices_by_dep: dict[str, list[int]],
        rtt: RttMatrix,
    ) -> None:
        n = len(keys)
        self.blocks: dict[str, RouteBlock] = {}
        self.block_of: list[RouteBlock | None] = [None] * n
        self.perf_of = np.zeros(n, dtype=np.int64)  # c of each template in its block
        self.region_of = np.zeros(n, dtype=np.int64)  # r of each template in its block
        self.has_routes: list[bool] = [False] * n
        self._cache: list[tuple[Route, ...] | None] = [None] * n
        by_dep: dict[str, list[int]] = defaultdict(list)
        for t, (d, _, _) in enumerate(keys):
            by_dep[d.name].append(t)
        for dep, ts in by_dep.items():
            self._block(keys, ts, slices, slices_by_dep.get(dep, []), rtt)

    def _block(
        self,
        keys: list[tuple[Deployment, Candidate, str]],
        ts: list[int],
        slices: list[Slice],
        mine: list[int],
        rtt: RttMatrix,
    ) -> None:
        d = keys[ts[0]][0]
        perf_index: dict[int, int] = {}
        perfs: list[Candidate] = []
        region_index: dict[str, int] = {}
        for t in ts:
            c, region = keys[t][1], keys[t][2]
            ci = perf_index.get(id(c.perf))
            if ci is None:
                ci = perf_index[id(c.perf)] = len(perfs)
                perfs.append(c)
            self.perf_of[t] = ci
            self.region_of[t] = region_index.setdefault(region, len(region_index))
        n_points = max((len(c.perf.get(slices[si].shape, ())) for c in perfs for si in mine), default=0)
        regions = list(region_index)
        # ttft[c, s, p] and rps[c, s, p]; missing points have ttft inf (never fit) and rps -inf.
        ttft = np.full((len(perfs), len(mine), max(1, n_points)), np.inf)
        rps = np.full((len(perfs), len(mine), max(1, n_points)), -np.inf)
        for ci, c in enumerate(perfs):
            for sj, si in enumerate(mine):
                for pj, pt in enumerate(c.perf.get(slices[si].shape, ())):
                    ttft[ci, sj, pj] = pt.ttft_ms
                    rps[ci, sj, pj] = pt.rps
        ms = np.array(
            [[rtt.get(slices[si].client_region, r) for r in regions] for si in mine], dtype=float
        ).reshape(len(mine), len(regions))
        slo = d.slo.ttft_p95_ms
        budget = slo - ms + 1e-9  # [s, r]
        fits = ttft[:, :, :, None] <= budget[None, :, None, :]  # [c, s, p, r]
        best = np.where(fits, rps[:, :, :, None], -np.inf).argmax(axis=2)  # first highest-rps fit
        best_ttft = np.take_along_axis(ttft[:, :, :, None], best[:, :, None, :], axis=2)[:, :, 0, :]
        best_rps = np.take_along_axis(rps[:, :, :, None], best[:, :, None, :], axis=2)[:, :, 0, :]
        ok = fits.any(axis=2) & (ms[None, :, :] + best_ttft <= slo + 1e-9)  # [c, s, r]
        block = RouteBlock(
            mine,
            np.where(ok, best_rps, 0.0),
            np.array(ts, dtype=np.int64),
            ok.tolist(),
            best_rps.tolist(),
            best_ttft.tolist(),
            ms.tolist(),
        )
        self.blocks[d.name] = block
        any_route = ok.any(axis=1)  # [c, r]
        for t in ts:
            self.block_of[t] = block
            self.has_routes[t] = bool(any_route[self.perf_of[t], self.region_of[t]])

    def routes(self, t: int) -> tuple[Route, ...]:
        out = self._cache[t]
        if out is None:
            block = self.block_of[t]
            assert block is not None
            ci, ri = int(self.perf_of[t]), int(self.region_of[t])
            ok, rps, ttft, ms = block.ok[ci], block.rps[ci], block.ttft[ci], block.ms
            out = self._cache[t] = tuple(
                [Route(si, rps[sj][ri], ms[sj][ri], ttft[sj][ri]) for sj, si in enumerate(block.slices) if ok[sj][ri]]
            )
        return out

    def per_option(self, template_of: list[int]) -> _OptionRoutes:
        return _OptionRoutes(self, template_of)


class _OptionRoutes(Sequence[tuple[Route, ...]]):
    """problem.routes_of: each option's routes, built from its template on first read."""

    def __init__(self, table: RouteTable, template_of: list[int]) -> None:
        self.table = table
        self.template_of = template_of

    def __len__(self) -> int:
        return len(self.template_of)

    def __getitem__(self, k):  # type: ignore[no-untyped-def, override]
        if isinstance(k, slice):
            return [self.table.routes(t) for t in self.template_of[k]]
        return self.table.routes(self.template_of[k])
