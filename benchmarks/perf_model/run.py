"""Benchmark: the performance model against published TensorRT-LLM offline throughput, row by row.

    .venv/bin/python -m benchmarks.perf_model.run            # table + summary (plain text)
    .venv/bin/python -m benchmarks.perf_model.run --markdown # the same as a Markdown table
    .venv/bin/python -m benchmarks.perf_model.run --fit      # grid-search the efficiency factors again
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scheduler.calibration import (  # noqa: E402
    ENGINE_MAX_SEQS,
    FIT_GRID,
    RowResult,
    Summary,
    evaluate,
    fit,
    published_rows,
    summarise,
)
from scheduler.efficiency import Efficiency  # noqa: E402

COLUMNS = (
    "model", "gpu", "tp", "precision", "isl", "osl",
    "published tok/s", "predicted tok/s", "ratio", "batch", "limit",
)


def _cells(r: RowResult) -> tuple[str, ...]:
    row = r.row
    flag = "" if abs(math.log(r.ratio)) <= math.log(2) else " (outside 2x)"
    return (
        row.arch.name,
        row.gpu,
        str(row.tp),
        row.variant.name,
        str(row.shape.prompt_tokens),
        str(row.shape.output_tokens),
        f"{row.output_tok_s:,.0f}",
        f"{r.predicted_tok_s:,.0f}",
        f"{r.ratio:.2f}{flag}",
        str(r.batch),
        r.limit,
    )


def _summary_lines(s: Summary) -> list[str]:
    return [
        f"rows: {s.rows}",
        f"geometric mean ratio (predicted / published): {s.geomean_ratio:.3f}",
        f"worst ratio: {s.worst_ratio:.2f}",
        f"rows outside 2x: {s.outside_2x}",
        f"RMS log error: {s.rms_log_error:.3f} (typical error {math.expm1(s.rms_log_error) * 100:.0f}%)",
    ]


def render_text(results: Sequence[RowResult], summary: Summary) -> str:
    table = [COLUMNS, *(_cells(r) for r in results)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in table]
    return "\n".join([*lines, "", *_summary_lines(summary)])


def render_markdown(results: Sequence[RowResult], summary: Summary) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    return "\n".join([*lines, "", *(f"- {line}" for line in _summary_lines(summary))])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--fit", action="store_true", help="grid-search the efficiency factors first")
    args = parser.parse_args(argv)

    rows = published_rows()
    efficiency = Efficiency()
    if args.fit:
        efficiency, _ = fit(efficiency, rows, FIT_GRID)
        fitted = {k: v for k, v in asdict(efficiency).items() if k in FIT_GRID}
        print(f"fitted factors: {fitted}\n")
    results = evaluate(efficiency, rows)
    summary = summarise(results)
    print(f"engine limits: max batch {ENGINE_MAX_SEQS}, KV reserved for the whole output (TensorRT-LLM)\n")
    print(render_markdown(results, summary) if args.markdown else render_text(results, summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
