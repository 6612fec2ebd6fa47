"""Server-neutral request and answer shapes: the gateway logic (`app.py`) does not depend on the HTTP
server that carries it (`server.py`)."""

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
