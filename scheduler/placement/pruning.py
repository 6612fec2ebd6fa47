"""Choosing a small starting set of options per deployment, so big fleets solve in seconds.

Per demand slice we keep the cheapest options in $ per rps (GPU price x tp / (headroom x capacity)),
enough of them to cover the slice twice over within pool quotas, and at least `keep_per_slice`; then
the cheapest on-demand ones when spot is capped, the cheapest single replicas (min_replicas on little
traffic), the best options in other failure domains when spreading, and whatever runs now (re-plan).
Pruning is a heuristic for the MILP only: the pricing step (see pricing.py) re-admits any option the LP
relaxation would use, so the reported LP bound still covers every option.

Everything is computed with numpy over a deployment's options at once (a thousand pools give hundreds
of thousands of options). The order in which options are taken is the one of a lazy merge of the
route templates' price-sorted members (tests/unit/scheduler/test_placement_pruning_reference.py keeps
that straightforward version and checks both keep the same options): cheapest $/rps first; on a tie,
a template's cheapest member before later members, then the template seen first, then the option.
"""

from __future__ import annotations

from collections.abc import Set

import numpy as np

from scheduler.placement.options import SolveOptions
from scheduler.placement.problem import Problem, RouteTable

CandKey = tuple[str, str, str, int]


def initial_active(problem: Problem, options: SolveOptions, current: Set[CandKey]) -> list[int]:
    if not options.prune or len(problem.candidates) <= options.prune_above:
        return list(range(len(problem.candidates)))
    arrays = option_arrays(problem)
    active: set[int] = set()
    for d in problem.snapshot.deployments:
        ks = problem.cands_by_deployment.get(d.name, [])
        if ks:
            active |= _prune_deployment(problem, arrays, d.name, ks, options, current)
    return sorted(active)


class _OptionArrays:
    """Per-option data as arrays, and each option's capacity on each slice of its deployment."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.price = np.asarray(problem.price_of, dtype=float)
        self.spot = np.fromiter((p.is_spot for p in problem.pool_of), dtype=bool, count=len(problem.pool_of))
        per_pool = np.fromiter(
            (p.max_instances * p.gpus // c.tp for c, p in zip(problem.candidates, problem.pool_of)),
            dtype=float,
            count=len(problem.candidates),
        )
        # What one option can carry on a slice, per unit of capacity: quota x headroom (x cap later).
        self.reach = per_pool * np.asarray(problem.headroom_of, dtype=float)
        names: dict[str, int] = {}
        self.domain = np.fromiter(
            (names.setdefault(f, len(names)) for f in problem.domain_of), dtype=np.int64, count=len(problem.domain_of)
        )
        self.template = np.asarray(problem.template_of, dtype=np.int64) if problem.template_of else None
        table = problem.derived.get("route_table")
        self.table = table if isinstance(table, RouteTable) else None

    def capacity(self, dep: str, ks: np.ndarray) -> tuple[list[int], np.ndarray]:
        """The deployment's slices and cap[k, s] (0: no route) for its options `ks`."""
        problem = self.problem
        mine = problem.slices_by_deployment.get(dep, [])
        if self.table is not None and self.template is not None and dep in self.table.blocks:
            block = self.table.blocks[dep]
            t = self.template[ks]
            cap = block.capacity[self.table.perf_of[t], :, self.table.region_of[t]]  # [k, s]
            return block.slices, cap.reshape(len(ks), len(block.slices))
        col = {si: j for j, si in enumerate(mine)}
        cap = np.zeros((len(ks), len(mine)))
        for i, k in enumerate(ks.tolist()):
            for r in problem.routes_of[k]:
                cap[i, col[r.slice]] = r.capacity_rps
        return mine, cap


def option_arrays(problem: Problem) -> _OptionArrays:
    """The per-option arrays of a compiled problem, built once and shared (pruning, bounds, cuts)."""
    arrays = problem.derived.get("option_arrays")
    if not isinstance(arrays, _OptionArrays):
        arrays = problem.derived["option_arrays"] = _OptionArrays(problem)
    return arrays


def best_per_rps(problem: Problem, dep: str, weight: np.ndarray) -> dict[int, float]:
    """Per slice of `dep`: min over its options k with a route of weight[k] / (headroom x capacity) —
    e.g. $/rps with weight = price, GPUs/rps with weight = tp. Computed as the scalar loops did."""
    ks_list = problem.cands_by_deployment.get(dep, [])
    if not ks_list:
        return {}
    ks = np.asarray(ks_list, dtype=np.int64)
    mine, cap = option_arrays(problem).capacity(dep, ks)
    h = np.asarray([problem.headroom_of[k] for k in ks_list], dtype=float)
    out: dict[int, float] = {}
    with np.errstate(divide="ignore"):
        for sj, si in enumerate(mine):
            c = cap[:, sj]
            has = c > 0
            if has.any():
                out[si] = float((weight[ks][has] / (h[has] * c[has])).min())
    return out


