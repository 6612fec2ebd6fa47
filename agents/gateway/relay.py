"""Sending a replica's answer to the client: bytes pass through untouched; only counted on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

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


class StreamRelay:
    """An ASGI response that relays an upstream SSE stream whose first chunk already arrived (so the
    status line is only sent once a replica has answered: failures before that were retried)."""

    def __init__(
        self, *, first: bytes, rest: AsyncIterator[bytes], upstream: UpstreamResponse, headers: list[tuple[bytes, bytes]],
        clock: Callable[[], float], first_at: float, done: Callable[[StreamOutcome], Awaitable[None]],
    ) -> None:
        self.first, self.rest, self.upstream = first, rest, upstream
        self.headers, self.clock, self.first_at, self.done = headers, clock, first_at, done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = StreamOutcome(ok=None, events=count_events(self.first), first_at=self.first_at,
                                last_at=self.first_at)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            await send({"type": "http.response.body", "body": self.first, "more_body": True})
            try:
                async for chunk in self.rest:
                    outcome.events += count_events(chunk)
                    outcome.last_at = self.clock()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError:
                outcome.ok = False
                await send({"type": "http.response.body", "body": sse_error("the replica failed mid-stream"),
                            "more_body": True})
            else:
                outcome.ok = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            outcome.ok = None if outcome.ok is None else outcome.ok  # the client disconnected
        finally:
            await self.upstream.close()
            await self.done(outcome)
