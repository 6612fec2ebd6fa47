"""The gateway's own HTTP/1.1 server and replica pool over real sockets: framing, pipelining, size limits,
HTTP/1.0, Expect: 100-continue, malformed input, the ASGI bridge, stale keep-alive connections, stalled
replicas and trace propagation."""

from __future__ import annotations

import asyncio
import json

import httpx
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agents.gateway.replica_pool import Http1Upstream
from agents.gateway.tracing import tracer_from_env
from agents.gateway.upstream import UpstreamError
from tests.integration.gateway.lean_support import KEY, exchange, lean_gateway, post, sse

STREAM = json.dumps({"model": "chat", "prompt": "hi", "stream": True}).encode()
PLAIN = json.dumps({"model": "chat", "prompt": "hi"}).encode()


async def plain(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"echo": body["prompt"], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})


def test_a_stream_is_relayed_chunked_with_every_event_and_routing_headers() -> None:
    async def go() -> None:
        async with lean_gateway(sse) as gw:
            out = await exchange(gw.port, post("/v1/completions", STREAM))
            head, _, body = out.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert b"transfer-encoding: chunked" in head and b"x-llmfleet-replica: chat-c1-1" in head
            assert [body.count(b'data: {"i": %d}' % i) for i in range(3)] == [1, 1, 1]
            assert body.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")

    asyncio.run(go())


def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(0.05 if body["prompt"] == "first" else 0)  # the first finishes last upstream
        return web.json_response({"echo": body["prompt"]})

    async def go() -> None:
        async with lean_gateway(echo) as gw:
            first = json.dumps({"model": "chat", "prompt": "first"}).encode()
            second = json.dumps({"model": "chat", "prompt": "second"}).encode()
            out = await exchange(gw.port, post("/v1/completions", first) + post("/v1/completions", second),
                                 expect=2)
            assert out.count(b"HTTP/1.1 200 OK") == 2
            assert out.index(b'"first"') < out.index(b'"second"')

    asyncio.run(go())


def test_an_oversized_body_is_refused_unread_but_only_after_the_key_check() -> None:
    async def go() -> None:
        async with lean_gateway(plain, max_body_bytes=1000) as gw:
            big = b"x" * 5000
            out = await exchange(gw.port, post("/v1/completions", big), until_close=True)
            assert out.startswith(b"HTTP/1.1 413") and b"connection: close" in out
            assert json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_too_large"
            anonymous = await exchange(gw.port, post("/v1/completions", big, key=None), until_close=True)
            assert anonymous.startswith(b"HTTP/1.1 401")
            chunked = (b"POST /v1/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + KEY.encode() +
                       b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"y" * 1024 + b"\r\n") * 1
            out = await exchange(gw.port, chunked, until_close=True)
            assert out.startswith(b"HTTP/1.1 413")
            # a file upload to the bridged routes is held to the same limit
            upload = await exchange(gw.port, post("/v1/files", big), until_close=True)
            assert upload.startswith(b"HTTP/1.1 413")

    asyncio.run(go())


def test_http10_gets_a_close_delimited_stream_and_expect_continue_is_honoured() -> None:
    async def go() -> None:
        async with lean_gateway(sse) as gw:
            out = await exchange(gw.port, post("/v1/completions", STREAM, version="1.0"), until_close=True)
            head, _, body = out.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200") and b"chunked" not in head
            assert body.endswith(b"data: [DONE]\n\n")
            out = await exchange(gw.port, post("/v1/completions", PLAIN, extra="Expect: 100-continue\r\n"), expect=2)
            assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")

    asyncio.run(go())


def test_malformed_requests_get_400_and_other_paths_go_through_the_asgi_bridge() -> None:
    async def go() -> None:
        async with lean_gateway(plain) as gw:
            out = await exchange(gw.port, b"NOT HTTP AT ALL\r\n\r\n", until_close=True)
            assert out.startswith(b"HTTP/1.1 400")
            async with httpx.AsyncClient(base_url=gw.url) as client:
                assert (await client.get("/healthz")).json()["ready"] is True
                models = await client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
                assert models.status_code == 200 and models.json()["data"][0]["id"] == "chat"
                answer = await client.post("/v1/completions", content=PLAIN,
                                           headers={"Authorization": f"Bearer {KEY}"})
                assert answer.json()["echo"] == "hi"
                metrics = (await client.get("/metrics")).text
                assert 'llmfleet_gateway_requests_total{arm="' in metrics
                assert (await client.get("/v1/completions")).status_code == 405

    asyncio.run(go())