def _prune_deployment(
    problem: Problem, arrays: _OptionArrays, dep: str, ks_list: list[int], options: SolveOptions, current: Set[CandKey]
) -> set[int]:
    d = problem.snapshot.deployment_by_name[dep]
    keep_n = options.keep_per_slice
    keep: set[int] = {k for k in ks_list if problem.candidates[k].key in current} if current else set()
    ks = np.asarray(ks_list, dtype=np.int64)
    price, spot = arrays.price[ks], arrays.spot[ks]
    mine, cap = arrays.capacity(dep, ks)
    # Route templates: options with the same routes (same capacity row). Group index = order of first
    # appearance; the merge takes a template's cheapest member (its "head") before its later members.
    if arrays.template is not None:
        _, first, group = np.unique(arrays.template[ks], return_index=True, return_inverse=True)
        gi = np.argsort(np.argsort(first, kind="stable"), kind="stable")[group]
    else:
        gi = np.arange(len(ks))
    local = np.arange(len(ks))
    in_group = np.lexsort((local, price, gi))  # by group, then price, then option
    head_all = _heads(gi, in_group, np.ones(len(ks), dtype=bool))
    head_od = _heads(gi, in_group, ~spot)
    reach = arrays.reach[ks]
    spot_capped = d.constraints.max_spot_share < 1.0
    for sj, si in enumerate(mine):
        need = problem.slices[si].rps
        if need <= 0:
            continue
        c = cap[:, sj]
        _take(keep, ks, price, c, reach, gi, head_all, c > 0, keep_n, 2.0 * need)
        if spot_capped:
            cover = 1.5 * need * (1.0 - d.constraints.max_spot_share)
            _take(keep, ks, price, c, reach, gi, head_od, (c > 0) & ~spot, max(2, keep_n // 2), cover)
    # Cheapest single replicas: what min_replicas costs when traffic is light.
    keep.update(ks[np.lexsort((local, price))[:2]].tolist())
    if d.constraints.spread:
        top = cap.max(axis=1) if cap.shape[1] else np.zeros(len(ks))
        _add_other_domains(keep, ks, price, top, arrays.domain[ks], in_group, keep_n)
    return keep


def _heads(gi: np.ndarray, in_group: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """head[i]: option i is the cheapest eligible member of its template group."""
    order = in_group[eligible[in_group]]
    head = np.zeros(len(gi), dtype=bool)
    if len(order):
        g = gi[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = g[1:] != g[:-1]
        head[order[first]] = True
    return head


def _take(
    keep: set[int],
    ks: np.ndarray,
    price: np.ndarray,
    cap: np.ndarray,
    reach: np.ndarray,
    gi: np.ndarray,
    head: np.ndarray,
    eligible: np.ndarray,
    at_least: int,
    cover_rps: float,
) -> None:
    """Take options cheapest $/rps first until at least `at_least` are taken and they cover `cover_rps`."""
    idx = np.flatnonzero(eligible)
    if not len(idx):
        return
    score = price[idx] / cap[idx]
    # Usually a handful are taken: sort only the cheapest part (all ties of its last score included),
    # and widen when it does not reach the stop.
    want = max(4 * at_least, 32)
    while True:
        if want < len(idx):
            kth = np.partition(score, want - 1)[want - 1]
            part = np.flatnonzero(score <= kth)
        else:
            part = np.arange(len(idx))
        o = part[np.lexsort((idx[part], gi[idx[part]], ~head[idx[part]], score[part]))]
        sel = idx[o]
        covered = np.cumsum(reach[sel] * cap[sel])
        before = np.concatenate(([0.0], covered[:-1]))
        stop = np.flatnonzero((np.arange(len(sel)) >= at_least) & (before >= cover_rps))
        if len(stop):
            keep.update(ks[sel[: stop[0]]].tolist())
            return
        if len(part) == len(idx):
            keep.update(ks[sel].tolist())
            return
        want *= 4


def _add_other_domains(
    keep: set[int],
    ks: np.ndarray,
    price: np.ndarray,
    top: np.ndarray,
    domain: np.ndarray,
    in_group: np.ndarray,
    per_domain: int,
) -> None:
    """Spreading needs options outside the cheapest domain: keep the best few of the best three domains
    (ranked by their best $/rps at the option's best capacity; a tie goes to the domain seen first)."""
    order = in_group[top[in_group] > 0]  # options with routes, by group then price
    if not len(order):
        return
    score = price[order] / top[order]
    doms = domain[order]
    ranked: list[tuple[float, int, int]] = []
    for f in dict.fromkeys(doms.tolist()):
        at = np.flatnonzero(doms == f)
        ranked.append((float(score[at].min()), int(at[0]), f))
    ranked.sort()
    for _, _, f in ranked[:3]:
        at = np.flatnonzero(doms == f)
        opts = order[at]
        best = np.lexsort((ks[opts], score[at]))[:per_domain]
        keep.update(ks[opts[best]].tolist())
