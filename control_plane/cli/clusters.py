"""`llmfleet clusters`: clusters and their GPU pools through the REST API."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli.api_client import DEFAULT_API_URL, ApiClient, ApiKey, ApiUrl
from control_plane.cli.errors import CliError, cli_errors
from control_plane.cli.output import JsonFlag, emit, emit_json

app = typer.Typer(help="Clusters (one per cloud region) and their GPU pools.", no_args_is_help=True)


@app.command("list")
@cli_errors
def list_(api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """List clusters with their health."""
    rows = ApiClient(api_url, api_key).get("/v1/clusters")
    emit(rows, as_json, "Clusters", ["name", "cloud", "region", "zone", "health", "pools", "last heartbeat"],
         [(c["name"], c["cloud"], c["region"], c["zone"], c["health"], c["pools"], c["last_heartbeat_at"])
          for c in rows])


@app.command("create")
@cli_errors
def create(
    name: str,
    cloud: Annotated[str, typer.Option("--cloud")],
    region: Annotated[str, typer.Option("--region")],
    zone: Annotated[str | None, typer.Option("--zone")] = None,
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Register a cluster (admin)."""
    row = ApiClient(api_url, api_key).post(
        "/v1/clusters", json={"name": name, "cloud": cloud, "region": region, "zone": zone}
    )
    emit_json(row) if as_json else print(f"created cluster {row['name']} ({row['cloud']} {row['region']})")


@app.command("pools")
@cli_errors
def pools(name: str, api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """List a cluster's pools."""
    rows = ApiClient(api_url, api_key).get(f"/v1/clusters/{name}/pools")
    emit(rows, as_json, f"Pools of {name}",
         ["name", "accelerator", "GPUs", "market", "zone", "$/hour", "quota"],
         [(p["name"], p["accelerator"], p["gpus_per_instance"], p["market"], p["zone"], f"{p['price_per_hour']:.4f}",
           p["max_instances"]) for p in rows])


def _regions_in(text: str) -> set[str]:
    return {row.get("Region", "") for row in csv.DictReader(io.StringIO(text))} - {""}


@app.command("import-catalog")
@cli_errors
def import_catalog(
    catalog_file: Annotated[Path, typer.Argument(help="a price catalog in SkyPilot's vms.csv format")],
    cluster: Annotated[str | None, typer.Option("--cluster", help="only this cluster (default: every "
                                                                  "cluster whose region the file lists)")] = None,
    max_instances: Annotated[int | None, typer.Option("--max-instances", min=0, help="quota for new pools")] = None,
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False,
) -> None:
    """Create or update pools from a price catalog (admin)."""
    try:
        text = catalog_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {catalog_file}: {error}") from None
    api = ApiClient(api_url, api_key)
    if cluster is not None:
        targets = [cluster]
    else:
        regions = _regions_in(text)
        targets = [c["name"] for c in api.get("/v1/clusters") if c["region"] in regions]
        if not targets:
            raise CliError(f"no registered cluster is in a region that {catalog_file} lists")
    params = {"max_instances": max_instances} if max_instances is not None else {}
    results = [
        api.post(f"/v1/clusters/{name}/pools/import", content=text.encode(), params=params,
                 headers={"Content-Type": "text/csv"})
        for name in targets
    ]
    emit(results, as_json, "Catalog import", ["cluster", "created", "updated", "skipped rows"],
         [(r["cluster"], r["created"], r["updated"], len(r["skipped"])) for r in results])
