"""Clocks the engine can run on: the real monotonic clock, or a virtual one for deterministic tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], Awaitable[None]]


class VirtualClock:
    """Time that moves only when someone sleeps: engine steps take zero wall time and exact virtual time.

    Only meaningful with one sleeper (one engine) per clock; other tasks still get to run at every sleep.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds
        await asyncio.sleep(0)
