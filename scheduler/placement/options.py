"""Knobs of the solver (not of the fleet: those live in the snapshot)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SolveOptions:
    time_limit_s: float = 10.0  # for the MILP; LP solves are short and not counted against it
    threads: int = 2
    gap_rel: float = 1e-6  # CBC stops when this close to its bound: reported as "optimal"
    # Re-plan mode: each replica added or removed costs churn_weight x its GPUs' hourly price in the
    # objective, so a move must save money for a while before it pays for the disruption.
    churn_weight: float = 0.25
    # Pruning keeps, per demand slice, the cheapest options in $/rps (plus what spot caps, spread,
    # quotas and the current placement need); deployments with few options are never pruned.
    prune: bool = True
    prune_above: int = 1500  # total options before pruning starts: below this the MILP sees everything
    keep_per_slice: int = 6
    # Pricing rounds re-admit pruned options whose LP reduced cost is negative; when none is left the
    # restricted LP bound is the LP bound over all options.
    pricing_rounds: int = 8

    def __post_init__(self) -> None:
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")
        if self.threads <= 0:
            raise ValueError("threads must be positive")
        if self.churn_weight < 0:
            raise ValueError("churn_weight must be >= 0")
