"""Server-neutral request and answer shapes, so the same gateway logic runs behind the lean HTTP/1.1 server
(`server.py`, production) and behind any ASGI server (`app.py`, tests and embedding)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class Incoming:
    """One client request, its body already read. `body` is None when it was over the size limit (the
    server stopped reading it): checks that come first (auth, rate limits) still answer before the 413."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes | None


@dataclass(slots=True)
class Answer:
    """A complete (non-streamed) answer."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # content-type included
