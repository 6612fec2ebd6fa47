"""Restart delays after a crash: exponential in the number of consecutive crashes, capped."""

from __future__ import annotations


def restart_delay(consecutive_crashes: int, base_s: float, max_s: float) -> float:
    """0 crashes before -> base; each further crash doubles it, up to max (no jitter: one agent restarts
    its own replicas, there is no thundering herd to spread)."""
    return min(max_s, base_s * 2.0 ** max(0, consecutive_crashes))