def test_the_pool_survives_a_replica_closing_idle_connections_and_aborts_stalled_reads() -> None:
    stall = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/stall":
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(b"data: 1\n\n")
            await stall.wait()
            return response
        return web.json_response({"ok": True}, headers={"Connection": "keep-alive"})

    async def go() -> None:
        app = web.Application(handler_args={"keepalive_timeout": 0.05})
        app.router.add_post("/ok", handler)
        app.router.add_post("/stall", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        pool = Http1Upstream(max_connections=8, connect_timeout_s=1.0, read_timeout_s=0.3)
        try:
            for _ in range(3):  # the replica closes each idle connection before the next request
                answer = await pool.post(f"http://127.0.0.1:{port}/ok", b"{}")
                assert answer.status == 200 and json.loads(await answer.read()) == {"ok": True}
                await answer.close()
                await asyncio.sleep(0.2)
            stalled = await pool.post(f"http://127.0.0.1:{port}/stall", b"{}")
            assert await stalled.chunks().__anext__() == b"data: 1\n\n"
            started = asyncio.get_running_loop().time()
            try:
                await stalled.chunks().__anext__()
                raise AssertionError("a stalled read must fail")
            except UpstreamError:
                assert asyncio.get_running_loop().time() - started < 3.0
            await stalled.close()
            try:
                await pool.post(f"http://127.0.0.1:{free_closed_port()}/ok", b"{}")
                raise AssertionError("a refused connection must fail")
            except UpstreamError:
                pass
        finally:
            stall.set()
            await pool.close()
            await runner.cleanup()

    asyncio.run(go())


def test_a_request_abandoned_before_its_answer_gives_its_slot_back() -> None:
    async def go() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)  # takes the request, never answers
            await asyncio.sleep(30)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Http1Upstream(max_connections=1, connect_timeout_s=1.0, read_timeout_s=30.0)
        try:
            for _ in range(3):  # with one slot, a leaked slot would hang the next attempt
                waiting = asyncio.ensure_future(pool.post(f"http://127.0.0.1:{port}/v1/completions", b"{}"))
                await asyncio.sleep(0.1)
                waiting.cancel()
                try:
                    await waiting
                    raise AssertionError("the answer never came: the post must end cancelled")
                except asyncio.CancelledError:
                    pass
            await asyncio.wait_for(pool._slots.acquire(), 1.0)
        finally:
            await pool.close()
            server.close()

    asyncio.run(go())


def free_closed_port() -> int:
    from tests.support.ports import free_port

    return free_port()


def test_traces_continue_the_callers_and_reach_the_replica(monkeypatch: object) -> None:
    import agents.gateway.build as build

    exporter = InMemorySpanExporter()
    tracer = tracer_from_env(exporter=exporter)
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent", ""))
        return web.json_response({"ok": True})

    trace_id = "0af7651916cd43dd8448eb211c80319c"
    original = build.tracer_from_env
    build.tracer_from_env = lambda: tracer  # type: ignore[assignment]
    try:
        async def go() -> None:
            async with lean_gateway(handler) as gw:
                async with httpx.AsyncClient(base_url=gw.url) as client:
                    answer = await client.post("/v1/completions", content=PLAIN, headers={
                        "Authorization": f"Bearer {KEY}", "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
                    assert answer.status_code == 200

        asyncio.run(go())
    finally:
        build.tracer_from_env = original  # type: ignore[assignment]
    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    client_span = next(s for s in spans if s.kind is SpanKind.CLIENT)
    assert format(server.context.trace_id, "032x") == trace_id
    assert client_span.parent is not None and client_span.parent.span_id == server.context.span_id
    assert server.attributes is not None and server.attributes["llmfleet.replica"] == "chat-c1-1"
    assert seen == [f"00-{trace_id}-{format(client_span.context.span_id, '016x')}-01"]
