"""Read a request trace (timestamp, prompt tokens, output tokens per row) into arrival offsets.

Accepts the Azure LLM inference trace columns (`TIMESTAMP,ContextTokens,GeneratedTokens`) and the generic
`timestamp,prompt_tokens,output_tokens`; timestamps are ISO 8601 or seconds. Bad rows are all named, by line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

TIME_COLUMNS = ("TIMESTAMP", "timestamp", "time")
PROMPT_COLUMNS = ("ContextTokens", "prompt_tokens", "input_tokens")
OUTPUT_COLUMNS = ("GeneratedTokens", "output_tokens", "completion_tokens")
MAX_ERRORS_SHOWN = 5


class TraceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Arrival:
    at_s: float  # seconds after the replay starts
    prompt_tokens: int
    output_tokens: int


def _seconds(value: str) -> float:
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def _pick(header: list[str], names: tuple[str, ...], path: Path) -> str:
    for name in names:
        if name in header:
            return name
    raise TraceError(f"{path}: no column named any of {', '.join(names)} (columns: {', '.join(header)})")


def read_arrivals(path: Path, *, speed: float = 1.0, skip_s: float = 0.0, duration_s: float | None = None,
                  limit: int | None = None) -> list[Arrival]:
    """Arrivals in time order, relative to the first kept one; `speed` 2 replays twice as fast."""
    if speed <= 0:
        raise TraceError("speed must be positive")
    try:
        handle = path.open(newline="")
    except OSError as error:
        raise TraceError(f"cannot read {path}: {error.strerror}") from None
    rows: list[tuple[float, int, int]] = []
    errors: list[str] = []
    with handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        t_col, p_col, o_col = (_pick(header, names, path) for names in (TIME_COLUMNS, PROMPT_COLUMNS, OUTPUT_COLUMNS))
        for line, row in enumerate(reader, start=2):
            try:
                t, p, o = _seconds(row[t_col] or ""), int(row[p_col] or ""), int(row[o_col] or "")
            except (ValueError, TypeError):
                errors.append(f"line {line}: expected a timestamp and two token counts")
                continue
            if p < 0 or o < 0:
                errors.append(f"line {line}: token counts must not be negative")
                continue
            rows.append((t, p, o))
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise TraceError(f"{path}: " + "; ".join(errors[:MAX_ERRORS_SHOWN]) + more)
    if not rows:
        raise TraceError(f"{path}: no requests in the trace")
    rows.sort()
    start = rows[0][0] + skip_s
    arrivals: list[Arrival] = []
    for t, p, o in rows:
        if t < start:
            continue
        at = (t - start) / speed
        if duration_s is not None and at > duration_s:
            break
        arrivals.append(Arrival(at, p, o))
        if limit is not None and len(arrivals) >= limit:
            break
    if not arrivals:
        raise TraceError(f"{path}: no requests left after --skip/--duration")
    return arrivals
