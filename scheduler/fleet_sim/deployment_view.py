"""One deployment's view of the shared simulated fleet, for the control plane's per-deployment re-plan.

The control plane re-plans one deployment at a time (AutoscaleWorkflow -> scheduler.autoscale_replan):
its snapshot holds that deployment, the pools and its own running replicas as `current`. In the
simulator several deployments share pools and pack replicas into multi-GPU instances, so the view also
says what the other deployments hold, in the snapshot's own terms (no change to the planner):

- each pool's quota is cut by the instances the others occupy (a pool that is down takes no new
  instance: its quota is what it still holds);
- the GPUs left free in the others' last, partly used instance become a `spare` pool of one instance
  with those GPUs, priced at their share of the instance (as the cost accounting splits shared
  instances), so the planner can fill them without paying for a whole new instance; the deployment's
  own replicas already there are placed on the spare first.

`to_fleet` maps a plan's pools back to the real ones. The candidate options on a spare pool are the real
pool's options (same accelerator, same performance) that fit in its GPUs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from scheduler.fleet_sim.fleet import GroupKey
from scheduler.placement import CandidateTable, PlacedReplicas
from scheduler.placement.snapshot import Deployment, Pool, Snapshot

SPARE = "~spare"


@dataclass(frozen=True)
class DeploymentView:
    snapshot: Snapshot  # this deployment only, its current placement, quotas net of the others
    table: CandidateTable
    spare_of: Mapping[str, str]  # spare pool id -> real pool id

    def to_fleet(self, items: Iterable[tuple[str, str, int, int]]) -> dict[GroupKey, int]:
        """(variant, pool, tp, count) of a plan -> the fleet's group counts, spares folded into their pool."""
        dep = self.snapshot.deployments[0].name
        out: dict[GroupKey, int] = defaultdict(int)
        for variant, pool, tp, n in items:
            if n > 0:
                out[(dep, variant, self.spare_of.get(pool, pool), tp)] += n
        return dict(out)


def deployment_view(
    snapshot: Snapshot,
    table: CandidateTable,
    deployment: Deployment,
    mine: Mapping[GroupKey, int],
    others: Mapping[GroupKey, int],
    down: Mapping[str, int] | None = None,
) -> DeploymentView:
    """`snapshot`'s fleet for `deployment` alone: `mine` are its replicas now (desired, starting ones
    included, as the control plane's `count_starting`), `others` what the other deployments occupy, `down`
    the pools that take no new instance, with the instances they still hold."""
    limit = dict(down or {})
    held: dict[str, int] = defaultdict(int)
    for (dep, _, pid, tp), n in others.items():
        if dep != deployment.name:
            held[pid] += tp * n
    pools: list[Pool] = []
    spare_of: dict[str, str] = {}
    free: dict[str, int] = {}
    for p in snapshot.pools:
        used = held.get(p.id, 0)
        quota = min(p.max_instances, limit.get(p.id, p.max_instances))
        pools.append(replace(p, max_instances=max(0, quota - math.ceil(used / p.gpus))))
        left = -used % p.gpus
        # In a pool that is down the others' partly used instance must still be running to offer its GPUs.
        if left and math.ceil(used / p.gpus) <= quota:
            sid = p.id + SPARE
            spare_of[sid] = p.id
            free[sid] = left
            # Priced per GPU, as the cost accounting splits a shared instance: filling it is not free (it
            # keeps the instance from being released), only the whole-instance rounding is saved.
            price = p.price_per_hour * left / p.gpus
            pools.append(replace(p, id=sid, gpus=left, max_instances=1, price_per_hour=price))
    # The deployment's own replicas: into the spare GPUs of their pool first (that is where they pack).
    current: dict[tuple[str, str, int], int] = defaultdict(int)
    room = dict(free)
    for (dep, variant, pid, tp), n in sorted(mine.items()):
        if dep != deployment.name or n <= 0:
            continue
        sid = pid + SPARE
        on_spare = min(n, room.get(sid, 0) // tp)
        if on_spare:
            room[sid] -= on_spare * tp
            current[(variant, sid, tp)] += on_spare
        if n - on_spare:
            current[(variant, pid, tp)] += n - on_spare
    placed = tuple(
        PlacedReplicas(deployment.name, v, pid, tp, n) for (v, pid, tp), n in sorted(current.items())
    )
    options = [c for c in table.candidates if c.deployment == deployment.name]
    spares = [
        replace(c, pool=sid)
        for sid, pid in spare_of.items()
        for c in options
        if c.pool == pid and c.tp <= free[sid]
    ]
    view = replace(snapshot, pools=tuple(pools), deployments=(deployment,), current=placed)
    return DeploymentView(view, CandidateTable(tuple(options + spares), table.notes), spare_of)
