"""Which tensor-core precision a variant computes in, and the peak FLOPs that gives on a GPU.

Variant carries only byte sizes, so the compute precision is read from its name:
- fp8 / w8a8-fp8 variants run fp8 GEMMs where the GPU has fp8 tensor cores, otherwise bf16
  (vLLM falls back to weight-only fp8 on Ampere: bf16 math).
- fp4 variants (nvfp4, mxfp4) use the fp8 peak: the GPU table has no fp4 column, and crediting
  Blackwell's fp4 tensor cores (2x fp8) would over-predict the published B200 FP4 throughput by
  1.3-1.65x (see docs/benchmarks/perf_model.md), so the fp8 peak is both conservative and the better fit.
- int8 w8a8 variants use int8 TOPS where listed.
- weight-only int4 (awq, gptq, int4) and everything else compute in bf16.
"""

from __future__ import annotations

from enum import Enum

from scheduler.hardware import GpuSpec
from scheduler.model_spec import Variant


class ComputePrecision(str, Enum):
    BF16 = "bf16"
    FP8 = "fp8"
    INT8 = "int8"


def compute_precision(variant: Variant) -> ComputePrecision:
    name = variant.name.lower()
    if "fp8" in name or "fp4" in name:
        return ComputePrecision.FP8
    if "w8a8" in name or name in ("int8", "int8-sq", "smoothquant"):
        return ComputePrecision.INT8
    return ComputePrecision.BF16


def peak_flops(gpu: GpuSpec, variant: Variant) -> float:
    """Dense peak FLOP/s of one GPU for the variant's GEMMs (falls back to bf16 where unsupported)."""
    precision = compute_precision(variant)
    if precision is ComputePrecision.FP8 and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    if precision is ComputePrecision.INT8 and gpu.int8_tops:
        return gpu.int8_tops * 1e12
    return gpu.bf16_tflops * 1e12
