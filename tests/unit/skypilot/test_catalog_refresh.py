"""`llmfleet catalog refresh`: SkyPilot's catalog location, GPU-row filtering, and the offline failure.

No test reaches the network: the offline case hands the command an HTTP transport whose connection fails
the way it fails on this machine (name resolution), and the tripwire (conftest) catches anything else.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import httpx
import pytest
import typer
from typer.testing import CliRunner

from control_plane.cli import catalog_cmd
from tests.fixtures.skypilot.sky_offline import CATALOG_SNAPSHOT

runner = CliRunner()


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(catalog_cmd.app, name="catalog")
    return app


class UnreachableNetwork(httpx.BaseTransport):
    """Every request fails to connect, as offline (the failing network call the refresh must survive)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)


def test_offline_refresh_fails_with_one_line_and_writes_nothing(
    sky: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = UnreachableNetwork()
    monkeypatch.setattr(catalog_cmd, "http_client", lambda: httpx.Client(transport=network))
    out = tmp_path / "aws.csv"
    result = runner.invoke(cli(), ["catalog", "refresh", "--cloud", "aws", "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot download the aws catalog (offline?): ")
    assert "Temporary failure in name resolution" in lines[0]
    assert list(tmp_path.iterdir()) == []
    # It asked where SkyPilot itself downloads from, for the installed SkyPilot's catalog schema.
    from sky.skylet import constants

    assert network.urls == [
        f"{constants.HOSTED_CATALOG_DIR_URL}/{constants.CATALOG_SCHEMA_VERSION}/aws/vms.csv"
    ]


def test_source_follows_the_installed_skypilot(sky: ModuleType) -> None:
    source = catalog_cmd.skypilot_source("Nebius")
    assert source.cloud == "nebius"
    assert source.url.endswith("/nebius/vms.csv") and source.mirror_url.endswith("/nebius/vms.csv")
    assert source.skypilot_version == sky.__version__


@pytest.mark.parametrize("cloud", ["nope", "kubernetes"])
def test_unknown_cloud(sky: ModuleType, tmp_path: Path, cloud: str) -> None:
    result = runner.invoke(cli(), ["catalog", "refresh", "--cloud", cloud, "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: unknown cloud {cloud!r}")


def test_missing_out_directory(tmp_path: Path) -> None:
    result = runner.invoke(
        cli(), ["catalog", "refresh", "--cloud", "aws", "--out", str(tmp_path / "no" / "x.csv")]
    )
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_gpu_rows_keep_header_and_order() -> None:
    header = (CATALOG_SNAPSHOT / "lambda_vms_gpu_rows.csv").read_text().splitlines()[0]
    gpu_line = (CATALOG_SNAPSHOT / "lambda_vms_gpu_rows.csv").read_text().splitlines()[1]
    cpu_line = "cpu_4x_general,,,4.0,16.0,0.1,us-east-1,,"  # a CPU instance: no accelerator
    rows = catalog_cmd.gpu_rows(f"{header}\n{cpu_line}\n{gpu_line}\n")
    assert (rows.rows, rows.total_rows) == (1, 2)
    assert rows.text.splitlines()[0] == header
    assert rows.text.splitlines()[1].split(",")[:3] == gpu_line.split(",")[:3]


def test_the_shipped_snapshot_is_all_gpu_rows() -> None:
    text = (CATALOG_SNAPSHOT / "aws_vms_gpu_rows.csv").read_text()
    rows = catalog_cmd.gpu_rows(text)
    assert rows.rows == rows.total_rows == len(text.strip().splitlines()) - 1


def test_not_a_catalog_is_refused() -> None:
    from control_plane.cli.errors import CliError

    with pytest.raises(CliError, match="not a SkyPilot vms.csv"):
        catalog_cmd.gpu_rows("<html>rate limited</html>\n")


def test_provenance_names_source_hash_and_counts(sky: ModuleType, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    source = catalog_cmd.skypilot_source("aws")
    raw = (CATALOG_SNAPSHOT / "aws_vms_gpu_rows.csv").read_text()
    rows = catalog_cmd.gpu_rows(raw)
    note = catalog_cmd.provenance(
        source, source.url, raw, rows, datetime(2026, 11, 29, tzinfo=UTC), tmp_path / "a.csv"
    )
    assert source.url in note and "2026-11-29T00:00:00+00:00" in note
    assert f"Kept: {rows.rows} rows" in note and "SHA-256" in note and "Apache-2.0" in note
