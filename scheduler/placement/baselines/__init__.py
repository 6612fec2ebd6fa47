"""The peers' placement policies on llmfleet's inputs and performance model, for comparison.

from scheduler.placement.baselines import run_baselines
results = run_baselines(snapshot, table, ["skyserve", "melange"])   # name -> BaselineResult
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from scheduler.placement.baselines.common import BaselineResult
from scheduler.placement.baselines.melange import melange
from scheduler.placement.baselines.on_demand import on_demand_only
from scheduler.placement.baselines.single_type import cheapest_single_type
from scheduler.placement.baselines.skyserve import skyserve
from scheduler.placement.candidates import CandidateTable
from scheduler.placement.options import SolveOptions
from scheduler.placement.snapshot import Snapshot

Baseline = Callable[[Snapshot, CandidateTable, SolveOptions], BaselineResult]

BASELINES: dict[str, Baseline] = {
    "skyserve": lambda s, t, o: skyserve(s, t),
    "melange": melange,
    "cheapest_single_type": cheapest_single_type,
    "on_demand_only": on_demand_only,
}


def run_baselines(
    snapshot: Snapshot,
    table: CandidateTable,
    names: Iterable[str] | None = None,
    options: SolveOptions | None = None,
) -> dict[str, BaselineResult]:
    opts = options or SolveOptions()
    chosen = list(names) if names is not None else list(BASELINES)
    unknown = [n for n in chosen if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s): {', '.join(unknown)}; known: {', '.join(BASELINES)}")
    return {n: BASELINES[n](snapshot, table, opts) for n in chosen}


__all__ = [
    "BASELINES",
    "BaselineResult",
    "cheapest_single_type",
    "melange",
    "on_demand_only",
    "run_baselines",
    "skyserve",
]
