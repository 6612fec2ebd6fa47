"""The HTTP face of one simulated replica: vLLM's OpenAI-compatible API plus a small admin API.

vLLM behaviours kept: /health is 200 with an empty body; with an API key only paths under /v1 need
`Authorization: Bearer KEY` and a miss is 401 `{"error": "Unauthorized"}` (vLLM's exact body); errors are
`{"error": {"message", "type", "param", "code"}}`; /metrics is open. Additions: while draining, /health and
new generation requests answer 503 (real vLLM just stops listening), and /admin/* drives fault injection,
drain and stats (guarded by the API key when one is set).

Plain Starlette, no FastAPI: no request models to validate, and each request costs less CPU, which is what
bounds how many replicas a process hosts.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agents.sim import openai_format as fmt
from agents.sim.api_params import ApiError, GenerationParams, parse_chat, parse_completion, resolve_max_tokens
from agents.sim.engine import Engine, RequestTooLarge
from agents.sim.faults import FaultError, FaultSpec, FaultState
from agents.sim.metrics import CONTENT_TYPE, ReplicaMetrics
from agents.sim.sequence import FinishReason, Sequence
from agents.sim.text import tokens_text


class ReplicaControls(Protocol):
    """What the admin API may ask of the replica that owns this app."""

    def apply_fault(self, spec: FaultSpec) -> None: ...

    def clear_faults(self) -> None: ...

    def request_drain(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ApiConfig:
    served_model_name: str
    root: str  # what /v1/models reports as the model's root (vLLM: the weights path)
    max_model_len: int
    default_max_tokens: int
    block_size: int
    api_key: str | None = None
    fingerprint: str = f"vllm-{fmt.EMULATED_VLLM_VERSION}+sim"


class _EngineStream(StreamingResponse):
    """SSE response that aborts the engine request when the client disconnects, as vLLM does.

    With ASGI spec >= 2.4 Starlette only notices a gone client when a write fails, and uvicorn drops writes
    to closed connections silently, so without this watcher a dead stream would keep its KV cache to the end.
    """

    def __init__(self, content: AsyncIterator[str], on_disconnect: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream")
        self._on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await self.stream_response(send)
        except OSError as exc:
            raise ClientDisconnect() from exc
        finally:
            watcher.cancel()

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._on_disconnect()


def _json(body: Any, status: int = 200) -> Response:
    return Response(fmt.dumps(body), status_code=status, media_type="application/json")


def _error(exc: ApiError) -> Response:
    return _json(fmt.error_body(exc.message, exc.err_type, exc.status, exc.param), exc.status)


class SimApp:
    def __init__(
        self,
        engine: Engine,
        metrics: ReplicaMetrics,
        faults: FaultState,
        config: ApiConfig,
        controls: ReplicaControls,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.faults = faults
        self.config = config
        self.controls = controls
        self.draining = False
        self._wall_clock = wall_clock
        self._created = int(wall_clock())
        self._perm_id = f"modelperm-{secrets.token_hex(8)}"
        self.asgi = Starlette(routes=[
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            Route("/version", self.version, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/admin/fault", self.fault, methods=["GET", "POST", "DELETE"]),
            Route("/admin/drain", self.drain, methods=["POST"]),
            Route("/admin/stats", self.stats, methods=["GET"]),
        ])

    # ----- guards -----

    def _authorised(self, request: Request) -> bool:
        key = self.config.api_key
        if key is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(token.encode(), key.encode())

    async def _open(self, request: Request, guarded: bool) -> Response | None:
        """Hang and auth checks shared by the vLLM endpoints; a Response means answer with it."""
        await self.faults.wait_unhung()
        if guarded and not self._authorised(request):
            return _json({"error": "Unauthorized"}, 401)
        return None

    # ----- vLLM endpoints -----

    async def health(self, request: Request) -> Response:
        await self.faults.wait_unhung()
        return Response(status_code=503 if self.draining else 200)

    async def metrics_endpoint(self, request: Request) -> Response:
        await self.faults.wait_unhung()
        engine = self.engine
        body = self.metrics.render(engine.num_running, engine.num_waiting, engine.kv_usage)
        return Response(body, media_type=CONTENT_TYPE)

    async def version(self, request: Request) -> Response:
        await self.faults.wait_unhung()
        return _json({"version": fmt.EMULATED_VLLM_VERSION + "+sim"})

    async def models(self, request: Request) -> Response:
        if (denied := await self._open(request, guarded=True)) is not None:
            return denied
        cfg = self.config
        return _json(fmt.models_body(cfg.served_model_name, cfg.root, self._created, cfg.max_model_len,
                                     self._perm_id))

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def chat_completions(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    async def _generate(self, request: Request, *, chat: bool) -> Response:
        if (denied := await self._open(request, guarded=True)) is not None:
            return denied
        if self.draining:
            return _error(ApiError(503, "The server is draining and accepts no new requests.",
                                   "ServiceUnavailableError"))
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(ApiError(400, "1 validation error:\n  {'loc': 'body', 'msg': 'JSON decode error'}",
                                   "Bad Request", "body"))
        cfg = self.config
        try:
            params = (parse_chat if chat else parse_completion)(body, cfg.block_size)
            if params.model is not None and params.model != cfg.served_model_name:
                raise ApiError(404, f"The model `{params.model}` does not exist. "
                                    f"Valid aliases: {cfg.served_model_name}.", "NotFoundError", "model")
            max_tokens = resolve_max_tokens(params, cfg.max_model_len, cfg.default_max_tokens)
            if self.faults.should_fail():
                raise ApiError(self.faults.error_status, "Injected fault: simulated server error.",
                               "InternalServerError")
            seq = self.engine.submit(params.prompt_tokens, max_tokens, stream=params.stream,
                                     block_hashes=params.block_hashes)
        except ApiError as exc:
            return _error(exc)
        except RequestTooLarge as exc:
            return _error(ApiError(400, str(exc), param="input_tokens"))
        request_id = ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(8)
        created = int(self._wall_clock())
        if params.stream:
            encoder = fmt.StreamEncoder(chat, request_id, created, cfg.served_model_name, cfg.fingerprint,
                                        params.prompt_tokens, params.include_usage, params.continuous_usage)
            return _EngineStream(self._stream(seq, encoder, params), lambda: self.engine.abort(seq))
        return await self._complete(seq, params, request_id, created)

    async def _complete(self, seq: Sequence, params: GenerationParams, request_id: str, created: int) -> Response:
        try:
            while not seq.finished:
                await seq.progress.wait()
                seq.progress.clear()
        finally:
            if not seq.finished:
                self.engine.abort(seq)
        if seq.finish_reason in (FinishReason.ABORT, FinishReason.ERROR):
            return _error(ApiError(503, "The request was aborted by the engine.", "ServiceUnavailableError"))
        cfg = self.config
        build = fmt.chat_body if params.chat else fmt.completion_body
        text = tokens_text(params.text_seed, 0, seq.output_tokens)
        assert seq.finish_reason is not None
        return _json(build(request_id, created, cfg.served_model_name, text, seq.finish_reason.value,
                           seq.prompt_tokens, seq.output_tokens, cfg.fingerprint))

    async def _stream(self, seq: Sequence, enc: fmt.StreamEncoder, params: GenerationParams) -> AsyncIterator[str]:
        sent = 0
        try:
            while True:
                await seq.progress.wait()
                seq.progress.clear()
                produced = seq.output_tokens
                if produced <= sent and not seq.finished:
                    continue
                out = enc.role_chunk() if params.chat and sent == 0 and produced > 0 else ""
                text = tokens_text(params.text_seed, sent, produced)
                if seq.finished:
                    assert seq.finish_reason is not None
                    out += enc.final_chunk(text, seq.finish_reason.value, produced)
                    if enc.include_usage:
                        out += enc.usage_chunk(produced)
                    yield out + fmt.DONE.decode()
                    return
                yield out + enc.token_chunk(text, produced)
                sent = produced
        finally:
            if not seq.finished:  # the client went away: free the engine's work, as vLLM aborts
                self.engine.abort(seq)

    # ----- admin endpoints -----

    async def fault(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "Unauthorized"}, 401)
        if request.method == "DELETE":
            self.controls.clear_faults()
        elif request.method == "POST":
            try:
                spec = FaultSpec.from_json(json.loads(await request.body()))
            except (ValueError, FaultError) as exc:
                return _error(ApiError(400, f"invalid fault: {exc}", param="body"))
            self.controls.apply_fault(spec)
        return JSONResponse(self.faults.as_json())

    async def drain(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "Unauthorized"}, 401)
        self.controls.request_drain()
        return _json({"draining": True}, 202)

    async def stats(self, request: Request) -> Response:
        if not self._authorised(request):
            return _json({"error": "Unauthorized"}, 401)
        return _json(self.controls.stats())
