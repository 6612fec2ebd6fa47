"""`llmfleet deployments`: ask for, change and remove deployments through the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli.api_client import DEFAULT_API_URL, ApiClient, ApiKey, ApiUrl
from control_plane.cli.errors import cli_errors
from control_plane.cli.files import read_spec
from control_plane.cli.output import JsonFlag, emit, emit_json

app = typer.Typer(help="Deployments: a model version served under an SLO.", no_args_is_help=True)


def _summary(d: dict) -> tuple:  # type: ignore[type-arg]
    replicas = ", ".join(f"{k}={v}" for k, v in d["observed"]["replicas_by_status"].items()) or "none"
    return (d["name"], f"{d['model']}@{d['version']}", d["environment"], d["phase"],
            f"{d['slo']['ttft_p95_ms']:g}/{d['slo']['tpot_p95_ms']:g}",
            f"{sum(x['rps'] for x in d['demand']):g}", replicas)


_COLUMNS = ["name", "model", "env", "phase", "SLO ttft/tpot ms", "demand rps", "replicas"]


@app.command("list")
@cli_errors
def list_(api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """List your team's deployments."""
    rows = ApiClient(api_url, api_key).get("/v1/deployments")
    emit(rows, as_json, "Deployments", _COLUMNS, [_summary(d) for d in rows])


@app.command("get")
@cli_errors
def get(name: str, api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """Show a deployment's desired and observed state."""
    row = ApiClient(api_url, api_key).get(f"/v1/deployments/{name}")
    emit(row, as_json, f"Deployment {name}", _COLUMNS, [_summary(row)])


@app.command("create")
@cli_errors
def create(
    spec_file: Annotated[Path, typer.Option("--file", "-f", help="YAML/JSON deployment spec")],
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Create a deployment from a spec file."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    row = ApiClient(api_url, api_key).post("/v1/deployments", json=read_spec(spec_file), headers=headers)
    emit_json(row) if as_json else print(f"created deployment {row['name']} ({row['model']}@{row['version']})")


@app.command("update")
@cli_errors
def update(
    name: str,
    spec_file: Annotated[Path, typer.Option("--file", "-f", help="YAML/JSON with the fields to change")],
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Change a deployment; refused with a conflict if someone changed it since it was read."""
    api = ApiClient(api_url, api_key)
    current = api.get(f"/v1/deployments/{name}")
    row = api.request("PATCH", f"/v1/deployments/{name}", json=read_spec(spec_file),
                      headers={"If-Match": f'"{current["resource_version"]}"'})
    emit_json(row) if as_json else print(f"updated {name} (generation {row['desired_generation']})")


@app.command("delete")
@cli_errors
def delete(name: str, api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """Delete a deployment (its replicas drain first)."""
    row = ApiClient(api_url, api_key).request("DELETE", f"/v1/deployments/{name}")
    result = {"name": name, "deleted": row is None, "phase": row["phase"] if row else "deleted"}
    emit_json(result) if as_json else print(f"{name}: {result['phase']}")
