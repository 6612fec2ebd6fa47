"""The agent's HTTP client for the control plane's agent API (the only way the agent reaches it)."""

from __future__ import annotations

from typing import Any

import httpx

from agents.agent.desired import DesiredState, DesiredStateError, parse_desired


class ControlPlaneUnavailable(RuntimeError):
    """The call did not get an answer it can use: unreachable, timed out, 5xx, or refused (401/403)."""


class ControlPlaneClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        cluster: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.cluster = cluster
        # trust_env=False: a proxy set for the outside world must not sit between agent and control plane.
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "llmfleet-agent"},
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            trust_env=False,
        )
        self._prefix = f"/v1/agent/clusters/{cluster}"

    async def fetch_desired(self, etag: str | None) -> DesiredState | None:
        """The cluster's desired state, or None when it is unchanged since `etag` (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        response = await self._request("GET", f"{self._prefix}/desired", headers=headers)
        if response.status_code == 304:
            return None
        try:
            return parse_desired(response.json(), etag=response.headers.get("etag"))
        except (ValueError, DesiredStateError) as error:
            raise ControlPlaneUnavailable(f"unreadable desired state: {error}") from None

    async def post_heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", f"{self._prefix}/heartbeat", json=body)
        try:
            result: dict[str, Any] = response.json()
        except ValueError:
            raise ControlPlaneUnavailable("unreadable heartbeat answer") from None
        return result

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ControlPlaneUnavailable(f"{method} {path}: {type(error).__name__}: {error}") from None
        if response.status_code >= 400:
            detail = response.text[:300]
            raise ControlPlaneUnavailable(f"{method} {path}: HTTP {response.status_code}: {detail}")
        return response

    async def aclose(self) -> None:
        await self._http.aclose()
