"""Batch jobs in OpenAI's Batch API shape: uploaded files, batches and their per-request results.

File bytes live in the database (LargeBinary) rather than a blob directory: the API that takes the upload
and the worker that reads it may run on different hosts, the database is the one store both already
share, and a file commits or rolls back with the row that names it (no orphaned blobs after a crash).
Files are capped in size by the API, so this stays well inside what bytea/BLOB handle.

Results are keyed by (batch, custom_id) and written with insert-or-ignore: a request answered twice (a
worker died after sending it but before recording it, then the retry sent it again) still appears once
in the output, with the first answer recorded.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, case, func, select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column

from registry import audit
from registry.base import Base, CreatedAtMixin, utcnow
from registry.deployments import Deployment, DeploymentPhase
from registry.enums import str_enum
from registry.errors import Conflict, NotFound
from registry.model_versions import resolve_version

COMPLETION_WINDOW = timedelta(hours=24)


class FilePurpose(enum.StrEnum):
    BATCH = "batch"
    BATCH_OUTPUT = "batch_output"


class BatchStatus(enum.StrEnum):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED})
# How a run ends, as the workflow reports it to `finalize`.
OUTCOMES = frozenset({BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED, BatchStatus.FAILED})


class BatchFile(CreatedAtMixin, Base):
    __tablename__ = "batch_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[str] = mapped_column(String(64), unique=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[FilePurpose] = mapped_column(str_enum(FilePurpose))
    size: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer, default=0)  # records (non-blank lines)
    created_by: Mapped[str] = mapped_column(String(128))
    # Deferred: listing files never loads their bytes.
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))


class Batch(CreatedAtMixin, Base):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), unique=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64), index=True)
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[BatchStatus] = mapped_column(str_enum(BatchStatus), default=BatchStatus.VALIDATING)
    total: Mapped[int] = mapped_column(Integer)
    # Every request on an input line <= this has a result (a chunk reads only what follows; 0: none known).
    answered_through_line: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    errors: Mapped[list[Any]] = mapped_column(default=list)  # [{code, message, line, param}]
    output_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    error_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_by: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    in_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    finalizing_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    expired_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelling_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class BatchResult(CreatedAtMixin, Base):
    """One answered request of a batch: the replica's answer (any status) or an error that had no answer."""

    __tablename__ = "batch_results"
    __table_args__ = (UniqueConstraint("batch_id", "custom_id"), Index("ix_batch_results_batch_line", "batch_id", "line"))

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    custom_id: Mapped[str] = mapped_column(String(512))
    line: Mapped[int] = mapped_column(Integer)  # 1-based line in the input file: the output keeps its order
    request_id: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    body: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # {code, message}
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


# ---- files ----------------------------------------------------------------------------------------


