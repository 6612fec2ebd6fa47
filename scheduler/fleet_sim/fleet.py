"""The simulated fleet: replicas per group, their lifecycle (starting -> ready -> gone), quotas, billing.

A group is one placement option, (deployment, variant, pool, tp) as in the planner's candidate table.
The fleet reconciles towards the target the policy set (like the agents: level-triggered): it launches
missing replicas (ready after the cold start), stops surplus ones (starting ones first), refuses
launches into pools that are full or down (a pool that is down takes no new instance, but the free GPUs
of an instance still running there can be used). Billing is per whole instance: replicas pack into a pool's
instances by GPUs (ceil(GPUs used / GPUs per instance) instances at the pool's price) from launch to stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scheduler.placement.snapshot import Pool, Snapshot

GroupKey = tuple[str, str, str, int]  # deployment, variant, pool, tp


@dataclass
class Group:
    key: GroupKey
    ready: int = 0
    starting: list[float] = field(default_factory=list)  # ready-at times
    backlog: float = 0.0  # requests queued on the group (fluid)

    @property
    def running(self) -> int:
        return self.ready + len(self.starting)


class Fleet:
    def __init__(self, snapshot: Snapshot, cold_start_s: float) -> None:
        self.snapshot = snapshot
        self.cold_start_s = cold_start_s
        self.groups: dict[GroupKey, Group] = {}
        self.target: dict[GroupKey, int] = {}
        self.down_until: dict[str, float] = {}  # pool -> time it takes launches again
        self.replica_seconds = 0.0

    # --- state

    def pool(self, pid: str) -> Pool:
        return self.snapshot.pool_by_id[pid]

    def available(self, pid: str, now: float) -> bool:
        return self.down_until.get(pid, -math.inf) <= now

    def gpus_used(self, pid: str) -> int:
        return sum(g.key[3] * g.running for g in self.groups.values() if g.key[2] == pid)

    def instances(self, pid: str) -> int:
        return math.ceil(self.gpus_used(pid) / self.pool(pid).gpus)

    def running(self) -> dict[GroupKey, int]:
        return {k: g.running for k, g in self.groups.items() if g.running > 0}

    def ready(self) -> dict[GroupKey, int]:
        return {k: g.ready for k, g in self.groups.items() if g.ready > 0}

    def queued(self) -> dict[GroupKey, float]:
        return {k: g.backlog for k, g in self.groups.items() if g.backlog > 0 and g.ready > 0}

    def cost_per_hour(self) -> float:
        used: dict[str, int] = {}
        for g in self.groups.values():
            if g.running:
                used[g.key[2]] = used.get(g.key[2], 0) + g.key[3] * g.running
        return sum(
            math.ceil(n / self.pool(pid).gpus) * self.pool(pid).price_per_hour for pid, n in used.items()
        )

    # --- changes

    def set_target(self, target: dict[GroupKey, int]) -> None:
        self.target = {k: n for k, n in target.items() if n > 0}

    def reconcile(self, now: float, instant: bool = False) -> bool:
        """Move towards the target; returns whether the set of ready replicas changed.

        Make before break: surplus starting replicas stop at once, surplus ready ones only once all of
        the deployment's wanted replicas are up (they carry its traffic until then, and stay if the new
        ones cannot be launched: pool down or quota full).
        """
        changed = False
        for key in sorted(set(self.groups) | set(self.target)):
            g = self.groups.setdefault(key, Group(key))
            while g.starting and g.running > self.target.get(key, 0):
                g.starting.pop()
        for key in sorted(self.target):
            g = self.groups[key]
            pool = self.pool(key[2])
            while g.running < self.target[key]:
                used = self.gpus_used(pool.id)
                # A pool that is down takes no new instance; free GPUs of one still running can be used.
                room = pool.max_instances if self.available(pool.id, now) else math.ceil(used / pool.gpus)
                if used + key[3] > room * pool.gpus:
                    break
                if instant:
                    g.ready += 1
                    changed = True
                else:
                    g.starting.append(now + self.cold_start_s)
        pending = {k[0] for k, g in self.groups.items() if g.ready < self.target.get(k, 0)}
        for key, g in sorted(self.groups.items()):
            if key[0] not in pending and g.ready > self.target.get(key, 0):
                g.ready = self.target.get(key, 0)
                g.backlog = g.backlog if g.ready else 0.0
                changed = True
        return changed

    def advance(self, now: float) -> bool:
        changed = False
        for g in self.groups.values():
            done = [t for t in g.starting if t <= now]
            if done:
                g.starting = [t for t in g.starting if t > now]
                g.ready += len(done)
                changed = True
        return changed

    def kill(self, key: GroupKey, count: int) -> tuple[int, float]:
        """Remove `count` replicas of a group (ready first: they hold requests); returns (killed ready
        replicas, backlog lost with them)."""
        g = self.groups[key]
        from_ready = min(count, g.ready)
        lost = g.backlog * from_ready / g.ready if g.ready else 0.0
        g.backlog -= lost
        g.ready -= from_ready
        rest = count - from_ready
        while rest > 0 and g.starting:
            g.starting.pop()
            rest -= 1
        return from_ready, lost

    def kill_pool(self, pid: str) -> list[tuple[GroupKey, int, float]]:
        out = []
        for key, g in sorted(self.groups.items()):
            if key[2] == pid and g.running:
                killed, lost = self.kill(key, g.running)
                out.append((key, killed, lost))
        return out

    def kill_instance(self, pid: str, rng: np.random.Generator) -> list[tuple[GroupKey, int, float]]:
        """One instance of the pool disappears with the replicas packed on it (chosen at random)."""
        pool = self.pool(pid)
        members = [(key, g) for key, g in sorted(self.groups.items()) if key[2] == pid and g.running]
        out = []
        gpus_left = pool.gpus
        while members and gpus_left > 0:
            weights = np.array([g.running * key[3] for key, g in members], dtype=float)
            i = int(rng.choice(len(members), p=weights / weights.sum()))
            key, g = members[i]
            if key[3] > gpus_left:
                break
            killed, lost = self.kill(key, 1)
            out.append((key, killed, lost))
            gpus_left -= key[3]
            if not g.running:
                members.pop(i)
        return out
