"""What to simulate: the spec of one replica, and how it resolves to a timing source and limits.

A spec is plain data (JSON-friendly, so a host process can be started from a file). Resolution turns the
model name / size, variant and accelerator into the performance-model timing, picking the smallest
tensor-parallel size that fits when none is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.sim.catalog import CatalogError, resolve_arch, resolve_variant
from agents.sim.faults import FaultError, FaultSpec
from agents.sim.timing import PerfModelTiming, Timing
from scheduler.perf_model import PerfModel


class SpecError(ValueError):
    """A spec that cannot be simulated; the message is one line for the CLI."""


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    model: str
    accelerator: str
    params_b: float | None = None
    variant: str = "bf16"
    tp: int | None = None  # None: the smallest of 1, 2, 4, 8 that fits
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    speedup: float = 1.0
    served_model_name: str | None = None  # defaults to `model`
    api_key: str | None = None
    max_model_len: int | None = None  # defaults to the architecture's context, capped by the KV cache
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    block_size: int = 16
    default_max_tokens: int = 16
    chunked_prefill: bool = True
    preemption: bool = True
    prefix_caching: bool = True
    faults: tuple[FaultSpec, ...] = ()
    seed: int = 0
    drain_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.speedup <= 0:
            raise SpecError("speedup must be positive")
        if not 0 <= self.port <= 65535:
            raise SpecError(f"invalid port {self.port}")
        if self.default_max_tokens < 1:
            raise SpecError("default_max_tokens must be >= 1")

    @property
    def name(self) -> str:
        return self.served_model_name or self.model

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplicaSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"unknown replica spec fields: {', '.join(sorted(unknown))}")
        values = dict(data)
        try:
            values["faults"] = tuple(FaultSpec.from_json(f) for f in values.get("faults", ()))
            return cls(**values)
        except (TypeError, FaultError) as exc:
            raise SpecError(str(exc)) from exc

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["faults"] = [{**dataclasses.asdict(f), "mode": f.mode.value, "scope": f.scope.value} for f in self.faults]
        return out


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    timing: Timing
    context: int  # the architecture's maximum context length
    tp: int
    description: str = field(default="")


Resolver = Callable[[ReplicaSpec], ResolvedModel]

_TP_CHOICES = (1, 2, 4, 8)


def perf_model_resolver(model: PerfModel | None = None) -> Resolver:
    """Resolve specs with the shared performance model (the product's timing)."""
    perf = model if model is not None else PerfModel()

    def resolve(spec: ReplicaSpec) -> ResolvedModel:
        if spec.accelerator not in perf.gpus:
            raise SpecError(f"unknown accelerator {spec.accelerator!r} (known: {', '.join(sorted(perf.gpus))})")
        try:
            arch = resolve_arch(spec.model, spec.params_b)
            variant = resolve_variant(spec.variant)
        except CatalogError as exc:
            raise SpecError(str(exc)) from exc
        choices = (spec.tp,) if spec.tp is not None else _TP_CHOICES
        problems: list[str] = []
        for tp in choices:
            problem = perf.fit_problem(arch, variant, spec.accelerator, tp)
            if problem is None:
                timing = PerfModelTiming(perf, arch, variant, spec.accelerator, tp)
                desc = (f"{arch.name} {variant.name} ({arch.params_b:g}B, {arch.layers}x{arch.hidden}) "
                        f"on {tp}x{spec.accelerator}")
                return ResolvedModel(timing, arch.context, tp, desc)
            problems.append(problem)
        raise SpecError(f"{arch.name} {variant.name} does not fit: {problems[-1]}")

    return resolve


def fixed_resolver(timing: Timing, context: int = 8192) -> Resolver:
    """Every spec gets the same timing (tests and benchmarks with a synthetic GPU)."""

    def resolve(spec: ReplicaSpec) -> ResolvedModel:
        return ResolvedModel(timing, context, spec.tp or 1, "fixed timing")

    return resolve
