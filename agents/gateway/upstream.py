"""What the proxy needs from a connection to replicas. The implementation is `replica_pool.Http1Upstream`;
the Protocol keeps the proxy independent of it, so tests can inject a fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class UpstreamError(Exception):
    """The replica could not be reached, reset the connection or stopped mid-answer."""


class UpstreamResponse(Protocol):
    status: int
    content_type: str

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    @property
    def finished(self) -> bool:
        """The whole answer has arrived: what `chunks` holds now is the last of it."""
        ...

    async def close(self) -> None: ...


class UpstreamClient(Protocol):
    async def post(self, url: str, payload: bytes) -> UpstreamResponse: ...

    async def close(self) -> None: ...
