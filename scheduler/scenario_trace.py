"""Demand from a request trace: arrival rate and request-size buckets (e.g. the Azure LLM traces).

A trace is a CSV with an arrival timestamp, prompt tokens and output tokens per request. Requests are
split into `buckets` equal-count groups by prompt length; each bucket's shape is its mean prompt and
mean output. The rate is requests per second over the trace (`mean`), or the busiest or 95th-percentile
minute (`peak_minute`, `p95_minute`) — provisioning for the mean under-serves bursts, and the headroom
alone may not cover a bursty trace.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from scheduler.model_spec import RequestShape

RateStatistic = Literal["mean", "peak_minute", "p95_minute"]

_TIME = ("timestamp", "time", "arrival_time")
_PROMPT = ("contexttokens", "prompt_tokens", "prompt", "input_tokens")
_OUTPUT = ("generatedtokens", "output_tokens", "output", "completion_tokens")


class TraceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TraceBucket:
    shape: RequestShape
    fraction: float  # of requests


@dataclass(frozen=True, slots=True)
class TraceDemandSummary:
    rps: float  # before any scaling
    buckets: tuple[TraceBucket, ...]
    requests: int
    duration_s: float


def read_trace(path: Path, buckets: int, statistic: RateStatistic = "mean") -> TraceDemandSummary:
    if buckets < 1:
        raise TraceError("buckets must be >= 1")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = {name.strip().lower(): name for name in (reader.fieldnames or [])}
            t_col, p_col, o_col = (_column(cols, names, path) for names in (_TIME, _PROMPT, _OUTPUT))
            rows = [(_time(r[t_col]), int(float(r[p_col])), int(float(r[o_col]))) for r in reader]
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError) as exc:
        raise TraceError(f"bad row in trace {path}: {exc}") from exc
    rows = [r for r in rows if r[1] > 0 and r[2] > 0]
    if len(rows) < 2:
        raise TraceError(f"trace {path} has fewer than two usable requests")
    times = sorted(r[0] for r in rows)
    duration = times[-1] - times[0]
    if duration <= 0:
        raise TraceError(f"trace {path} spans no time")
    rps = _rate(times, duration, statistic)
    by_prompt = sorted(rows, key=lambda r: r[1])
    n = len(by_prompt)
    k = min(buckets, n)
    out: list[TraceBucket] = []
    for b in range(k):
        part = by_prompt[b * n // k : (b + 1) * n // k]
        prompt = max(1, round(sum(r[1] for r in part) / len(part)))
        output = max(1, round(sum(r[2] for r in part) / len(part)))
        out.append(TraceBucket(RequestShape(prompt, output), len(part) / n))
    return TraceDemandSummary(rps, _merge_same_shapes(out), n, duration)


def _column(cols: dict[str, str], names: tuple[str, ...], path: Path) -> str:
    for n in names:
        if n in cols:
            return cols[n]
    raise TraceError(f"trace {path} has no column named any of {', '.join(names)}")


def _time(value: str) -> float:
    v = value.strip()
    try:
        return float(v)  # seconds
    except ValueError:
        return datetime.fromisoformat(v).timestamp()


def _rate(times: list[float], duration: float, statistic: RateStatistic) -> float:
    if statistic == "mean":
        return len(times) / duration
    start = times[0]
    per_minute = Counter(int((t - start) // 60.0) for t in times)
    minutes = max(1, math.ceil(duration / 60.0))
    full = [per_minute.get(m, 0) for m in range(minutes)]
    if statistic == "peak_minute":
        return max(full) / 60.0
    full.sort()
    return full[min(len(full) - 1, math.ceil(0.95 * len(full)) - 1)] / 60.0


def _merge_same_shapes(buckets: list[TraceBucket]) -> tuple[TraceBucket, ...]:
    merged: dict[RequestShape, float] = {}
    for b in buckets:
        merged[b.shape] = merged.get(b.shape, 0.0) + b.fraction
    return tuple(TraceBucket(s, f) for s, f in merged.items())
