"""Schemas of the Batch API, in OpenAI's exact shapes (`file`, `batch`, lists), and of one request line."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from control_plane.schemas.common import Strict
from control_plane.schemas.jsonl import LineError, Parsed, parse_jsonl
from registry.batches import Batch, BatchFile, Counts

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")
Endpoint = Literal["/v1/chat/completions", "/v1/completions"]
MAX_REQUESTS = 50_000  # per batch, as OpenAI
FileId = Annotated[str, Field(pattern=r"^file-[A-Za-z0-9]{1,60}$")]
BatchId = Annotated[str, Field(pattern=r"^batch_[A-Za-z0-9]{1,60}$")]
# custom_id ends up in output lines and a unique index: no control characters, bounded.
CustomId = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]


# ---- one line of an input file ---------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Annotated[str, Field(min_length=1, max_length=64)]


class RequestBody(BaseModel):
    """What the replica gets. Only what routing needs is checked; other OpenAI parameters pass through."""

    model_config = ConfigDict(extra="allow")
    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[ChatMessage], Field(min_length=1)] | None = None
    prompt: str | Annotated[list[str], Field(min_length=1)] | Annotated[list[int], Field(min_length=1)] | None = None
    stream: bool | None = None

    @field_validator("stream")
    @classmethod
    def _not_streaming(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("batch requests cannot stream")
        return value


class BatchRequestLine(Strict):
    custom_id: CustomId
    method: Literal["POST"]
    url: Endpoint
    body: RequestBody

    @model_validator(mode="after")
    def _body_fits_url(self) -> BatchRequestLine:
        if self.url == "/v1/chat/completions" and self.body.messages is None:
            raise ValueError("a /v1/chat/completions body needs `messages`")
        if self.url == "/v1/completions" and self.body.prompt is None:
            raise ValueError("a /v1/completions body needs `prompt`")
        return self


def parse_batch_file(content: bytes) -> Parsed[BatchRequestLine]:
    """Schema errors per line, plus duplicate custom_ids (they key the results) naming both lines."""
    parsed = parse_jsonl(content, BatchRequestLine, max_records=MAX_REQUESTS)
    first: dict[str, int] = {}
    duplicates: list[LineError] = []
    for line, record in parsed.records:
        seen = first.setdefault(record.custom_id, line)
        if seen != line:
            duplicates.append(LineError(line, "custom_id", f"duplicate custom_id {record.custom_id!r} "
                                                           f"(first on line {seen})"))
    if not duplicates:
        return parsed
    return Parsed(parsed.records, sorted([*parsed.errors, *duplicates], key=lambda e: e.line))


# ---- API bodies -----------------------------------------------------------------------------------


class OutputExpiresAfter(Strict):
    anchor: Literal["created_at"]
    seconds: Annotated[int, Field(ge=3600, le=30 * 86400)]


class BatchCreate(Strict):
    input_file_id: FileId
    endpoint: Endpoint
    completion_window: Literal["24h"]
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None = None
    # Accepted for compatibility with the official client; output files here live until deleted.
    output_expires_after: OutputExpiresAfter | None = None

    @field_validator("metadata")
    @classmethod
    def _at_most_16(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and len(value) > 16:
            raise ValueError("metadata takes at most 16 key-value pairs")
        return value


def _epoch(at: datetime | None) -> int | None:
    return int(at.timestamp()) if at is not None else None


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None

    @classmethod
    def of(cls, row: BatchFile) -> FileObject:
        return cls(id=row.file_id, bytes=row.size, created_at=_epoch(row.created_at) or 0, filename=row.filename,
                   purpose=row.purpose.value)


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchErrorItem(BaseModel):
    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchErrorItem]


class Usage(BaseModel):
    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int


class BatchObject(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts
    usage: Usage
    metadata: dict[str, str] | None

    @classmethod
    def of(cls, row: Batch, counts: Counts) -> BatchObject:
        errors = BatchErrors(data=[BatchErrorItem(**e) for e in row.errors]) if row.errors else None
        return cls(
            id=row.batch_id, endpoint=row.endpoint, errors=errors, input_file_id=row.input_file_id,
            completion_window=row.completion_window, status=row.status.value, output_file_id=row.output_file_id,
            error_file_id=row.error_file_id, created_at=_epoch(row.created_at) or 0,
            in_progress_at=_epoch(row.in_progress_at), expires_at=_epoch(row.expires_at),
            finalizing_at=_epoch(row.finalizing_at), completed_at=_epoch(row.completed_at),
            failed_at=_epoch(row.failed_at), expired_at=_epoch(row.expired_at),
            cancelling_at=_epoch(row.cancelling_at), cancelled_at=_epoch(row.cancelled_at),
            request_counts=RequestCounts(total=counts.total, completed=counts.completed, failed=counts.failed),
            usage=Usage(input_tokens=counts.prompt_tokens, input_tokens_details={"cached_tokens": 0},
                        output_tokens=counts.completion_tokens, output_tokens_details={"reasoning_tokens": 0},
                        total_tokens=counts.prompt_tokens + counts.completion_tokens),
            metadata=dict(row.metadata_) or None,
        )


class ListPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileList(ListPage):
    data: list[FileObject]


class BatchList(ListPage):
    data: list[BatchObject]
