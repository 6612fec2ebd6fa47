"""Cost-aware placement of LLM replicas on GPU pools (pure decisions; see docs/scenarios.md).

from scheduler.placement import Snapshot, build_candidates, solve, SolveOptions
table = build_candidates(snapshot, PerfModel())
plan = solve(snapshot, table, SolveOptions(time_limit_s=10))
"""

from scheduler.placement.candidates import (
    BucketPerf,
    Candidate,
    CandidateTable,
    CapacityModel,
    build_candidates,
)
from scheduler.placement.options import SolveOptions
from scheduler.placement.plan import Plan, PlanStatus, PoolUsage, ReplicaDecision, RoutingShare
from scheduler.placement.rtt import RttMatrix, default_rtt_ms, great_circle_km
from scheduler.placement.snapshot import (
    Constraints,
    DemandSlice,
    Deployment,
    PlacedReplicas,
    Pool,
    Region,
    Snapshot,
)
from scheduler.placement.solver import plan_placement, solve

__all__ = [
    "BucketPerf",
    "Candidate",
    "CandidateTable",
    "CapacityModel",
    "Constraints",
    "DemandSlice",
    "Deployment",
    "PlacedReplicas",
    "Plan",
    "PlanStatus",
    "Pool",
    "PoolUsage",
    "Region",
    "ReplicaDecision",
    "RoutingShare",
    "RttMatrix",
    "Snapshot",
    "SolveOptions",
    "build_candidates",
    "default_rtt_ms",
    "great_circle_km",
    "plan_placement",
    "solve",
]
