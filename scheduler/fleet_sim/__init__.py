"""Trace-driven simulation of the fleet over a day in virtual time (pure: no wall clock, no network).

    from scheduler.fleet_sim import load_sim_scenario, simulate
    result = simulate(load_sim_scenario(path), ["llmfleet", "skyserve"], hours=24, seed=0)

Why aggregate and not per request: a 24-hour day of a 3-region, 4-model fleet is millions of requests
per policy, too many for a per-request event loop in Python within minutes. The simulator therefore
steps virtual time (default 30 s) and treats each group of identical replicas as a fluid queue:
arrivals per step come from the traces (Poisson around the trace's own per-step rate, so minute-scale
bursts survive), the group's sustainable rate and its latency distribution come from the performance
model on the *true* hardware (a seeded +-error per accelerator), a rate beyond the sustainable one builds
a backlog that delays later requests, the batch (and so TPOT) grows with load, and the KV cache caps the
batch. Percentiles and SLO attainment come from each step's latency distribution weighted by its
requests. Disruptions (cold starts, preemptions, outages) act on whole replicas. The modules, one
concept each: settings (the scenario's `simulation:` block), traffic, replica_model, fleet (lifecycle
and billing), events (preemptions, outages), routing (the gateway), policies (adapters to the real
planner, autoscaler and baselines), bound (perfect foresight: LP bounds and the integer plan), metrics,
runner. Limits are listed in docs/fleet_sim.md.
"""

from scheduler.fleet_sim.policies import POLICIES
from scheduler.fleet_sim.runner import PolicyResult, SimResult, simulate
from scheduler.fleet_sim.settings import SimScenario, load_sim_scenario, parse_sim_scenario

__all__ = [
    "POLICIES",
    "PolicyResult",
    "SimResult",
    "SimScenario",
    "load_sim_scenario",
    "parse_sim_scenario",
    "simulate",
]
