"""Pulling the routing table from the control plane (HTTP only, with the agent's key and If-None-Match).

The gateway keeps serving from the last table when the control plane is unreachable; `auth_max_staleness_s`
bounds how long keys from an old table stay valid, so a revoked key stops working within one poll
interval when the control plane is up, and within that bound when it is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from agents.gateway.snapshot import Snapshot, parse_snapshot

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RoutingSource:
    api_url: str
    api_key: str
    client: httpx.AsyncClient  # injected: tests pass an ASGI or mock transport
    clock: Callable[[], float]  # monotonic
    snapshot: Snapshot | None = None
    on_change: list[Callable[[Snapshot], None]] = field(default_factory=list)

    async def refresh(self) -> bool:
        """Fetch once; True when the table changed. Raises httpx errors (callers decide how to retry)."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if self.snapshot is not None:
            headers["If-None-Match"] = self.snapshot.etag
        response = await self.client.get(f"{self.api_url.rstrip('/')}/v1/routing", headers=headers)
        now = self.clock()
        if response.status_code == 304 and self.snapshot is not None:
            self.snapshot = self.snapshot.refreshed(now)
            return False
        response.raise_for_status()
        self.snapshot = parse_snapshot(response.json(), response.headers.get("ETag", ""), now)
        for callback in self.on_change:
            callback(self.snapshot)
        return True

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except (httpx.HTTPError, ValueError, KeyError) as error:
                log.warning("routing table refresh failed: %s", error)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass
