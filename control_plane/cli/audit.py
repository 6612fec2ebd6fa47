"""`llmfleet audit`: the audit trail through the REST API."""

from __future__ import annotations

from typing import Annotated

import typer

from control_plane.cli.api_client import DEFAULT_API_URL, ApiClient, ApiKey, ApiUrl
from control_plane.cli.errors import cli_errors
from control_plane.cli.output import JsonFlag, emit


@cli_errors
def audit(
    object_type: Annotated[str | None, typer.Option("--object-type", help="model, cluster, deployment, api_key")] = None,
    object_id: Annotated[str | None, typer.Option("--object-id")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """List audit events, newest first."""
    params = {k: v for k, v in {"object_type": object_type, "object_id": object_id, "limit": limit}.items() if v}
    rows = ApiClient(api_url, api_key).get("/v1/audit", params=params)
    emit(rows, as_json, "Audit", ["id", "at", "team", "actor", "action", "object"],
         [(e["id"], e["at"], e["team"], e["actor"], e["action"], f"{e['object_type']}/{e['object_id']}") for e in rows])
