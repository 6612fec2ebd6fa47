"""An eval dataset: JSONL, one `{"prompt": ..., "reference": ...}` record per line (an optional `id`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from control_plane.schemas.common import Strict
from control_plane.schemas.jsonl import Parsed, parse_jsonl

MAX_RECORDS = 100_000


class EvalRecord(Strict):
    prompt: Annotated[str, Field(min_length=1, max_length=1_000_000)]
    reference: Annotated[str, Field(max_length=1_000_000)]
    id: Annotated[str, Field(min_length=1, max_length=256)] | None = None


def load_dataset(path: Path) -> Parsed[EvalRecord]:
    """Raises OSError when the file cannot be read; bad records come back as line errors."""
    return parse_jsonl(path.read_bytes(), EvalRecord, max_records=MAX_RECORDS)
