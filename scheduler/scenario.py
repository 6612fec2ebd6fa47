"""Scenario files (YAML or JSON): a fleet, its models and deployments, for `llmfleet plan` and benchmarks.

The format is documented in docs/scenarios.md. Parsing is strict (unknown fields are errors) and every
error names the field path, e.g. `deployments[1].slo.ttft_p95_ms: Input should be greater than 0`.
Cross-references (a deployment's model, client regions, pool regions...) are checked after the schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from scheduler.hardware import GpuSpec, builtin_gpu_specs
from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement.snapshot import (
    Constraints,
    DemandSlice,
    Deployment,
    PlacedReplicas,
    Pool,
    Region,
    Snapshot,
)
from scheduler.scenario_trace import RateStatistic, TraceError, read_trace

Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]


class ScenarioError(ValueError):
    """A scenario that cannot be used; `field` is the path of the offending field ('' for the file)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionIn(_Strict):
    name: Annotated[str, Field(min_length=1)]
    cloud: Annotated[str, Field(min_length=1)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class PoolIn(_Strict):
    id: Annotated[str, Field(min_length=1)]
    cloud: Annotated[str, Field(min_length=1)]
    region: Annotated[str, Field(min_length=1)]
    zone: str | None = None
    instance_type: Annotated[str, Field(min_length=1)]
    accelerator: Annotated[str, Field(min_length=1)]
    gpus: Annotated[int, Field(gt=0)]
    market: Literal["on-demand", "spot"]
    price_per_hour: NonNeg
    max_instances: Annotated[int, Field(ge=0)]
    # Spot only (ignored on on-demand): the expected fraction of time spot capacity here serves
    # (scheduler.spot_hints); caps this pool's share of a deployment at max_spot_share x this.
    spot_availability: Annotated[float, Field(ge=0, le=1)] | None = None


class GpuIn(_Strict):
    memory_gib: Pos
    bandwidth_gb_s: Pos
    bf16_tflops: Pos
    fp8_tflops: Pos | None = None
    int8_tops: Pos | None = None


class VariantIn(_Strict):
    name: Annotated[str, Field(min_length=1)]
    bytes_per_param: Pos
    quality_delta: NonNeg = 0.0
    kv_bytes_per_elem: Pos = 2.0


class ModelIn(_Strict):
    name: Annotated[str, Field(min_length=1)]
    params_b: Pos
    layers: Annotated[int, Field(gt=0)]
    hidden: Annotated[int, Field(gt=0)]
    kv_heads: Annotated[int, Field(gt=0)]
    head_dim: Annotated[int, Field(gt=0)]
    context: Annotated[int, Field(gt=0)]
    variants: Annotated[list[VariantIn], Field(min_length=1)]


class SloIn(_Strict):
    ttft_p95_ms: Pos
    tpot_p95_ms: Pos


class DemandEntryIn(_Strict):
    client_region: Annotated[str, Field(min_length=1)]
    rps: NonNeg
    prompt_tokens: Annotated[int, Field(gt=0)]
    output_tokens: Annotated[int, Field(gt=0)]


class TraceDemandIn(_Strict):
    trace: Annotated[str, Field(min_length=1)]  # CSV path, relative to the scenario file
    rate_scale: Pos = 1.0
    split: dict[str, Annotated[float, Field(ge=0)]]  # client region -> fraction of the traffic
    buckets: Annotated[int, Field(ge=1, le=16)] = 3
    rate: RateStatistic = "mean"


def _demand_kind(value: Any) -> str:
    return "trace" if isinstance(value, dict) else "list"


DemandIn = Annotated[
    Annotated[list[DemandEntryIn], Tag("list")] | Annotated[TraceDemandIn, Tag("trace")],
    Discriminator(_demand_kind),
]


class DeploymentIn(_Strict):
    name: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    variants: list[str] | None = None  # subset of the model's variants; all by default
    slo: SloIn
    demand: DemandIn
    min_replicas: Annotated[int, Field(ge=0)] = 1
    spread: bool = False
    max_spot_share: Annotated[float, Field(ge=0, le=1)] = 1.0
    max_spot_pool_share: Annotated[float, Field(ge=0, le=1)] | None = None
    max_quality_drop: NonNeg | None = None
    allowed_regions: list[str] | None = None
    allowed_clouds: list[str] | None = None
    headroom: Annotated[float, Field(gt=0, le=1)] | None = None


class PlacedIn(_Strict):
    deployment: str
    variant: str
    pool: str
    tp: Annotated[int, Field(gt=0)]
    count: Annotated[int, Field(ge=0)]


class ScenarioIn(_Strict):
    name: str | None = None
    description: str | None = None
    regions: Annotated[list[RegionIn], Field(min_length=1)]
    rtt_ms: dict[str, dict[str, NonNeg]] | None = None  # client region -> pool region -> ms
    pools: list[PoolIn]
    gpus: dict[str, GpuIn] | None = None
    models: list[ModelIn]
    deployments: list[DeploymentIn]
    headroom: Annotated[float, Field(gt=0, le=1)] = 0.8
    failure_domain: Literal["region", "zone"] = "region"
    current: list[PlacedIn] = []
    # The fleet simulator's settings (`llmfleet simulate`); validated strictly by scheduler/fleet_sim/settings.py.
    simulation: dict[str, Any] | None = None


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: the optimizer's snapshot plus the accelerator specs for the performance model."""

    name: str
    snapshot: Snapshot
    gpus: dict[str, GpuSpec]
    source: Path | None = None


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError("", f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(
            "", f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from exc
    return parse_scenario(data, base_dir=path.parent, name=path.stem, source=path)


def parse_scenario(
    data: Any, *, base_dir: Path, name: str = "scenario", source: Path | None = None
) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError("", "a scenario must be a mapping with regions, pools, models and deployments")
    try:
        scn = ScenarioIn.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ScenarioError(_path(err["loc"]), err["msg"]) from None
    _cross_check(scn)
    snapshot = _to_snapshot(scn, base_dir)
    gpus = dict(builtin_gpu_specs())
    for gname, g in (scn.gpus or {}).items():
        gpus[gname] = GpuSpec(gname, g.memory_gib, g.bandwidth_gb_s, g.bf16_tflops, g.fp8_tflops, g.int8_tops)
    return Scenario(scn.name or name, snapshot, gpus, source)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("list", "trace"):  # discriminator tags are not fields
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _unique(items: list[str], field: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(items):
        if v in seen:
            raise ScenarioError(f"{field}[{i}]", f"duplicate {v!r}")
        seen.add(v)


def _cross_check(scn: ScenarioIn) -> None:
    _unique([r.name for r in scn.regions], "regions")
    _unique([p.id for p in scn.pools], "pools")
    _unique([m.name for m in scn.models], "models")
    _unique([d.name for d in scn.deployments], "deployments")
    regions = {r.name for r in scn.regions}
    for i, p in enumerate(scn.pools):
        if p.region not in regions:
            raise ScenarioError(f"pools[{i}].region", f"unknown region {p.region!r}")
    for a, row in (scn.rtt_ms or {}).items():
        if a not in regions:
            raise ScenarioError(f"rtt_ms.{a}", f"unknown region {a!r}")
        for b in row:
            if b not in regions:
                raise ScenarioError(f"rtt_ms.{a}.{b}", f"unknown region {b!r}")
    models = {m.name: m for m in scn.models}
    for i, m in enumerate(scn.models):
        _unique([v.name for v in m.variants], f"models[{i}].variants")
    for i, d in enumerate(scn.deployments):
        where = f"deployments[{i}]"
        if d.model not in models:
            raise ScenarioError(f"{where}.model", f"unknown model {d.model!r}")
        names = {v.name for v in models[d.model].variants}
        for j, v in enumerate(d.variants or []):
            if v not in names:
                raise ScenarioError(f"{where}.variants[{j}]", f"model {d.model} has no variant {v!r}")
        if d.variants is not None and not d.variants:
            raise ScenarioError(f"{where}.variants", "must list at least one variant")
        if isinstance(d.demand, list):
            seen: set[tuple[str, int, int]] = set()
            for j, e in enumerate(d.demand):
                if e.client_region not in regions:
                    raise ScenarioError(
                        f"{where}.demand[{j}].client_region", f"unknown region {e.client_region!r}"
                    )
                key = (e.client_region, e.prompt_tokens, e.output_tokens)
                if key in seen:
                    raise ScenarioError(
                        f"{where}.demand[{j}]", "duplicate (client_region, prompt_tokens, output_tokens)"
                    )
                seen.add(key)
        else:
            for r in d.demand.split:
                if r not in regions:
                    raise ScenarioError(f"{where}.demand.split.{r}", f"unknown region {r!r}")
            total = sum(d.demand.split.values())
            if abs(total - 1.0) > 1e-6:
                raise ScenarioError(
                    f"{where}.demand.split", f"fractions must sum to 1 (they sum to {total:g})"
                )
        for j, r in enumerate(d.allowed_regions or []):
            if r not in regions:
                raise ScenarioError(f"{where}.allowed_regions[{j}]", f"unknown region {r!r}")
    deployments = {d.name: d for d in scn.deployments}
    pools = {p.id for p in scn.pools}
    for i, c in enumerate(scn.current):
        if c.deployment not in deployments:
            raise ScenarioError(f"current[{i}].deployment", f"unknown deployment {c.deployment!r}")
        if c.pool not in pools:
            raise ScenarioError(f"current[{i}].pool", f"unknown pool {c.pool!r}")
        if c.variant not in {v.name for v in models[deployments[c.deployment].model].variants}:
            raise ScenarioError(f"current[{i}].variant", f"unknown variant {c.variant!r}")


def _to_snapshot(scn: ScenarioIn, base_dir: Path) -> Snapshot:
    models = {m.name: m for m in scn.models}
    deployments: list[Deployment] = []
    for i, d in enumerate(scn.deployments):
        m = models[d.model]
        arch = ModelArch(m.name, m.params_b, m.layers, m.hidden, m.kv_heads, m.head_dim, m.context)
        wanted = set(d.variants) if d.variants is not None else None
        variants = tuple(
            Variant(v.name, v.bytes_per_param, v.quality_delta, v.kv_bytes_per_elem)
            for v in m.variants
            if wanted is None or v.name in wanted
        )
        deployments.append(
            Deployment(
                name=d.name,
                arch=arch,
                variants=variants,
                slo=Slo(d.slo.ttft_p95_ms, d.slo.tpot_p95_ms),
                demand=_demand(d, base_dir, f"deployments[{i}].demand"),
                constraints=Constraints(
                    min_replicas=d.min_replicas,
                    spread=d.spread,
                    max_spot_share=d.max_spot_share,
                    max_spot_pool_share=d.max_spot_pool_share,
                    max_quality_drop=d.max_quality_drop,
                    allowed_regions=frozenset(d.allowed_regions) if d.allowed_regions is not None else None,
                    allowed_clouds=frozenset(d.allowed_clouds) if d.allowed_clouds is not None else None,
                ),
                headroom=d.headroom,
            )
        )
    rtt = {(a, b): ms for a, row in (scn.rtt_ms or {}).items() for b, ms in row.items()}
    try:
        return Snapshot(
            regions=tuple(Region(r.name, r.cloud, r.lat, r.lon) for r in scn.regions),
            pools=tuple(
                Pool(
                    p.id,
                    p.cloud,
                    p.region,
                    p.instance_type,
                    p.accelerator,
                    p.gpus,
                    p.market,
                    p.price_per_hour,
                    p.max_instances,
                    p.zone,
                    p.spot_availability,
                )
                for p in scn.pools
            ),
            deployments=tuple(deployments),
            rtt_overrides_ms=rtt,
            current=tuple(
                PlacedReplicas(c.deployment, c.variant, c.pool, c.tp, c.count) for c in scn.current
            ),
            headroom=scn.headroom,
            failure_domain=scn.failure_domain,
        )
    except ValueError as exc:  # cross-field rules of the snapshot itself
        raise ScenarioError("", str(exc)) from exc


def _demand(d: DeploymentIn, base_dir: Path, where: str) -> tuple[DemandSlice, ...]:
    if isinstance(d.demand, list):
        return tuple(
            DemandSlice(e.client_region, RequestShape(e.prompt_tokens, e.output_tokens), e.rps)
            for e in d.demand
        )
    t = d.demand
    try:
        summary = read_trace(base_dir / t.trace, t.buckets, t.rate)
    except TraceError as exc:
        raise ScenarioError(f"{where}.trace", str(exc)) from exc
    rps = summary.rps * t.rate_scale
    return tuple(
        DemandSlice(region, b.shape, rps * b.fraction * share)
        for region, share in t.split.items()
        if share > 0
        for b in summary.buckets
    )
