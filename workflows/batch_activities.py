"""Activities of the BatchWorkflow: begin, run one chunk of requests, finalize. Thin and idempotent.

Where requests go: straight to ready replicas of the named deployment (and version), read from the registry
like the routing table, cheapest capacity first: spot before on-demand, then price per GPU-hour, each
replica filled up to `per_replica` requests in flight before the next one is used. Batch traffic ranks
below real-time traffic: a replica whose latest telemetry shows queued requests or a nearly full KV cache
is used only when no calm replica is left, and when every replica is busy (or none is ready) the chunk
sends nothing and asks the workflow to wait; a durable timer, not a busy loop.

Resumable with no request answered twice in the output: each result is recorded as soon as it arrives,
keyed by (batch, custom_id) with insert-or-ignore, and a chunk starts by skipping every custom_id already
recorded. A crash loses at most the requests in flight, which the retry sends again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from registry import batches as registry
from registry.base import utcnow
from registry.batches import BatchStatus, ResultRecord
from registry.clusters import Market
from registry.db import transaction
from registry.errors import Invalid, NotFound
from registry.replicas import Replica, ReplicaStatus

PRIORITY_HEADER = "x-llmfleet-priority"  # "batch": lets a replica or proxy shed it before real-time traffic
TELEMETRY_FRESH = timedelta(minutes=2)
BUSY_QUEUE = 0.5  # waiting requests (windowed mean) above which real-time traffic is queueing
BUSY_KV = 0.9
RETRYABLE = frozenset({429, 500, 502, 503, 504})


# ---- messages (one dataclass in, one out) ---------------------------------------------------------


@dataclass(slots=True)
class BatchRef:
    batch_id: str


@dataclass(slots=True)
class BatchProgress:
    status: str
    total: int
    done: int
    expires_at: float  # epoch seconds


@dataclass(slots=True)
class ChunkRequest:
    batch_id: str
    limit: int
    concurrency: int
    per_replica: int = 4
    max_attempts: int = 3


@dataclass(slots=True)
class ChunkResult:
    recorded: int  # results recorded by this call
    remaining: int  # requests still without a result after this call
    cancelled: bool = False  # the registry says `cancelling`
    wait_s: float = 0.0  # > 0: no calm capacity (or a replica refused): wait before the next chunk
    reason: str = ""


@dataclass(slots=True)
class Finalize:
    batch_id: str
    outcome: str  # completed | cancelled | expired | failed
    reason: str = ""


# ---- choosing replicas (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    endpoint: str
    spot: bool
    price_per_gpu_hour: float
    busy: bool  # its latest telemetry says real-time traffic is queueing there


def is_busy(queue_length: float | None, kv_cache_usage: float | None) -> bool:
    return (queue_length or 0.0) > BUSY_QUEUE or (kv_cache_usage or 0.0) >= BUSY_KV


def choose(candidates: list[Candidate], in_flight: dict[str, int], per_replica: int,
           exclude: set[str] | frozenset[str] = frozenset()) -> Candidate | None:
    """The cheapest calm replica with room; then busy ones; None when all are excluded."""
    usable = [c for c in candidates if c.endpoint not in exclude]
    if not usable:
        return None
    return min(usable, key=lambda c: (c.busy, in_flight.get(c.endpoint, 0) >= per_replica, not c.spot,
                                      c.price_per_gpu_hour, in_flight.get(c.endpoint, 0), c.name))


# ---- parsing the (already validated) input --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    line: int
    custom_id: str
    url: str
    body: dict[str, Any]


def iter_requests(content: bytes, after_line: int = 0) -> Iterator[Request]:
    """The input file's requests in order after `after_line`, parsed only as far as the caller reads."""
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if number > after_line and raw.strip():
            record = orjson.loads(raw)
            yield Request(number, record["custom_id"], record["url"], record["body"])


def requests_of(content: bytes) -> list[Request]:
    return list(iter_requests(content))


def output_line(result: registry.BatchResult) -> bytes:
    response = None
    if result.status_code is not None:
        response = {"status_code": result.status_code, "request_id": result.request_id, "body": result.body}
    return orjson.dumps({"id": result.request_id, "custom_id": result.custom_id, "response": response,
                         "error": result.error}) + b"\n"


# ---- the activities -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    """Mutable state of one run_chunk call."""

    batch_pk: int
    in_flight: dict[str, int] = field(default_factory=dict)
    recorded: int = 0
    recorded_lines: set[int] = field(default_factory=set)
    deferred: int = 0


