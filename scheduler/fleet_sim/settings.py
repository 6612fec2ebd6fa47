"""The simulator's part of a scenario file: an optional `simulation:` block (strict, errors name the field).

A scenario without the block simulates with the defaults below, so every placement scenario can be
simulated. The block is read here and removed before the rest goes to scheduler.scenario, so the
placement loader keeps its own strict schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scheduler.scenario import Scenario, ScenarioError, TraceDemandIn, _path, parse_scenario

NonNeg = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrafficIn(_Strict):
    # 24 hourly multipliers in local time (interpolated); without them a cosine with this amplitude
    # peaking at `peak_hour_local` (mean 1, so the day's mean rate is the trace's rate x rate_scale).
    diurnal: Annotated[list[NonNeg], Field(min_length=24, max_length=24)] | None = None
    diurnal_amplitude: Annotated[float, Field(ge=0, lt=1)] = 0.6
    peak_hour_local: Annotated[float, Field(ge=0, lt=24)] = 15.0
    utc_offset_h: dict[str, Annotated[float, Field(ge=-12, le=14)]] | None = None  # default: lon / 15


class PreemptionIn(_Strict):
    spot_per_hour: NonNeg = 0.0  # preemptions per spot instance-hour
    by_region: dict[str, NonNeg] = {}
    by_zone: dict[str, NonNeg] = {}
    unavailable_s: NonNeg = 1800.0  # a preempted pool takes no new instances for this long


class OutageIn(_Strict):
    region: Annotated[str, Field(min_length=1)]
    start_h: NonNeg
    duration_h: Annotated[float, Field(gt=0)]


class SimulationIn(_Strict):
    hours: Annotated[float, Field(gt=0, le=168)] = 24.0
    step_s: Annotated[float, Field(ge=1, le=600)] = 30.0
    control_interval_s: Annotated[float, Field(ge=1)] = 60.0
    replan_interval_s: Annotated[float, Field(ge=1)] = 3600.0
    cold_start_s: NonNeg = 240.0
    perf_error: Annotated[float, Field(ge=0, lt=0.9)] = 0.2
    solver_time_limit_s: Annotated[float, Field(gt=0, le=600)] = 2.0
    # Time limit of the perfect-foresight plan's MILP, solved once per re-plan interval (bound.py; default
    # 2 x solver_time_limit_s): longer finds cheaper plans and proves more of their optimum.
    bound_time_limit_s: Annotated[float | None, Field(gt=0, le=3600)] = None

    @property
    def plan_bound_seconds(self) -> float:
        return self.bound_time_limit_s or self.solver_time_limit_s * 2
    traffic: TrafficIn = TrafficIn()
    preemption: PreemptionIn = PreemptionIn()
    outages: list[OutageIn] = []


@dataclass(frozen=True)
class SimScenario:
    scenario: Scenario
    settings: SimulationIn
    traces: dict[str, TraceDemandIn]  # deployment -> its trace demand (others have constant demand)
    base_dir: Path


def load_sim_scenario(path: Path) -> SimScenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError("", f"cannot read {path}: {exc.strerror or exc}") from exc
    is_json = path.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError("", f"{path} is not valid {'JSON' if is_json else 'YAML'}: {exc}") from exc
    return parse_sim_scenario(data, base_dir=path.parent, name=path.stem, source=path)


def parse_sim_scenario(
    data: Any, *, base_dir: Path, name: str = "scenario", source: Path | None = None
) -> SimScenario:
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping with regions, pools, models and deployments")
    rest = dict(data)
    raw = rest.pop("simulation", None)
    try:
        settings = SimulationIn.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _path(err["loc"])
        raise ScenarioError(f"simulation.{loc}" if loc else "simulation", err["msg"]) from None
    scenario = parse_scenario(rest, base_dir=base_dir, name=name, source=source)
    _cross_check(settings, scenario)
    traces: dict[str, TraceDemandIn] = {}
    for d in rest.get("deployments", []):
        if isinstance(d.get("demand"), dict):
            traces[d["name"]] = TraceDemandIn.model_validate(d["demand"])
    return SimScenario(scenario, settings, traces, base_dir)


def _cross_check(s: SimulationIn, scn: Scenario) -> None:
    regions = {r.name for r in scn.snapshot.regions}
    zones = {p.zone for p in scn.snapshot.pools if p.zone}
    if s.control_interval_s < s.step_s:
        raise ScenarioError("simulation.control_interval_s", "must be at least step_s")
    if s.replan_interval_s < s.control_interval_s:
        raise ScenarioError("simulation.replan_interval_s", "must be at least control_interval_s")
    for r in s.traffic.utc_offset_h or {}:
        if r not in regions:
            raise ScenarioError(f"simulation.traffic.utc_offset_h.{r}", f"unknown region {r!r}")
    for r in s.preemption.by_region:
        if r not in regions:
            raise ScenarioError(f"simulation.preemption.by_region.{r}", f"unknown region {r!r}")
    for z in s.preemption.by_zone:
        if z not in zones:
            raise ScenarioError(f"simulation.preemption.by_zone.{z}", f"no pool is in zone {z!r}")
    for i, o in enumerate(s.outages):
        if o.region not in regions:
            raise ScenarioError(f"simulation.outages[{i}].region", f"unknown region {o.region!r}")
