"""Architectures and variants of well-known models (numbers from their published configs).

Used by the calibration against published throughput, by tests and as demo models.
"""

from __future__ import annotations

from scheduler.model_spec import ModelArch, Variant

LLAMA_3_1_8B = ModelArch(
    name="Llama-3.1-8B", params_b=8.03, layers=32, hidden=4096, kv_heads=8, head_dim=128, context=131072
)
LLAMA_3_3_70B = ModelArch(
    name="Llama-3.3-70B", params_b=70.6, layers=80, hidden=8192, kv_heads=8, head_dim=128, context=131072
)

ARCHS: dict[str, ModelArch] = {arch.name: arch for arch in (LLAMA_3_1_8B, LLAMA_3_3_70B)}

BF16 = Variant("bf16", bytes_per_param=2.0)
# NVIDIA's ModelOpt fp8/fp4 checkpoints also quantise the KV cache to fp8.
FP8 = Variant("fp8", bytes_per_param=1.0, kv_bytes_per_elem=1.0)
# NVFP4: 4-bit values plus one fp8 scale per 16 values = 4.5 bits per parameter.
NVFP4 = Variant("nvfp4", bytes_per_param=0.5625, kv_bytes_per_elem=1.0)
AWQ_INT4 = Variant("awq-int4", bytes_per_param=0.5625)  # 4-bit weights + group-128 scales/zeros, bf16 KV

VARIANTS: dict[str, Variant] = {v.name: v for v in (BF16, FP8, NVFP4, AWQ_INT4)}
