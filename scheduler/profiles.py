"""Measured replica profiles that override the analytical performance model.

A profile records what a real replica sustained in a load test: the request rate and the p95 TTFT and
TPOT it showed at that rate, optionally for one request shape. PerfModel uses it in two ways:
- if the measured latencies meet the asked SLO, the measured rate is the capacity (it was observed);
- otherwise the model's prediction for the asked SLO is scaled by measured / predicted at the measured
  latencies, so the measurement corrects the model's level while the model supplies the SLO trade-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scheduler.model_spec import RequestShape


@dataclass(frozen=True, slots=True)
class ProfileKey:
    model: str  # ModelArch.name
    variant: str  # Variant.name
    gpu: str  # accelerator name as in the GPU spec table
    tp: int


@dataclass(frozen=True, slots=True)
class MeasuredProfile:
    rps: float  # sustained requests/s in the load test
    ttft_p95_ms: float
    tpot_p95_ms: float
    shape: RequestShape | None = None  # the shape measured; None = use for every shape

    def __post_init__(self) -> None:
        if self.rps <= 0 or self.ttft_p95_ms <= 0 or self.tpot_p95_ms <= 0:
            raise ValueError("MeasuredProfile numbers must be positive")

    def applies_to(self, shape: RequestShape) -> bool:
        return self.shape is None or self.shape == shape


Profiles = Mapping[ProfileKey, MeasuredProfile]