def create_file(session: Session, *, team: str, actor: str, filename: str, purpose: FilePurpose, content: bytes,
                lines: int) -> BatchFile:
    row = BatchFile(file_id=new_id("file-"), team=team, filename=filename, purpose=purpose, size=len(content),
                    lines=lines, created_by=actor, content=content, created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(session, team=team, actor=actor, action="upload", object_type="file", object_id=row.file_id,
                 details={"filename": filename, "purpose": purpose.value, "bytes": len(content)})
    return row


def get_file(session: Session, team: str, file_id: str) -> BatchFile:
    row = session.scalar(select(BatchFile).where(BatchFile.file_id == file_id, BatchFile.team == team))
    if row is None:
        raise NotFound(f"no file with id {file_id!r}")
    return row


def file_content(session: Session, team: str, file_id: str) -> bytes:
    return get_file(session, team, file_id).content


def _page(session: Session, model: type[BatchFile] | type[Batch], key: Any, team: str, after: str | None,
          limit: int, *conditions: Any) -> tuple[list[Any], bool]:
    """Newest first, `limit` rows after the row named `after` (OpenAI's cursor pagination)."""
    query = select(model).where(model.team == team, *conditions)
    if after is not None:
        anchor = session.scalar(select(model.id).where(key == after, model.team == team))
        if anchor is None:
            raise NotFound(f"no object with id {after!r} to list after")
        query = query.where(model.id < anchor)
    rows = list(session.scalars(query.order_by(model.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def list_files(session: Session, team: str, *, purpose: FilePurpose | None = None, after: str | None = None,
               limit: int = 100) -> tuple[list[BatchFile], bool]:
    conditions = [BatchFile.purpose == purpose] if purpose is not None else []
    return _page(session, BatchFile, BatchFile.file_id, team, after, limit, *conditions)


def delete_file(session: Session, *, team: str, actor: str, file_id: str) -> None:
    row = get_file(session, team, file_id)
    busy = session.scalar(select(Batch.batch_id).where(
        Batch.input_file_id == file_id, Batch.status.not_in([s.value for s in TERMINAL])).limit(1))
    if busy is not None:
        raise Conflict(f"file {file_id!r} is the input of batch {busy!r}, which has not finished")
    session.delete(row)
    audit.record(session, team=team, actor=actor, action="delete", object_type="file", object_id=file_id)


# ---- batches --------------------------------------------------------------------------------------


def create_batch(session: Session, *, team: str, actor: str, input_file: BatchFile, endpoint: str,
                 completion_window: str, metadata: dict[str, str]) -> Batch:
    now = utcnow()
    row = Batch(batch_id=new_id("batch_"), team=team, endpoint=endpoint, input_file_id=input_file.file_id,
                completion_window=completion_window, status=BatchStatus.VALIDATING, total=input_file.lines,
                metadata_=metadata, errors=[], created_by=actor, created_at=now,
                expires_at=now + COMPLETION_WINDOW)
    session.add(row)
    session.flush()
    audit.record(session, team=team, actor=actor, action="create", object_type="batch", object_id=row.batch_id,
                 details={"endpoint": endpoint, "input_file_id": input_file.file_id, "total": input_file.lines})
    return row


def get_batch(session: Session, team: str | None, batch_id: str) -> Batch:
    """`team=None` for the worker, which acts for every team."""
    query = select(Batch).where(Batch.batch_id == batch_id)
    if team is not None:
        query = query.where(Batch.team == team)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no batch with id {batch_id!r}")
    return row


def list_batches(session: Session, team: str, *, after: str | None = None, limit: int = 20
                 ) -> tuple[list[Batch], bool]:
    return _page(session, Batch, Batch.batch_id, team, after, limit)


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    completed: int
    failed: int
    prompt_tokens: int = 0
    completion_tokens: int = 0


def counts(session: Session, batch: Batch) -> Counts:
    row = session.execute(
        select(func.count(BatchResult.id),
               func.coalesce(func.sum(case((BatchResult.succeeded, 1), else_=0)), 0),
               func.coalesce(func.sum(BatchResult.prompt_tokens), 0),
               func.coalesce(func.sum(BatchResult.completion_tokens), 0))
        .where(BatchResult.batch_id == batch.id)
    ).one()
    done, ok, prompt, completion = (int(v) for v in row)
    return Counts(batch.total, ok, done - ok, prompt, completion)


def request_cancel(session: Session, *, team: str, actor: str, batch_id: str) -> Batch:
    """validating/in_progress → cancelling (the workflow finishes the job). Repeating it changes nothing."""
    row = get_batch(session, team, batch_id)
    if row.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
        return row
    if row.status not in (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS):
        raise Conflict(f"cannot cancel a batch with status {row.status.value!r}")
    row.status = BatchStatus.CANCELLING
    row.cancelling_at = utcnow()
    audit.record(session, team=team, actor=actor, action="cancel", object_type="batch", object_id=batch_id)
    return row


def mark_failed(session: Session, batch: Batch, errors: list[dict[str, Any]]) -> None:
    """A batch that could not run at all (e.g. the workflow could not be started)."""
    if batch.status.is_terminal:
        return
    batch.status = BatchStatus.FAILED
    batch.failed_at = utcnow()
    batch.errors = errors


def mark_in_progress(session: Session, batch: Batch) -> None:
    """validating → in_progress; any other status stays (a repeat, or a cancel that came first)."""
    if batch.status is BatchStatus.VALIDATING:
        batch.status = BatchStatus.IN_PROGRESS
        batch.in_progress_at = utcnow()


def done_custom_ids(session: Session, batch: Batch, after_line: int = 0) -> set[str]:
    """custom_ids with a result, among the requests on input lines after `after_line`."""
    return set(session.scalars(select(BatchResult.custom_id)
                               .where(BatchResult.batch_id == batch.id, BatchResult.line > after_line)))


@dataclass(frozen=True, slots=True)
class ResultRecord:
    custom_id: str
    line: int
    request_id: str
    succeeded: bool
    status_code: int | None
    body: dict[str, Any] | None
    error: dict[str, Any] | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def record_results(session: Session, batch: Batch, records: list[ResultRecord]) -> None:
    """Insert-or-ignore on (batch, custom_id): the first recorded answer wins, repeats are dropped."""
    if not records:
        return
    now = utcnow()
    values = [{"batch_id": batch.id, "custom_id": r.custom_id, "line": r.line, "request_id": r.request_id,
               "succeeded": r.succeeded, "status_code": r.status_code, "body": r.body, "error": r.error,
               "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens, "created_at": now}
              for r in records]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(BatchResult).values(values).on_conflict_do_nothing(
        index_elements=["batch_id", "custom_id"])
    session.execute(statement)


def results_of(session: Session, batch: Batch) -> list[BatchResult]:
    return list(session.scalars(select(BatchResult).where(BatchResult.batch_id == batch.id)
                                .order_by(BatchResult.line)))


def begin_finalizing(session: Session, batch: Batch) -> None:
    if not batch.status.is_terminal and batch.status is not BatchStatus.FINALIZING:
        batch.finalizing_at = utcnow()
        if batch.status is not BatchStatus.CANCELLING:
            batch.status = BatchStatus.FINALIZING


def finish(session: Session, batch: Batch, outcome: BatchStatus, *, output: bytes, errors: bytes,
           failure: list[dict[str, Any]] | None = None) -> None:
    """Write the output and error files (only when they have lines) and set the final status. Idempotent:
    a batch that already finished keeps its files and status."""
    if batch.status.is_terminal:
        return
    if outcome not in OUTCOMES:
        raise ValueError(f"{outcome} is not a final status")
    now = utcnow()
    for content, attribute, kind in ((output, "output_file_id", "output"), (errors, "error_file_id", "errors")):
        if content:
            row = BatchFile(file_id=new_id("file-"), team=batch.team, filename=f"{batch.batch_id}_{kind}.jsonl",
                            purpose=FilePurpose.BATCH_OUTPUT, size=len(content),
                            lines=content.count(b"\n"), created_by="system:batch", content=content, created_at=now)
            session.add(row)
            setattr(batch, attribute, row.file_id)
    batch.status = outcome
    stamp = {BatchStatus.COMPLETED: "completed_at", BatchStatus.CANCELLED: "cancelled_at",
             BatchStatus.EXPIRED: "expired_at", BatchStatus.FAILED: "failed_at"}[outcome]
    setattr(batch, stamp, now)
    if failure:
        batch.errors = failure
    audit.record(session, team=batch.team, actor="system:batch", action=outcome.value, object_type="batch",
                 object_id=batch.batch_id)


# ---- where a request goes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    deployment: str
    deployment_id: int
    version: str  # the version that answers: pinned by `deployment@ref`, else the deployment's own


def resolve_target(session: Session, team: str, model: str) -> Target:
    """`model` as a client writes it: `deployment`, `deployment@version` or `deployment@alias`, of the team.
    Raises NotFound (unknown, another team's, or being deleted) or Invalid (unknown version or alias)."""
    name, _, ref = model.partition("@")
    row = session.scalar(select(Deployment).where(Deployment.name == name, Deployment.team == team))
    if row is None or row.phase is not DeploymentPhase.ACTIVE:
        raise NotFound(f"the model {model!r} does not exist or you do not have access to it")
    version = resolve_version(row.model, ref).version if ref else row.model_version.version
    return Target(row.name, row.id, version)
