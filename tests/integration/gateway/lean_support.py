"""An in-process gateway on its production server in front of a scriptable replica (aiohttp), with the
routing table served by a mock transport: for the HTTP-level behaviour of the lean server and the
replica connection pool, over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer

from agents.gateway.build import Parts, build_gateway
from agents.gateway.config import GatewayConfig
from agents.gateway.serve import serve
from tests.support.ports import free_port

KEY = "lf_client01_" + "c" * 20
AGENT_KEY = "lf_agent001_" + "a" * 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def table(replica_url: str) -> dict[str, Any]:
    return {
        "generation": 1,
        "deployments": [{
            "name": "chat", "team": "t", "model": "m", "version": "v1", "aliases": {}, "generation": 1,
            "version_weights": {"v1": 100.0}, "experiment": None, "shares": {"r1": {"c1": 1.0}},
            "shares_published": True,
            "replicas": [{"name": "chat-c1-1", "endpoint": replica_url, "cluster": "c1", "region": "r1",
                          "version": "v1", "variant": "bf16", "capacity_weight": 1.0}],
        }],
        "keys": [{"key_id": "client01", "key_hash": hashlib.sha256(KEY.encode()).hexdigest(), "team": "t",
                  "scopes": ["read"]}],
    }


async def sse(request: web.Request, events: int = 3) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for i in range(events):
        await response.write(b'data: {"i": %d}\n\n' % i)
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


@dataclass(slots=True)
class Lean:
    url: str
    host: str
    port: int
    parts: Parts


@asynccontextmanager
async def lean_gateway(handler: Handler, **overrides: Any) -> AsyncIterator[Lean]:
    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    app.router.add_post("/v1/chat/completions", handler)
    async with TestServer(app, host="127.0.0.1") as replica:
        body = table(str(replica.make_url("")).rstrip("/"))
        transport = httpx.MockTransport(lambda _: httpx.Response(200, json=body, headers={"ETag": '"1"'}))
        port = free_port()
        config = GatewayConfig(region="r1", api_url="http://api", api_key=AGENT_KEY, port=port, **overrides)
        parts = build_gateway(config, api_transport=transport)
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(parts, stop=stop, started=started))
        await asyncio.wait_for(started.wait(), 10)
        try:
            yield Lean(f"http://127.0.0.1:{port}", "127.0.0.1", port, parts)
        finally:
            stop.set()
            await task


async def exchange(port: int, data: bytes, *, until_close: bool = False, expect: int = 1) -> bytes:
    """Raw bytes in, raw bytes out: reads `expect` complete answers (or until the server closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = b""
    try:
        if until_close:
            return await asyncio.wait_for(reader.read(), 10)
        while out.count(b"HTTP/1.") < expect or not _complete(out, expect):
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            if not chunk:
                break
            out += chunk
        return out
    finally:
        writer.close()


def _complete(data: bytes, answers: int) -> bool:
    """Whether `data` holds `answers` complete HTTP answers (sized or chunked)."""
    rest = data
    for _ in range(answers):
        head, sep, body = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            end = body.find(b"0\r\n\r\n")
            if end < 0:
                return False
            rest = body[end + 5:]
        else:
            sized = lower.split(b"content-length: ")
            length = int(sized[1].split(b"\r\n")[0]) if len(sized) > 1 else 0  # e.g. 100 Continue
            if len(body) < length:
                return False
            rest = body[length:]
    return True


def post(path: str, body: bytes, *, key: str | None = KEY, extra: str = "", version: str = "1.1") -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/{version}\r\nHost: gw\r\nContent-Type: application/json\r\n{auth}{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
