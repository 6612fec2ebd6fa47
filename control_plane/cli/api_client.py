"""A small HTTP client for the control-plane API; errors become CliError with the problem's detail."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from control_plane.cli.errors import CliError

DEFAULT_API_URL = "http://127.0.0.1:8080"

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="LLMFLEET_API_URL", help="control-plane URL")]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar="LLMFLEET_API_KEY", help="API key (lf_...)", show_default=False)
]


class ApiClient:
    def __init__(self, base_url: str, api_key: str | None, transport: httpx.BaseTransport | None = None) -> None:
        if not api_key:
            raise CliError("no API key: pass --api-key or set LLMFLEET_API_KEY")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(30.0),
            transport=transport,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach the API at {self._http.base_url}: {error}") from None
        if response.status_code >= 400:
            raise CliError(_describe(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"{detail or body} (HTTP {response.status_code})"


