"""The Batch API in OpenAI's shape: `/v1/files` (JSONL uploads and results) and `/v1/batches`.

Any key of the team may use it (read scope, like calling a model at the gateway); a team sees only its own
files and batches. Input files are validated on upload (schema, duplicate custom_ids) and again on batch
creation (every line's url is the batch's endpoint, every model a deployment the team may call), each bad
record named by its line. A batch runs as the Temporal `BatchWorkflow` (`batch-{id}`); without Temporal,
creating one answers 503.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from control_plane.deps import Reader, SessionDep, app_state
from control_plane.problems import ProblemException
from control_plane.schemas.batches import (
    BatchCreate,
    BatchList,
    BatchObject,
    FileDeleted,
    FileList,
    FileObject,
    parse_batch_file,
)
from control_plane.schemas.jsonl import LineError
from registry import batches as registry
from registry.batches import BatchStatus, FilePurpose
from registry.db import transaction
from registry.errors import Invalid, NotFound

router = APIRouter(tags=["batches"])
log = logging.getLogger(__name__)

FileIdPath = Annotated[str, Path(pattern=r"^file-[A-Za-z0-9]{1,60}$")]
BatchIdPath = Annotated[str, Path(pattern=r"^batch_[A-Za-z0-9]{1,60}$")]
After = Annotated[str | None, Query(pattern=r"^(file-|batch_)[A-Za-z0-9]{1,60}$")]
FILENAME_MAX = 255


def _bad_lines(errors: list[LineError], what: str) -> ProblemException:
    shown = "; ".join(str(e) for e in errors[:5])
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return ProblemException(422, f"{what}: {len(errors)} bad record(s): {shown}{more}", kind="validation-error",
                            errors=[e.as_dict() for e in errors[:1000]])


# ---- files ----------------------------------------------------------------------------------------


@router.post("/v1/files", response_model=FileObject)
def upload_file(
    request: Request, session: SessionDep, principal: Reader,
    file: Annotated[UploadFile, File(description="a JSONL file of batch requests")],
    purpose: Annotated[str, Form()],
) -> FileObject:
    if purpose != FilePurpose.BATCH.value:
        raise ProblemException(422, f"purpose {purpose!r} is not supported here; use 'batch'",
                               kind="validation-error", errors=[{"field": "purpose", "message": "must be 'batch'"}])
    limit = app_state(request).settings.max_file_bytes
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise ProblemException(413, f"the file is over {limit} bytes")
    parsed = parse_batch_file(content)
    if not parsed.ok:
        raise _bad_lines(parsed.errors, "the batch input file is invalid")
    filename = (file.filename or "upload.jsonl").replace("\x00", "")[:FILENAME_MAX]
    row = registry.create_file(session, team=principal.team, actor=principal.actor, filename=filename,
                               purpose=FilePurpose.BATCH, content=content, lines=len(parsed.records))
    return FileObject.of(row)


@router.get("/v1/files", response_model=FileList)
def list_files(
    session: SessionDep, principal: Reader, after: After = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    purpose: Annotated[FilePurpose | None, Query()] = None,
) -> FileList:
    rows, more = registry.list_files(session, principal.team, purpose=purpose, after=after, limit=limit)
    data = [FileObject.of(r) for r in rows]
    return FileList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                    has_more=more)


@router.get("/v1/files/{file_id}", response_model=FileObject)
def get_file(file_id: FileIdPath, session: SessionDep, principal: Reader) -> FileObject:
    return FileObject.of(registry.get_file(session, principal.team, file_id))


@router.get("/v1/files/{file_id}/content", response_class=Response,
            responses={200: {"content": {"application/jsonl": {}}}})
def get_file_content(file_id: FileIdPath, session: SessionDep, principal: Reader) -> Response:
    return Response(registry.file_content(session, principal.team, file_id), media_type="application/jsonl")


@router.delete("/v1/files/{file_id}", response_model=FileDeleted)
def delete_file(file_id: FileIdPath, session: SessionDep, principal: Reader) -> FileDeleted:
    registry.delete_file(session, team=principal.team, actor=principal.actor, file_id=file_id)
    return FileDeleted(id=file_id)


# ---- batches --------------------------------------------------------------------------------------


def _check_requests(session: Session, team: str, content: bytes, endpoint: str) -> None:
    """Every line must target the batch's endpoint and a model the team may call."""
    parsed = parse_batch_file(content)
    errors = list(parsed.errors)
    models: dict[str, str | None] = {}
    for line, record in parsed.records:
        if record.url != endpoint:
            errors.append(LineError(line, "url", f"{record.url!r} differs from the batch endpoint {endpoint!r}"))
        model = record.body.model
        if model not in models:
            try:
                registry.resolve_target(session, team, model)
                models[model] = None
            except (NotFound, Invalid) as error:
                models[model] = error.detail
        if models[model] is not None:
            errors.append(LineError(line, "body.model", str(models[model])))
    if errors:
        raise _bad_lines(sorted(errors, key=lambda e: e.line), "the batch's requests are invalid")


