"""The gateway's own HTTP/1.1 server: an asyncio protocol on the httptools parser.

Why not uvicorn + Starlette on the hot path: at 64 concurrent streams their per-request objects (scope,
Request, Headers, a task per request) and one ASGI message per SSE chunk cost about as much CPU as the
whole proxying did. Here an inference POST goes from parsed bytes to `Gateway.inference` and its answer
goes straight to the socket. Every other path (/v1/models, files, batches, /metrics, /healthz) is handed
to the gateway's ASGI app through a small bridge: they are off the latency budget, and keeping them ASGI
keeps one implementation of each.

Per connection, requests are answered in order (HTTP/1.1 pipelining is honoured; reading pauses when
several are queued). A body over the size limit is not read: the answer (after the auth and rate-limit
checks, as for any request) goes out with `Connection: close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message

from agents.gateway.app import INFERENCE_PATHS, Gateway
from agents.gateway.errors import error_answer
from agents.gateway.messages import Answer, Incoming
from agents.gateway.relay import StreamRelay

log = logging.getLogger(__name__)

MAX_QUEUED = 8  # pipelined requests parsed ahead of the one being answered
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def status_line(status: int, http10: bool) -> bytes:
    return b"HTTP/%s %d %s\r\n" % (b"1.0" if http10 else b"1.1", status, _REASONS.get(status, b"Unknown"))


class _Parsed:
    __slots__ = ("method", "target", "headers", "parts", "size", "keep_alive", "http10", "too_large")

    def __init__(self) -> None:
        self.method = ""
        self.target = b""
        self.headers: dict[str, str] = {}
        self.parts: list[bytes] = []
        self.size = 0
        self.keep_alive = True
        self.http10 = False
        self.too_large = False


class GatewayServer:
    """Owns the listening sockets and the open connections of one process."""

    def __init__(self, gateway: Gateway, fallback: ASGIApp, tracer: Tracer | None = None) -> None:
        self.gateway, self.fallback, self.tracer = gateway, fallback, tracer
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=2048)
        return self._server

    async def shutdown(self, grace_s: float) -> None:
        """Stop accepting, let requests in progress finish (up to `grace_s`), then close everything."""
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + grace_s
        while True:
            for conn in [c for c in self.connections if not c.busy]:
                conn.close()
            if not self.connections or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.close()


class _Connection(asyncio.Protocol):
    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.limit = server.gateway.config.max_body_bytes
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: _Parsed | None = None
        self.queue: deque[_Parsed] = deque()
        self.busy = False
        self.closed = False
        self.discarding = False  # the rest of an over-limit body: dropped, the connection closes after
        self.paused_reading = False
        self.writable: asyncio.Future[None] | None = None  # set while the transport asks us to pause writing
        self.lost: asyncio.Future[None] = self.loop.create_future()

    # ---- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        if self.writable is None or self.writable.done():
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
        except httptools.HttpParserError:
            if not self.discarding:
                self._refuse(400, "malformed HTTP request")

    # ---- httptools callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.current = _Parsed()

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self.current.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        parsed = self.current
        assert parsed is not None
        parser = self.parser
        parsed.method = parser.get_method().decode("latin-1")
        parsed.keep_alive = parser.should_keep_alive()
        parsed.http10 = parser.get_http_version() == "1.0"
        length = parsed.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            self._over_limit(parsed)
        elif parsed.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        parsed = self.current
        if parsed is None or self.discarding:
            return
        parsed.size += len(body)
        if parsed.size > self.limit:
            self._over_limit(parsed)
            return
        parsed.parts.append(body)

    def on_message_complete(self) -> None:
        parsed, self.current = self.current, None
        if parsed is None or self.discarding:
            return
        self._enqueue(parsed)

    # ---- requests ----------------------------------------------------------------------------------

    def _over_limit(self, parsed: _Parsed) -> None:
        """Answer now without reading the rest; the connection closes after that answer."""
        parsed.too_large, parsed.keep_alive, parsed.parts = True, False, []
        self.discarding = True
        self.current = None
        self._enqueue(parsed)

    def _enqueue(self, parsed: _Parsed) -> None:
        self.queue.append(parsed)
        if len(self.queue) >= MAX_QUEUED and self.transport is not None and not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()
        if not self.busy:
            self.busy = True
            self.loop.create_task(self._serve_queue())

    async def _serve_queue(self) -> None:
        try:
            while self.queue and not self.closed:
                parsed = self.queue.popleft()
                if self.paused_reading and self.transport is not None:
                    self.paused_reading = False
                    self.transport.resume_reading()
                await self._serve(parsed)
                if not parsed.keep_alive:
                    self.close()
                    break
        finally:
            self.busy = False

    async def _serve(self, parsed: _Parsed) -> None:
        sink = _Sink(self, parsed)
        try:
            url = httptools.parse_url(parsed.target)
            path = url.path.decode("latin-1")
            if parsed.method == "POST" and path in INFERENCE_PATHS:
                await self._inference(parsed, path, sink)
            else:
                await self._bridge(parsed, url, sink)
        except Exception:  # one request's bug must not take the connection's others down
            log.exception("gateway request failed")
            if not sink.started and not self.closed:
                await sink.answer(error_answer(500, "internal gateway error", type_="server_error"))
            parsed.keep_alive = False

    async def _inference(self, parsed: _Parsed, path: str, sink: _Sink) -> None:
        body = None if parsed.too_large else b"".join(parsed.parts)
        request = Incoming("POST", path, parsed.headers, body)
        tracer = self.server.tracer
        if tracer is None:
            await self._respond(await self.server.gateway.inference(request), sink)
            return
        with tracer.start_as_current_span(f"POST {path}", context=extract(parsed.headers), kind=SpanKind.SERVER,
                                          attributes={"http.request.method": "POST", "url.path": path}) as span:
            answer = await self.server.gateway.inference(request)
            status = answer.status if isinstance(answer, Answer) else 200
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            replica = dict(answer.headers).get(b"x-llmfleet-replica")
            if replica is not None:
                span.set_attribute("llmfleet.replica", replica.decode("latin-1"))
            await self._respond(answer, sink)

    @staticmethod
    async def _respond(answer: Answer | StreamRelay, sink: _Sink) -> None:
        if isinstance(answer, Answer):
            await sink.answer(answer)
        else:
            await answer.run(sink)

    async def _bridge(self, parsed: _Parsed, url: Any, sink: _Sink) -> None:
        """Any other path: the ASGI app, with the body already read."""
        gateway = self.server.gateway
        if parsed.too_large:
            key = gateway._key(parsed.headers)
            await sink.answer(key if isinstance(key, Answer) else gateway.too_large())
            return
        assert self.transport is not None
        raw_path = url.path
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.0" if parsed.http10 else "1.1", "method": parsed.method, "scheme": "http",
            "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path, "query_string": url.query or b"",
            "root_path": "", "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in parsed.headers.items()],
            "client": self.transport.get_extra_info("peername"), "server": self.transport.get_extra_info("sockname"),
        }
        body = b"".join(parsed.parts)
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await self.lost
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await sink.start(message["status"], list(message.get("headers", [])))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    await sink.write(chunk)
                if not message.get("more_body", False):
                    await sink.end()

        await self.server.fallback(scope, receive, send)

    def _refuse(self, status: int, message: str) -> None:
        if self.transport is not None and not self.closed:
            body = error_answer(status, message).body
            self.transport.write(status_line(status, False) + b"content-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True


class _Sink:
    """Writes one answer: sized when the whole body is known, else chunked (close-delimited for HTTP/1.0).
    The head is held back and sent with the first body bytes: one write, one packet."""

    __slots__ = ("conn", "parsed", "started", "chunked", "head", "finished")

    def __init__(self, conn: _Connection, parsed: _Parsed) -> None:
        self.conn, self.parsed = conn, parsed
        self.started = self.chunked = self.finished = False
        self.head = b""

    def _write(self, data: bytes) -> Awaitable[None] | None:
        conn = self.conn
        if conn.closed or conn.transport is None:
            raise ConnectionResetError("the client went away")
        conn.transport.write(data)
        writable = conn.writable
        return writable if writable is not None and not writable.done() else None

    def _head(self, status: int, headers: list[tuple[bytes, bytes]], sized: bool) -> bytes:
        parsed = self.parsed
        lines = [status_line(status, parsed.http10)]
        lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
        if not sized:
            if parsed.http10:
                parsed.keep_alive = False
            else:
                self.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
        if not parsed.keep_alive:
            lines.append(b"connection: close\r\n")
        elif parsed.http10:
            lines.append(b"connection: keep-alive\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def answer(self, answer: Answer) -> None:
        self.started = True
        headers = [*answer.headers, (b"content-length", b"%d" % len(answer.body))]
        pending = self._write(self._head(answer.status, headers, True) + answer.body)
        self.finished = True
        if pending is not None:
            await pending

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        sized = any(name.lower() == b"content-length" for name, _ in headers)
        self.head = self._head(status, headers, sized)

    async def write(self, chunk: bytes, last: bool = False) -> None:
        data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked and chunk else chunk
        if self.head:
            data, self.head = self.head + data, b""
        if last:
            self.finished = True
            if self.chunked:
                data += b"0\r\n\r\n"
        pending = self._write(data)
        if pending is not None:
            await pending

    async def end(self) -> None:
        if self.finished:
            return
        self.finished = True
        data = self.head + (b"0\r\n\r\n" if self.chunked else b"")
        self.head = b""
        if data:
            pending = self._write(data)
            if pending is not None:
                await pending

