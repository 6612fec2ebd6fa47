"""Architecture numbers for a simulated model: a table of known families, else a dense-transformer rule.

`llmfleet sim --model NAME [--params-b N]` only gets a name and maybe a size. Known families map to their
published configs; anything else is sized from its parameter count (given, or read from the name like
`foo-13b`) with the usual dense decoder shape: params ~= 12 * layers * hidden^2 and hidden ~= 128 * layers
(Llama-3-8B: 32 x 4096; Llama-3-70B: 80 x 8192), grouped-query attention with 8 KV heads of 128.
"""

from __future__ import annotations

import math
import re

from scheduler.known_models import ARCHS as SCHEDULER_ARCHS
from scheduler.known_models import VARIANTS as SCHEDULER_VARIANTS
from scheduler.model_spec import ModelArch, Variant

# Published configs (config.json of each model); scheduler.known_models wins where it has the family.
_EXTRA_ARCHS: tuple[ModelArch, ...] = (
    ModelArch("Llama-3.2-1B", params_b=1.24, layers=16, hidden=2048, kv_heads=8, head_dim=64, context=131072),
    ModelArch("Llama-3.2-3B", params_b=3.21, layers=28, hidden=3072, kv_heads=8, head_dim=128, context=131072),
    ModelArch("Llama-3.1-70B", params_b=70.6, layers=80, hidden=8192, kv_heads=8, head_dim=128, context=131072),
    ModelArch("Llama-3.1-405B", params_b=405.9, layers=126, hidden=16384, kv_heads=8, head_dim=128, context=131072),
    ModelArch("Mistral-7B", params_b=7.25, layers=32, hidden=4096, kv_heads=8, head_dim=128, context=32768),
    ModelArch("Qwen2.5-7B", params_b=7.62, layers=28, hidden=3584, kv_heads=4, head_dim=128, context=32768),
    ModelArch("Qwen2.5-14B", params_b=14.7, layers=48, hidden=5120, kv_heads=8, head_dim=128, context=32768),
    ModelArch("Qwen2.5-32B", params_b=32.8, layers=64, hidden=5120, kv_heads=8, head_dim=128, context=32768),
    ModelArch("Qwen2.5-72B", params_b=72.7, layers=80, hidden=8192, kv_heads=8, head_dim=128, context=32768),
)
KNOWN_ARCHS: dict[str, ModelArch] = {a.name: a for a in _EXTRA_ARCHS} | dict(SCHEDULER_ARCHS)

_EXTRA_VARIANTS: tuple[Variant, ...] = (
    Variant("fp16", bytes_per_param=2.0),
    Variant("int8", bytes_per_param=1.0),
    Variant("w8a8", bytes_per_param=1.0),
    Variant("gptq-int4", bytes_per_param=0.5625),
)
KNOWN_VARIANTS: dict[str, Variant] = {v.name: v for v in _EXTRA_VARIANTS} | dict(SCHEDULER_VARIANTS)

DEFAULT_CONTEXT = 32768
_SIZE_IN_NAME = re.compile(r"(?<![0-9.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z])")
# A given --params-b within this fraction of a known family's size still means that family.
_SIZE_TOLERANCE = 0.15


class CatalogError(ValueError):
    """The model or variant cannot be resolved; the message is one line for the CLI."""


def _normalise(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    return base.replace("meta-", "").replace("_", "-")


def _known(name: str) -> ModelArch | None:
    wanted = _normalise(name)
    # Longest key first so "llama-3.1-70b" is not taken for a shorter family name it contains.
    for key in sorted(KNOWN_ARCHS, key=len, reverse=True):
        if wanted.startswith(key.lower()):
            return KNOWN_ARCHS[key]
    return None


def _size_from_name(name: str) -> float | None:
    match = _SIZE_IN_NAME.search(name.rsplit("/", 1)[-1])
    return float(match.group(1)) if match else None


def scaled_arch(name: str, params_b: float, context: int = DEFAULT_CONTEXT) -> ModelArch:
    """Dense decoder shape for `params_b` billion parameters (see module docstring)."""
    if params_b <= 0:
        raise CatalogError(f"params_b must be positive, got {params_b}")
    layers = max(2, round((params_b * 1e9 / (12 * 128**2)) ** (1 / 3)))
    hidden = max(256, round(math.sqrt(params_b * 1e9 / (12 * layers)) / 256) * 256)
    kv_heads = 8 if hidden >= 1024 else 1
    return ModelArch(name, params_b=params_b, layers=layers, hidden=hidden, kv_heads=kv_heads, head_dim=128,
                     context=context)


def resolve_arch(name: str, params_b: float | None = None) -> ModelArch:
    """The architecture for a served model name, optionally sized by `params_b` (billions)."""
    known = _known(name)
    if known is not None and (params_b is None or abs(params_b / known.params_b - 1) <= _SIZE_TOLERANCE):
        return ModelArch(name, known.params_b, known.layers, known.hidden, known.kv_heads, known.head_dim,
                         known.context)
    size = params_b if params_b is not None else _size_from_name(name)
    if size is None:
        raise CatalogError(
            f"unknown model {name!r}: pass --params-b (known families: {', '.join(sorted(KNOWN_ARCHS))})"
        )
    return scaled_arch(name, size)


def resolve_variant(name: str) -> Variant:
    variant = KNOWN_VARIANTS.get(name.lower())
    if variant is None:
        raise CatalogError(f"unknown variant {name!r} (known: {', '.join(sorted(KNOWN_VARIANTS))})")
    return variant
