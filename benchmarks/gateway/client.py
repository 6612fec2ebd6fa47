"""A closed-loop load generator over raw asyncio HTTP/1.1 keep-alive connections.

Raw sockets on purpose: on a 2-core machine a full HTTP client library in the load generator would cost
more CPU than the proxy being measured, and its overhead would be counted as the proxy's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Sample:
    ok: bool
    ttft: float
    e2e: float


@dataclass(slots=True)
class Run:
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, bool, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    chunked, length = False, 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"content-length":
            length = int(value.strip())
    return status, chunked, length


async def _read_body(reader: asyncio.StreamReader, chunked: bool, length: int, t0: float) -> float:
    """Consume the body; return seconds to its first byte."""
    if not chunked:
        await reader.readexactly(length)
        return time.perf_counter() - t0
    first = 0.0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if not first:
            first = time.perf_counter() - t0
        await reader.readexactly(size + 2)
        if size == 0:
            return first


def request_bytes(host: str, port: int, path: str, body: bytes, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _worker(host: str, port: int, payload: bytes, stop_at: float, measure_from: float, run: Run) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            writer.write(payload)
            try:
                status, chunked, length = await _read_head(reader)
                ttft = await _read_body(reader, chunked, length, t0)
            except (asyncio.IncompleteReadError, ConnectionError):
                run.samples.append(Sample(False, 0.0, time.perf_counter() - t0))
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            if t0 >= measure_from:
                run.samples.append(Sample(status == 200, ttft, time.perf_counter() - t0))
    finally:
        writer.close()


async def closed_loop(host: str, port: int, payload: bytes, concurrency: int, warmup_s: float, seconds: float
                      ) -> Run:
    start = time.perf_counter()
    measure_from, stop_at = start + warmup_s, start + warmup_s + seconds
    run = Run(seconds=seconds)
    await asyncio.gather(*(_worker(host, port, payload, stop_at, measure_from, run) for _ in range(concurrency)))
    return run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
