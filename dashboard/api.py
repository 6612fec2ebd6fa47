"""Reading the control-plane REST API over HTTP (httpx). Every method returns the decoded JSON; errors become
`ApiError` with the problem's detail, so a page can say what went wrong instead of crashing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

COST_GROUPS = ("deployment", "team", "region", "accelerator", "market")


class ApiError(RuntimeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ControlPlane:
    """Read-only view of the API for one key. Inject `transport` (httpx.MockTransport, ASGITransport) in tests."""

    def __init__(self, base_url: str, api_key: str, *, transport: httpx.BaseTransport | None = None,
                 timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {api_key}"},
                                  timeout=httpx.Timeout(timeout_s), transport=transport)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: str) -> Any:
        try:
            response = self._http.get(path, params=params or None)
        except httpx.HTTPError as error:
            raise ApiError(f"cannot reach the control-plane API at {self.base_url}: {error}") from None
        if response.status_code >= 400:
            raise ApiError(_describe(response), response.status_code)
        return response.json()

    def costs(self, group_by: str) -> dict[str, Any]:
        if group_by not in COST_GROUPS:
            raise ValueError(f"group_by must be one of {', '.join(COST_GROUPS)}")
        result: dict[str, Any] = self.get("/v1/costs", group_by=group_by)
        return result

    def deployments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/v1/deployments")
        return result

    def deployment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/deployments/{_seg(name)}")
        return result

    def deployment_cost(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/deployments/{_seg(name)}/cost")
        return result

    def placement(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/deployments/{_seg(name)}/placement")
        return result

    def plan(self, name: str) -> dict[str, Any] | None:
        """The latest plan with its reasons; None when this API does not expose plans."""
        try:
            result: dict[str, Any] = self.get(f"/v1/deployments/{_seg(name)}/plan")
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return result

    def rollouts(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(f"/v1/deployments/{_seg(name)}/rollouts")
        return result

    def workflows(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/deployments/{_seg(name)}/workflows")
        return result

    def routing(self) -> dict[str, Any] | None:
        """The routing table (shares per client region); None when the key may not read it (admin/agent only)."""
        try:
            result: dict[str, Any] = self.get("/v1/routing")
        except ApiError as error:
            if error.status == 403:
                return None
            raise
        return result

    def audit(self, object_type: str, object_id: str, limit: int = 20) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/v1/audit", object_type=object_type, object_id=object_id,
                                                limit=str(limit))
        return result


def _seg(value: str) -> str:
    return quote(value, safe="")


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"{detail or body} (HTTP {response.status_code})"
