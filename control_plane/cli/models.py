"""`llmfleet models`: the model registry through the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli.api_client import DEFAULT_API_URL, ApiClient, ApiKey, ApiUrl
from control_plane.cli.errors import cli_errors
from control_plane.cli.files import read_spec
from control_plane.cli.output import JsonFlag, emit, emit_json

app = typer.Typer(help="Models, versions, variants, aliases and promotions.", no_args_is_help=True)


@app.command("list")
@cli_errors
def list_(api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """List your team's models."""
    rows = ApiClient(api_url, api_key).get("/v1/models")
    emit(rows, as_json, "Models", ["name", "versions", "aliases", "description"],
         [(m["name"], ", ".join(m["versions"]), ", ".join(f"{a}→{v}" for a, v in m["aliases"].items()),
           m["description"]) for m in rows])


@app.command("create")
@cli_errors
def create(
    name: str,
    description: Annotated[str, typer.Option("--description")] = "",
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Register a model family."""
    model = ApiClient(api_url, api_key).post("/v1/models", json={"name": name, "description": description})
    emit_json(model) if as_json else print(f"created model {model['name']}")


@app.command("get")
@cli_errors
def get(name: str, api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """Show a model's versions with their variants and environments."""
    api = ApiClient(api_url, api_key)
    versions = api.get(f"/v1/models/{name}/versions")
    emit(versions, as_json, f"Model {name}", ["version", "params (B)", "variants", "environments", "aliases", "digest"],
         [(v["version"], v["architecture"]["params_b"], ", ".join(x["name"] for x in v["variants"]),
           ", ".join(v["environments"]), ", ".join(v["aliases"]), v["digest"][:19]) for v in versions])


@app.command("register-version")
@cli_errors
def register_version(
    name: str,
    spec_file: Annotated[Path, typer.Option("--file", "-f", help="YAML/JSON: version, artifact_uri, digest, "
                                                                 "architecture, variants")],
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Register an immutable version of a model."""
    version = ApiClient(api_url, api_key).post(f"/v1/models/{name}/versions", json=read_spec(spec_file))
    emit_json(version) if as_json else print(f"registered {name}@{version['version']}")


@app.command("set-alias")
@cli_errors
def set_alias(
    name: str, alias: str, version: str,
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Point an alias (champion, canary...) at a version."""
    model = ApiClient(api_url, api_key).request("PUT", f"/v1/models/{name}/aliases/{alias}", json={"version": version})
    emit_json(model) if as_json else print(f"{name}:{alias} → {version}")


@app.command("promote")
@cli_errors
def promote(
    name: str, version: str,
    environment: Annotated[str, typer.Argument(help="staging or prod")],
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Promote a version to the next environment (dev → staging → prod)."""
    row = ApiClient(api_url, api_key).post(
        f"/v1/models/{name}/versions/{version}/promotions", json={"environment": environment}
    )
    emit_json(row) if as_json else print(f"{name}@{version} is now in: {', '.join(row['environments'])}")
