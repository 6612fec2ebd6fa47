"""`llmfleet catalog refresh --cloud aws --out FILE`: a fresh GPU price catalog from SkyPilot's own.

llmfleet ships a dated snapshot (control_plane/data/catalog/, see its PROVENANCE.md) and never downloads
prices by itself. This command is the one explicit, online way to update it: it downloads the cloud's
``vms.csv`` from where the installed SkyPilot gets it (same URL, same schema version, same fallback mirror
on rate limiting), keeps the rows with an accelerator in SkyPilot's own column order, writes them to FILE
and a provenance note beside it (FILE.provenance.md). `llmfleet clusters import-catalog FILE` imports it.

Offline (or on any download failure) it fails with one line and exit status 2, and writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer

from control_plane.cli.errors import CliError, cli_errors

app = typer.Typer(help="GPU price catalogs in SkyPilot's vms.csv format.", no_args_is_help=True)

DOWNLOAD_TIMEOUT_S = 60.0
_RATE_LIMITED = 429


@dataclass(frozen=True, slots=True)
class CatalogSource:
    """Where SkyPilot downloads one cloud's catalog from."""

    cloud: str
    url: str
    mirror_url: str
    schema_version: str
    skypilot_version: str


@dataclass(frozen=True, slots=True)
class GpuRows:
    text: str  # CSV: the source's header and the rows that name an accelerator
    rows: int
    total_rows: int


def http_client() -> httpx.Client:
    """The client for the download (a function, so tests can hand in a transport that fails)."""
    return httpx.Client(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True)


def skypilot_source(cloud: str) -> CatalogSource:
    """The URLs of the installed SkyPilot's catalog for ``cloud``; CliError for a cloud it has none for."""
    try:
        import sky
        from sky.skylet import constants
    except ImportError:
        raise CliError("SkyPilot is not installed (pip install 'llmfleet[cloud]')") from None
    name = cloud.strip().lower()
    # Local and on-prem "clouds" have no price catalog.
    priced = [c for c in constants.ALL_CLOUDS if c not in ("kubernetes", "ssh", "slurm")]
    if name not in priced:
        raise CliError(f"unknown cloud {cloud!r} (SkyPilot has catalogs for: {', '.join(sorted(priced))})")
    path = f"{constants.CATALOG_SCHEMA_VERSION}/{name}/vms.csv"
    return CatalogSource(
        cloud=name,
        url=f"{constants.HOSTED_CATALOG_DIR_URL}/{path}",
        mirror_url=f"{constants.HOSTED_CATALOG_DIR_URL_S3_MIRROR}/{path}",
        schema_version=constants.CATALOG_SCHEMA_VERSION,
        skypilot_version=sky.__version__,
    )


def download(source: CatalogSource, client: httpx.Client) -> tuple[str, str]:
    """(text, URL it came from). CliError on any network or HTTP failure."""
    headers = {"User-Agent": f"llmfleet (SkyPilot {source.skypilot_version})"}
    try:
        response = client.get(source.url, headers=headers)
        used = source.url
        if response.status_code == _RATE_LIMITED:  # GitHub rate limits; SkyPilot falls back the same way
            response = client.get(source.mirror_url, headers=headers)
            used = source.mirror_url
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise CliError(
            f"cannot download the {source.cloud} catalog: HTTP {exc.response.status_code} from {used}"
        ) from None
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(
            f"cannot download the {source.cloud} catalog (offline?): {reason}; "
            "the shipped snapshot in control_plane/data/catalog/ still works"
        ) from None
    return response.text, used


def gpu_rows(text: str) -> GpuRows:
    """The rows that name an accelerator, with the source's header and column order."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or "AcceleratorName" not in header:
        raise CliError("the downloaded file is not a SkyPilot vms.csv (no AcceleratorName column)")
    column = header.index("AcceleratorName")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    kept = total = 0
    for row in reader:
        if not row:
            continue
        total += 1
        if column < len(row) and row[column].strip():
            writer.writerow(row)
            kept += 1
    return GpuRows(out.getvalue(), kept, total)


def provenance(
    source: CatalogSource, used_url: str, raw: str, rows: GpuRows, when: datetime, out: Path
) -> str:
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return (
        f"# Provenance of {out.name}\n\n"
        f"- Source: {used_url} (the public SkyPilot catalog, skypilot-org/skypilot-catalog, Apache-2.0),\n"
        f"  catalog schema {source.schema_version}, as used by SkyPilot {source.skypilot_version}.\n"
        f"- Downloaded: {when.isoformat(timespec='seconds')} by `llmfleet catalog refresh --cloud {source.cloud}`.\n"
        f"- SHA-256 of the downloaded file: {digest}\n"
        f"- Kept: {rows.rows} rows with an accelerator, of {rows.total_rows}; header and column order unchanged.\n"
        "- Public list prices per instance and hour in USD: facts, not code; a dated snapshot (prices change).\n"
    )


@app.command("refresh")
@cli_errors
def refresh(
    cloud: Annotated[str, typer.Option("--cloud", help="aws, gcp, lambda, nebius, runpod, ...")],
    out: Annotated[Path, typer.Option("--out", help="where to write the GPU rows (CSV)")],
) -> None:
    """Download CLOUD's price catalog from SkyPilot's hosted catalog and keep its GPU rows (needs network)."""
    if not out.parent.is_dir():
        raise CliError(f"--out: directory {out.parent} does not exist")
    source = skypilot_source(cloud)
    with http_client() as client:
        raw, used_url = download(source, client)
    rows = gpu_rows(raw)
    if rows.rows == 0:
        raise CliError(f"the {source.cloud} catalog has no rows with an accelerator")
    note_path = out.with_name(out.name + ".provenance.md")
    out.write_text(rows.text, encoding="utf-8")
    note_path.write_text(provenance(source, used_url, raw, rows, datetime.now(UTC), out), encoding="utf-8")
    typer.echo(f"wrote {rows.rows} GPU rows of {rows.total_rows} to {out} (provenance: {note_path})")