def _public(session: Session, row: registry.Batch) -> BatchObject:
    return BatchObject.of(row, registry.counts(session, row))


@router.post("/v1/batches", response_model=BatchObject)
def create_batch(
    body: BatchCreate, request: Request, session: SessionDep, principal: Reader, background: BackgroundTasks,
) -> JSONResponse:
    link = request.app.state.temporal
    if link is None:
        raise ProblemException(503, "batches run as Temporal workflows and this control plane has no Temporal "
                               "configured (set LLMFLEET_TEMPORAL_ADDRESS)", kind="temporal-not-configured")
    source = registry.get_file(session, principal.team, body.input_file_id)
    if source.purpose is not FilePurpose.BATCH:
        raise Invalid(f"file {source.file_id!r} has purpose {source.purpose.value!r}, not 'batch'",
                      field="input_file_id")
    _check_requests(session, principal.team, source.content, body.endpoint)
    row = registry.create_batch(session, team=principal.team, actor=principal.actor, input_file=source,
                                endpoint=body.endpoint, completion_window=body.completion_window,
                                metadata=dict(body.metadata or {}))
    settings = app_state(request).settings
    batch_id, sessions = row.batch_id, app_state(request).sessions

    async def start() -> None:
        # After the commit (background tasks run once the response is out), so the workflow finds the row.
        from workflows.batch import BatchInput, start_batch

        try:
            await start_batch(await link.client(), link.task_queue,
                              BatchInput(batch_id, settings.batch_chunk_size, settings.batch_concurrency,
                                         heartbeat_timeout_s=settings.batch_heartbeat_timeout_s))
        except Exception as error:  # noqa: BLE001 - recorded on the batch, which the caller polls
            log.exception("could not start the workflow of batch %s", batch_id)
            with transaction(sessions) as s:
                registry.mark_failed(s, registry.get_batch(s, None, batch_id), [
                    {"code": "workflow_not_started", "message": f"could not start the batch workflow: {error}"}])

    background.add_task(start)
    return JSONResponse(_public(session, row).model_dump(mode="json"), background=background)


@router.get("/v1/batches", response_model=BatchList)
def list_batches(
    session: SessionDep, principal: Reader, after: After = None, limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    rows, more = registry.list_batches(session, principal.team, after=after, limit=limit)
    data = [_public(session, r) for r in rows]
    return BatchList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                     has_more=more)


@router.get("/v1/batches/{batch_id}", response_model=BatchObject)
def get_batch(batch_id: BatchIdPath, session: SessionDep, principal: Reader) -> BatchObject:
    return _public(session, registry.get_batch(session, principal.team, batch_id))


@router.post("/v1/batches/{batch_id}/cancel", response_model=BatchObject)
def cancel_batch(
    batch_id: BatchIdPath, request: Request, session: SessionDep, principal: Reader, background: BackgroundTasks,
) -> JSONResponse:
    before = registry.get_batch(session, principal.team, batch_id).status
    row = registry.request_cancel(session, team=principal.team, actor=principal.actor, batch_id=batch_id)
    link = request.app.state.temporal
    if link is not None and before is not BatchStatus.CANCELLING:

        async def signal() -> None:
            # Best effort: the workflow also sees `cancelling` in the registry before each chunk.
            from workflows.batch import signal_cancel

            try:
                await signal_cancel(await link.client(), batch_id)
            except Exception:  # noqa: BLE001
                log.warning("could not signal the cancel of batch %s; the workflow reads it from the registry",
                            batch_id, exc_info=True)

        background.add_task(signal)
    return JSONResponse(_public(session, row).model_dump(mode="json"), background=background)
