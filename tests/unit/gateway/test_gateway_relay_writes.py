"""How many socket writes a relayed stream costs: the head goes with the first chunk, the end of the answer
with the last one (each write on loopback is a send syscall that also wakes the reader)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from agents.gateway.relay import StreamOutcome, StreamRelay
from agents.gateway.server import _Parsed, _Sink


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False
        self.transport = FakeTransport()
        self.writable = None


class Upstream:
    """An upstream answer that arrives in `reads` (lists of chunks that came together)."""

    status, content_type = 200, "text/event-stream"

    def __init__(self, reads: list[list[bytes]]) -> None:
        self.reads = reads
        self.closed = False

    @property
    def finished(self) -> bool:
        return not self.reads

    async def read(self) -> bytes:
        raise NotImplementedError

    async def _chunks(self) -> AsyncIterator[bytes]:
        while self.reads:
            yield b"".join(self.reads.pop(0))

    def chunks(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def close(self) -> None:
        self.closed = True


def relay(reads: list[list[bytes]]) -> tuple[list[bytes], StreamOutcome]:
    outcomes: list[StreamOutcome] = []

    async def done(outcome: StreamOutcome) -> None:
        outcomes.append(outcome)

    async def go() -> list[bytes]:
        upstream = Upstream(reads)
        first = b"".join(upstream.reads.pop(0))
        conn = FakeConnection()
        sink = _Sink(conn, _Parsed())  # type: ignore[arg-type]
        await StreamRelay(first=first, rest=upstream.chunks(), upstream=upstream, headers=[],
                          clock=lambda: 0.0, first_at=0.0, done=done).run(sink)
        assert upstream.closed
        return conn.transport.writes

    return asyncio.run(go()), outcomes[0]


def test_an_answer_that_arrived_in_one_read_is_one_write() -> None:
    writes, outcome = relay([[b"data: a\n\n", b"data: [DONE]\n\n"]])
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked\r\n" in writes[0]
    assert writes[0].endswith(b"data: a\n\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    assert outcome.ok and outcome.events == 2


def test_three_reads_are_three_writes_and_the_answer_ends_once() -> None:
    writes, outcome = relay([[b"data: a\n\n"], [b"data: b\n\n"], [b"data: [DONE]\n\n"]])
    assert len(writes) == 3
    assert writes[1] == b"9\r\ndata: b\n\n\r\n"
    assert writes[2] == b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
    assert b"".join(writes).count(b"0\r\n\r\n") == 1
    assert outcome.ok and outcome.events == 3