class BatchActivities:
    def __init__(
        self, sessions: sessionmaker[Session], *, transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = utcnow, request_timeout_s: float = 600.0, heartbeat_every_s: float = 1.0,
        wait_s: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._transport = transport
        self._clock = clock
        self._timeout = request_timeout_s
        self._heartbeat_every_s = heartbeat_every_s
        self._wait_s = wait_s

    def all(self) -> list[Callable[..., object]]:
        return [self.begin, self.run_chunk, self.finalize]

    @staticmethod
    def _batch(session: Session, batch_id: str) -> registry.Batch:
        try:
            return registry.get_batch(session, None, batch_id)
        except NotFound as error:
            raise ApplicationError(error.detail, type="NotFound", non_retryable=True) from error

    @activity.defn(name="batch_begin")
    async def begin(self, ref: BatchRef) -> BatchProgress:
        with transaction(self._sessions) as session:
            batch = self._batch(session, ref.batch_id)
            registry.mark_in_progress(session, batch)
            done = registry.counts(session, batch)
            return BatchProgress(batch.status.value, batch.total, done.completed + done.failed,
                                 batch.expires_at.timestamp())

    @activity.defn(name="batch_run_chunk")
    async def run_chunk(self, request: ChunkRequest) -> ChunkResult:
        with transaction(self._sessions) as session:
            batch = self._batch(session, request.batch_id)
            if batch.status is BatchStatus.CANCELLING:
                return ChunkResult(0, 0, cancelled=True)
            if batch.status.is_terminal:
                return ChunkResult(0, 0)
            # Only what follows the answered-through line, parsed only as far as this chunk needs: a large
            # batch would otherwise read every recorded id and parse the whole file once per chunk.
            after = batch.answered_through_line
            done = registry.done_custom_ids(session, batch, after)
            requests = iter_requests(registry.file_content(session, batch.team, batch.input_file_id), after)
            chunk = list(islice((r for r in requests if r.custom_id not in done), request.limit))
            answered = registry.counts(session, batch)
            pending = batch.total - answered.completed - answered.failed
            team, pk = batch.team, batch.id
            targets = {r.body["model"]: self._target(session, team, r.body["model"]) for r in chunk}
        state = _Chunk(pk)
        if not chunk:
            return ChunkResult(0, 0)
        try:
            return await self._run(state, chunk, targets, pending, request)
        finally:
            self._advance_watermark(pk, chunk, state.recorded_lines)

    async def _run(self, state: _Chunk, chunk: list[Request], targets: dict[str, tuple[str, list[Candidate]] | str],
                   pending: int, request: ChunkRequest) -> ChunkResult:
        runnable = []
        for r in chunk:
            target = targets[r.body["model"]]
            if isinstance(target, str):  # the deployment is gone: an answer, not something to wait for
                self._record(state, ResultRecord(r.custom_id, r.line, registry.new_id("batch_req_"), False, None,
                                                 None, {"code": "model_not_found", "message": target}))
            elif target[1]:
                runnable.append((r, target[0], target[1]))
        if not runnable:
            left = pending - state.recorded
            return ChunkResult(state.recorded, left, wait_s=self._wait_s if left else 0.0,
                               reason="no ready replica" if left else "")
        if all(c.busy for _, _, cands in runnable for c in cands):
            return ChunkResult(state.recorded, pending - state.recorded, wait_s=self._wait_s,
                               reason="every replica is busy with real-time traffic")
        await self._send_all(state, runnable, request)
        left = pending - state.recorded
        return ChunkResult(state.recorded, left, wait_s=self._wait_s if state.deferred else 0.0,
                           reason=f"{state.deferred} request(s) found no replica" if state.deferred else "")

    def _target(self, session: Session, team: str, model: str) -> tuple[str, list[Candidate]] | str:
        """(deployment name, candidates) or the reason the model no longer resolves."""
        try:
            target = registry.resolve_target(session, team, model)
        except (NotFound, Invalid) as error:
            return error.detail
        replicas = session.scalars(
            select(Replica).where(Replica.deployment_id == target.deployment_id)
            .options(selectinload(Replica.pool), selectinload(Replica.model_version),
                     selectinload(Replica.telemetry)))
        now = self._clock()
        candidates = []
        for r in replicas:
            if r.status is not ReplicaStatus.READY or not r.endpoint or r.model_version.version != target.version:
                continue
            t = r.telemetry
            fresh = t is not None and now - t.received_at < TELEMETRY_FRESH
            candidates.append(Candidate(
                name=r.name, endpoint=r.endpoint.rstrip("/"), spot=r.pool.market is Market.SPOT,
                price_per_gpu_hour=r.pool.price_per_hour / max(1, r.pool.gpus_per_instance),
                busy=fresh and t is not None and is_busy(t.queue_length, t.kv_cache_usage)))
        return target.deployment, candidates

    def _record(self, state: _Chunk, record: ResultRecord) -> None:
        with transaction(self._sessions) as session:
            batch = session.get(registry.Batch, state.batch_pk)
            assert batch is not None
            registry.record_results(session, batch, [record])
        state.recorded += 1
        state.recorded_lines.add(record.line)

    def _advance_watermark(self, batch_pk: int, chunk: list[Request], recorded: set[int]) -> None:
        """Everything before this chunk's first unanswered request has a result now: the chunk took the
        first unanswered requests after the old watermark in file order, and the ones it skipped had one."""
        through = next((r.line - 1 for r in chunk if r.line not in recorded), chunk[-1].line)
        with transaction(self._sessions) as session:
            batch = session.get(registry.Batch, batch_pk)
            if batch is not None and through > batch.answered_through_line:
                batch.answered_through_line = through

    async def _send_all(self, state: _Chunk, runnable: list[tuple[Request, str, list[Candidate]]],
                        request: ChunkRequest) -> None:
        gate = asyncio.Semaphore(request.concurrency)
        async with httpx.AsyncClient(transport=self._transport, timeout=httpx.Timeout(self._timeout, connect=5.0)
                                     ) as client:

            async def one(item: tuple[Request, str, list[Candidate]]) -> None:
                async with gate:
                    record = await self._send(client, state, item, request)
                if record is None:
                    state.deferred += 1
                else:
                    self._record(state, record)

            beat = asyncio.create_task(self._heartbeats(state))
            try:
                await asyncio.gather(*(one(item) for item in runnable))
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat

    async def _heartbeats(self, state: _Chunk) -> None:
        # Also how a cancel from the workflow reaches this activity (as CancelledError at an await).
        while True:
            activity.heartbeat({"recorded": state.recorded})
            await asyncio.sleep(self._heartbeat_every_s)

    async def _send(self, client: httpx.AsyncClient, state: _Chunk, item: tuple[Request, str, list[Candidate]],
                    request: ChunkRequest) -> ResultRecord | None:
        """The result to record, or None when no replica could be reached (retried in a later chunk)."""
        req, deployment, candidates = item
        payload = orjson.dumps({**req.body, "model": deployment})
        request_id = registry.new_id("batch_req_")
        tried: set[str] = set()
        last: httpx.Response | None = None
        for _ in range(request.max_attempts):
            pick = choose(candidates, state.in_flight, request.per_replica, tried)
            if pick is None:
                break
            tried.add(pick.endpoint)
            state.in_flight[pick.endpoint] = state.in_flight.get(pick.endpoint, 0) + 1
            try:
                response = await client.post(pick.endpoint + req.url, content=payload, headers={
                    "Content-Type": "application/json", PRIORITY_HEADER: "batch", "X-Request-Id": request_id})
            except httpx.HTTPError:
                continue
            finally:
                state.in_flight[pick.endpoint] -= 1
            if response.status_code in RETRYABLE:
                last = response
                continue
            return _result(req, request_id, response)
        if last is not None and last.status_code >= 500:
            return _result(req, request_id, last)  # an answer, if a failing one
        return None

    @activity.defn(name="batch_finalize")
    async def finalize(self, request: Finalize) -> BatchProgress:
        outcome = BatchStatus(request.outcome)
        with transaction(self._sessions) as session:
            batch = self._batch(session, request.batch_id)
            registry.begin_finalizing(session, batch)
        with transaction(self._sessions) as session:
            batch = self._batch(session, request.batch_id)
            output, errors = bytearray(), bytearray()
            results = registry.results_of(session, batch)
            for result in results:
                (output if result.succeeded else errors).extend(output_line(result))
            if outcome in (BatchStatus.EXPIRED, BatchStatus.FAILED):
                # Unanswered requests are reported, not silently dropped (a cancel drops them on purpose).
                answered = {r.custom_id for r in results}
                code = "batch_expired" if outcome is BatchStatus.EXPIRED else "batch_failed"
                message = request.reason or ("the batch did not finish within its completion window"
                                             if outcome is BatchStatus.EXPIRED else "the batch failed")
                content = registry.file_content(session, batch.team, batch.input_file_id)
                for r in requests_of(content):
                    if r.custom_id not in answered:
                        errors.extend(orjson.dumps({"id": registry.new_id("batch_req_"), "custom_id": r.custom_id,
                                                    "response": None, "error": {"code": code, "message": message}})
                                      + b"\n")
            failure = [{"code": "batch_failed", "message": request.reason}] if outcome is BatchStatus.FAILED else None
            registry.finish(session, batch, outcome, output=bytes(output), errors=bytes(errors), failure=failure)
            done = registry.counts(session, batch)
            return BatchProgress(batch.status.value, batch.total, done.completed + done.failed,
                                 batch.expires_at.timestamp())


def _result(req: Request, request_id: str, response: httpx.Response) -> ResultRecord:
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"message": response.text[:2000], "type": "server_error"}}
    if not isinstance(body, dict):
        body = {"value": body}
    ok = 200 <= response.status_code < 300
    usage = body.get("usage") if ok and isinstance(body.get("usage"), dict) else {}
    error = None
    if not ok:
        upstream = body.get("error") if isinstance(body.get("error"), dict) else {}
        error = {"code": str(upstream.get("code") or f"http_{response.status_code}"),
                 "message": str(upstream.get("message") or f"the replica answered {response.status_code}")}
    return ResultRecord(custom_id=req.custom_id, line=req.line, request_id=request_id, succeeded=ok,
                        status_code=response.status_code, body=body, error=error,
                        prompt_tokens=int(usage.get("prompt_tokens") or 0),
                        completion_tokens=int(usage.get("completion_tokens") or 0))

