"""Sending a replica's streamed answer to the client: bytes pass through untouched; only counted on the way.

The relay writes to a `Sink` (the lean HTTP/1.1 server's answer writer). Chunks
that arrived from the replica together are written together (the upstream iterator yields everything
buffered at once): one write per wake-up, not one per SSE event. The last chunk goes out with the end of
the answer in the same write: on loopback each write is a send syscall that also wakes the reader, the
largest single cost of a relayed stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from agents.gateway.errors import sse_error
from agents.gateway.upstream import UpstreamError, UpstreamResponse


@dataclass(slots=True)
class StreamOutcome:
    ok: bool | None  # True: finished; False: the replica failed mid-stream; None: the client went away
    events: int  # SSE `data:` events relayed (≈ tokens for vLLM, which sends one token per event)
    first_at: float
    last_at: float


def count_events(chunk: bytes) -> int:
    return chunk.count(b"data: ")


class Sink(Protocol):
    """Where a stream goes. `write` raises OSError once the client has gone away."""

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...

    async def write(self, chunk: bytes, last: bool = False) -> None:
        """Send `chunk`; with `last`, the end of the answer too (then `end` sends nothing more)."""
        ...

    async def end(self) -> None: ...


class StreamRelay:
    """Relays an upstream SSE stream whose first chunk already arrived (so the status line is only sent
    once a replica has answered: failures before that were retried)."""

    def __init__(
        self, *, first: bytes, rest: AsyncIterator[bytes], upstream: UpstreamResponse,
        headers: list[tuple[bytes, bytes]], clock: Callable[[], float], first_at: float,
        done: Callable[[StreamOutcome], Awaitable[None]],
    ) -> None:
        self.first, self.rest, self.upstream = first, rest, upstream
        self.headers, self.clock, self.first_at, self.done = headers, clock, first_at, done

    async def run(self, sink: Sink) -> None:
        outcome = StreamOutcome(ok=None, events=count_events(self.first), first_at=self.first_at,
                                last_at=self.first_at)
        try:
            await sink.start(200, self.headers)
            finished = self.upstream.finished
            await sink.write(self.first, last=finished)
            try:
                async for chunk in self.rest:
                    outcome.events += count_events(chunk)
                    outcome.last_at = self.clock()
                    finished = self.upstream.finished
                    await sink.write(chunk, last=finished)
            except UpstreamError:
                outcome.ok = False
                await sink.write(sse_error("the replica failed mid-stream"))
            else:
                outcome.ok = True
            await sink.end()
        except OSError:
            pass  # the client disconnected: outcome.ok stays what the replica side made it
        finally:
            await self.upstream.close()
            await self.done(outcome)
