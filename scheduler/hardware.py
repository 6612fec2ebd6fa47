"""Accelerator specifications (from vendor datasheets), shipped as package data in data/gpu_specs.csv."""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class GpuSpec:
    name: str
    memory_gib: float
    bandwidth_gb_s: float
    bf16_tflops: float  # dense
    fp8_tflops: float | None = None  # dense; None where the GPU has no FP8 tensor cores
    int8_tops: float | None = None


def scaled_speed(spec: GpuSpec, factor: float) -> GpuSpec:
    """`spec` with its memory bandwidth and tensor throughput scaled by `factor` (memory size unchanged): an
    accelerator that runs `factor` times as fast as its datasheet."""
    if factor <= 0:
        raise ValueError("a speed factor must be positive")
    return replace(
        spec,
        bandwidth_gb_s=spec.bandwidth_gb_s * factor,
        bf16_tflops=spec.bf16_tflops * factor,
        fp8_tflops=None if spec.fp8_tflops is None else spec.fp8_tflops * factor,
        int8_tops=None if spec.int8_tops is None else spec.int8_tops * factor,
    )


def _optional(value: str) -> float | None:
    return float(value) if value.strip() else None


@cache
def builtin_gpu_specs() -> dict[str, GpuSpec]:
    """The built-in table, keyed by accelerator name as SkyPilot's catalog spells it (H100, A100-80GB...)."""
    text = resources.files("scheduler").joinpath("data/gpu_specs.csv").read_text()
    specs: dict[str, GpuSpec] = {}
    for row in csv.DictReader(text.splitlines()):
        specs[row["accelerator"]] = GpuSpec(
            name=row["accelerator"],
            memory_gib=float(row["memory_gib"]),
            bandwidth_gb_s=float(row["memory_bandwidth_gb_s"]),
            bf16_tflops=float(row["bf16_dense_tflops"]),
            fp8_tflops=_optional(row["fp8_dense_tflops"]),
            int8_tops=_optional(row["int8_dense_tops"]),
        )
    return specs
