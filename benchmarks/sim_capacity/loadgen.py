"""Open-loop Poisson load over raw asyncio HTTP/1.1 with keep-alive, measuring TTFT and end-to-end latency.

Raw sockets instead of httpx: the load generator shares the machine (one core) with nothing else, and at
thousands of streamed chunks per second a full client library would saturate first and measure itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(slots=True)
class Result:
    ok: bool
    start: float
    ttft: float  # seconds to the first body byte (the first SSE event when streaming)
    e2e: float


@dataclass(slots=True)
class _Pool:
    host: str
    port: int
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)

    async def get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection(self.host, self.port)

    def put(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.idle.append(conn)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], t0: float) -> float:
    """Consume the body; return the time of its first byte."""
    if headers.get("transfer-encoding") == "chunked":
        first = 0.0
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if first == 0.0:
                first = time.perf_counter()
            await reader.readexactly(size + 2)
            if size == 0:
                return first - t0
    body_len = int(headers.get("content-length", "0"))
    await reader.readexactly(body_len)
    return time.perf_counter() - t0


async def one_request(pool: _Pool, path: str, body: bytes) -> Result:
    start = time.perf_counter()
    request = (f"POST {path} HTTP/1.1\r\nHost: {pool.host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    try:
        conn = await pool.get()
        reader, writer = conn
        writer.write(request)
        status, headers = await _read_head(reader)
        ttft = await _read_body(reader, headers, start)
        e2e = time.perf_counter() - start
        pool.put(conn)
        return Result(status == 200, start, ttft, e2e)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        return Result(False, start, 0.0, time.perf_counter() - start)


async def run_load(
    urls: list[str],
    rate_per_url: float,
    duration_s: float,
    prompt_tokens: int,
    output_tokens: int,
    stream: bool,
    seed: int = 0,
) -> list[Result]:
    """Poisson arrivals at `rate_per_url` to every URL for `duration_s`; waits for all to finish."""
    rng = random.Random(seed)
    payload: dict[str, object] = {"prompt": "x" * (4 * prompt_tokens), "max_tokens": output_tokens}
    if stream:
        payload["stream"] = True
    body = json.dumps(payload).encode()
    results: list[Result] = []
    tasks: set[asyncio.Task[None]] = set()
    pools = []
    for url in urls:
        parts = urlsplit(url)
        pools.append(_Pool(parts.hostname or "127.0.0.1", parts.port or 80))

    async def fire(pool: _Pool) -> None:
        results.append(await one_request(pool, "/v1/completions", body))

    async def arrivals(pool: _Pool) -> None:
        end = time.perf_counter() + duration_s
        next_at = time.perf_counter() + rng.expovariate(rate_per_url)
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            task = asyncio.create_task(fire(pool))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += rng.expovariate(rate_per_url)

    await asyncio.gather(*(arrivals(p) for p in pools))
    while tasks:
        await asyncio.gather(*list(tasks))
    for p in pools:
        p.close()
    return results
