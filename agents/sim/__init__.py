"""vLLM-compatible replica simulator (the agent's `sim` backend).

Python API: `start_replicas([ReplicaSpec(...)])` starts replicas in the running event loop and returns a
SimHost (ports, drain, stop). Command line: `python -m agents.sim --model M --accelerator GPU`.
"""

from agents.sim.host import SimHost, start_replicas
from agents.sim.replica import ReplicaState, SimReplica
from agents.sim.spec import ReplicaSpec, SpecError, fixed_resolver, perf_model_resolver

__all__ = [
    "ReplicaSpec",
    "ReplicaState",
    "SimHost",
    "SimReplica",
    "SpecError",
    "fixed_resolver",
    "perf_model_resolver",
    "start_replicas",
]
