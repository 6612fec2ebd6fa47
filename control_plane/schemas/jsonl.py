"""Validating a JSONL file record by record against a pydantic model, naming the line of every bad record.

Shared by the Batch API (request files) and `llmfleet eval` (datasets): both must report every bad line at
once, not just the first, so a user fixes a file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

MAX_REPORTED = 100  # errors listed in full; the count says how many more there were


@dataclass(frozen=True, slots=True)
class LineError:
    line: int  # 1-based physical line
    field: str  # dotted path inside the record, "" for the record as a whole
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.field}" if self.field else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Parsed(Generic[M]):
    records: list[tuple[int, M]]  # (line, record), blank lines skipped
    errors: list[LineError]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, limit: int = 5) -> str:
        shown = "; ".join(str(e) for e in self.errors[:limit])
        more = len(self.errors) - limit
        return shown + (f"; and {more} more" if more > 0 else "")


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_jsonl(content: bytes, model: type[M], *, max_records: int | None = None) -> Parsed[M]:
    """Every non-blank line must be one JSON object that `model` accepts."""
    records: list[tuple[int, M]] = []
    errors: list[LineError] = []
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            errors.append(LineError(number, "", f"not valid JSON ({error.msg})"))
            continue
        if not isinstance(value, dict):
            errors.append(LineError(number, "", f"expected a JSON object, got {type(value).__name__}"))
            continue
        try:
            records.append((number, model.model_validate(value)))
        except ValidationError as error:
            for item in error.errors(include_url=False):
                errors.append(LineError(number, _field(tuple(item["loc"])), item["msg"]))
    if max_records is not None and len(records) > max_records:
        errors.append(LineError(records[max_records][0], "", f"more than {max_records} records in one file"))
    if not records and not errors:
        errors.append(LineError(1, "", "the file has no records"))
    return Parsed(records, errors)
