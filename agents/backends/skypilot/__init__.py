"""The ``skypilot`` replica backend: vLLM replicas on cloud GPU pools, launched through SkyPilot.

Modules, one concept each:

- ``placement``: the pool a replica runs on (cloud, region, zone, instance type, market, disk).
- ``naming``: SkyPilot cluster names for replicas.
- ``task_config``: the task YAML mapping for a replica (pure; no SkyPilot import).
- ``sky_task``: the mapping as a ``sky.Task``, validated by SkyPilot's schema, catalog and feasibility check.
- ``offline_catalog``: point SkyPilot at the shipped catalog snapshot (validation without downloads).
- ``states``: SkyPilot cluster states (and preemption) to replica states (pure).
- ``sdk``: the SkyPilot SDK boundary (protocol + the real adapter).
- ``backend``: ``SkyPilotBackend``, the ``ReplicaBackend`` implementation.
- ``cli``: ``python -m agents.backends.skypilot task ...`` prints one replica's task YAML.

Importing this package does not import ``sky`` (over a second, and it fixes where SkyPilot reads its
catalogs); the modules that need it import it inside functions.
"""

from __future__ import annotations

from agents.backends.skypilot.backend import SkyPilotBackend
from agents.backends.skypilot.placement import Placement, placement_from_spec
from agents.backends.skypilot.sdk import SkyPilotApi, SkyPilotSdk
from agents.backends.skypilot.states import ClusterObservation, LaunchOutcome, LaunchPhase
from agents.backends.skypilot.task_config import TaskBuild, TaskSettings, build_task_config

__all__ = [
    "ClusterObservation",
    "LaunchOutcome",
    "LaunchPhase",
    "Placement",
    "SkyPilotApi",
    "SkyPilotBackend",
    "SkyPilotSdk",
    "TaskBuild",
    "TaskSettings",
    "build_task_config",
    "placement_from_spec",
]
