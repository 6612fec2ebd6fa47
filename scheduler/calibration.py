"""The performance model against published offline throughput (TensorRT-LLM performance overview).

The rows live in scheduler/data/trtllm_max_throughput_tok_s.csv (see PROVENANCE.md). Each row is an
offline run (unbounded backlog, no SLO) of one model, precision, GPU and tp at a fixed ISL/OSL; the
model's `max_throughput` is compared with it as a ratio predicted / published.

TensorRT-LLM is not vLLM, so the comparison runs the model with TensorRT-LLM's engine limits
(`trtllm_engine`): trtllm-bench tunes its max batch size per scenario (far above vLLM's default
max_num_seqs of 256), and its default no-evict scheduler reserves KV for the whole output up front.
Only the hardware factors (MFU, bandwidth efficiency, step overhead, tp scaling) are calibrated, and they
carry over to vLLM serving; `fit` searches them on a grid.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources

from scheduler.efficiency import Efficiency
from scheduler.known_models import ARCHS, FP8, NVFP4
from scheduler.model_spec import ModelArch, RequestShape, Variant
from scheduler.perf_model import PerfModel

DATA_FILE = "data/trtllm_max_throughput_tok_s.csv"
ENGINE_MAX_SEQS = 2048  # trtllm-bench's tuned batch sizes are in the thousands for these shapes
PRECISIONS: dict[str, Variant] = {"FP8": FP8, "FP4": NVFP4}


@dataclass(frozen=True, slots=True)
class PublishedRow:
    arch: ModelArch
    variant: Variant
    gpu: str
    tp: int
    shape: RequestShape
    output_tok_s: float


@dataclass(frozen=True, slots=True)
class RowResult:
    row: PublishedRow
    predicted_tok_s: float
    batch: int
    limit: str

    @property
    def ratio(self) -> float:
        return self.predicted_tok_s / self.row.output_tok_s


@dataclass(frozen=True, slots=True)
class Summary:
    rows: int
    geomean_ratio: float
    worst_ratio: float  # the ratio furthest from 1 (either side)
    outside_2x: int
    rms_log_error: float


def published_rows() -> list[PublishedRow]:
    text = resources.files("scheduler").joinpath(DATA_FILE).read_text()
    rows: list[PublishedRow] = []
    for raw in csv.DictReader(text.splitlines()):
        rows.append(
            PublishedRow(
                arch=ARCHS[raw["model"]],
                variant=PRECISIONS[raw["precision"]],
                gpu=raw["gpu"],
                tp=int(raw["tp"]),
                shape=RequestShape(int(raw["isl"]), int(raw["osl"])),
                output_tok_s=float(raw["total_output_tokens_per_s"]),
            )
        )
    return rows


def trtllm_engine(efficiency: Efficiency) -> Efficiency:
    """The same hardware factors with TensorRT-LLM's engine limits instead of vLLM's."""
    return replace(efficiency, max_num_seqs=ENGINE_MAX_SEQS, output_kv_reserve=1.0)


def evaluate(efficiency: Efficiency, rows: Iterable[PublishedRow]) -> list[RowResult]:
    """Predict every row with the given hardware factors (run under TensorRT-LLM's engine limits)."""
    model = PerfModel(efficiency=trtllm_engine(efficiency))
    results: list[RowResult] = []
    for row in rows:
        t = model.max_throughput(row.arch, row.variant, row.gpu, row.tp, row.shape)
        results.append(RowResult(row, t.output_tokens_per_s, t.batch, t.reason))
    return results


def summarise(results: Sequence[RowResult]) -> Summary:
    logs = [math.log(r.ratio) if r.ratio > 0 else -math.inf for r in results]
    worst = max(results, key=lambda r: abs(math.log(r.ratio)) if r.ratio > 0 else math.inf)
    return Summary(
        rows=len(results),
        geomean_ratio=math.exp(sum(logs) / len(logs)),
        worst_ratio=worst.ratio,
        outside_2x=sum(1 for x in logs if abs(x) > math.log(2)),
        rms_log_error=math.sqrt(sum(x * x for x in logs) / len(logs)),
    )


# Grid searched by `fit`; the defaults in Efficiency are its result (see docs/benchmarks/perf_model.md).
FIT_GRID: dict[str, tuple[float, ...]] = {
    "prefill_mfu": (0.5, 0.55, 0.6, 0.65, 0.7, 0.75),
    "decode_mfu": (0.3, 0.35, 0.4, 0.45),
    "bandwidth_efficiency": (0.6, 0.65, 0.7, 0.75, 0.8),
    "kv_bandwidth_efficiency": (0.45, 0.5, 0.55, 0.6, 0.65, 0.7),
    # Held at a plausible engine value: the published rows barely constrain it (the fit is flat from
    # 0.5 to 3 ms), and a large value would wrongly penalise small-batch TPOT.
    "step_overhead_s": (0.001,),
    "tp_scaling": (0.85, 0.9, 0.95),
}


def fit(
    base: Efficiency | None = None,
    rows: Sequence[PublishedRow] | None = None,
    grid: dict[str, tuple[float, ...]] | None = None,
) -> tuple[Efficiency, Summary]:
    """Exhaustive search of the grid minimising the RMS log error of predicted / published."""
    base = base if base is not None else Efficiency()
    rows = rows if rows is not None else published_rows()
    grid = grid if grid is not None else FIT_GRID
    names = list(grid)
    best: tuple[float, Efficiency, Summary] | None = None
    for values in itertools.product(*(grid[n] for n in names)):
        eff = replace(base, **dict(zip(names, values)))
        summary = summarise(evaluate(eff, rows))
        if best is None or summary.rms_log_error < best[0]:
            best = (summary.rms_log_error, eff, summary)
    assert best is not None
    return best[1], best[2]
