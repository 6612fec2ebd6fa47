"""Plain descriptions of what is served: a model architecture, a servable variant, a request shape, an SLO.

The performance model, the placement MILP and the simulator all speak in these types, so they live in one
small module with no behaviour beyond validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelArch:
    """The architecture numbers the performance model needs (dense decoder-only transformer)."""

    name: str
    params_b: float  # parameters, in billions
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    context: int  # maximum context length in tokens

    def __post_init__(self) -> None:
        for field_name in ("params_b", "layers", "hidden", "kv_heads", "head_dim", "context"):
            if getattr(self, field_name) <= 0:
                raise ValueError(f"ModelArch.{field_name} must be positive")


@dataclass(frozen=True, slots=True)
class Variant:
    """A servable form of a model version: its weight precision and measured quality delta."""

    name: str  # e.g. "bf16", "fp8", "awq-int4"
    bytes_per_param: float
    quality_delta: float = 0.0  # quality lost against the full-precision version (>= 0, lower is better)
    kv_bytes_per_elem: float = 2.0  # KV cache precision (bf16 by default)

    def __post_init__(self) -> None:
        if self.bytes_per_param <= 0 or self.kv_bytes_per_elem <= 0:
            raise ValueError("Variant byte sizes must be positive")
        if self.quality_delta < 0:
            raise ValueError("Variant.quality_delta must be >= 0")


@dataclass(frozen=True, slots=True)
class RequestShape:
    """One request-size bucket: mean prompt and output tokens."""

    prompt_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        if self.prompt_tokens <= 0 or self.output_tokens <= 0:
            raise ValueError("RequestShape token counts must be positive")


def mean_shape(weights: Sequence[float], shapes: Sequence[RequestShape]) -> RequestShape:
    """The weighted mean request of a mix (weights summing to 1), tokens rounded and at least 1."""
    return RequestShape(
        max(1, round(sum(w * s.prompt_tokens for w, s in zip(weights, shapes, strict=True)))),
        max(1, round(sum(w * s.output_tokens for w, s in zip(weights, shapes, strict=True)))),
    )


@dataclass(frozen=True, slots=True)
class Slo:
    """Latency objective: p95 time to first token and p95 time per output token, in milliseconds."""

    ttft_p95_ms: float
    tpot_p95_ms: float

    def __post_init__(self) -> None:
        if self.ttft_p95_ms <= 0 or self.tpot_p95_ms <= 0:
            raise ValueError("Slo targets must be positive")
