"""`llmfleet simulate`: the --json contract, the table, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml
from typer.testing import CliRunner

from control_plane.cli import simulate_cmd
from tests.unit.fleet_sim.conftest import trace_scenario

app = typer.Typer()
app.command("simulate")(simulate_cmd.simulate)


@app.command("version")
def _version() -> None:  # a second command keeps typer in multi-command mode, like the real app
    typer.echo("test")


runner = CliRunner()


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "day.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_json_has_the_promised_fields_per_policy(tmp_path: Path) -> None:
    path = write(tmp_path, trace_scenario())
    result = runner.invoke(
        app,
        [
            "simulate",
            str(path),
            "--hours",
            "0.5",
            "--policies",
            "llmfleet,static,bound",
            "--seed",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"llmfleet", "static", "bound"}
    for name in ("llmfleet", "static"):
        row = out[name]
        for key in ("cost_usd", "slo_attainment", "p95_ttft_ms", "p95_tpot_ms", "tokens"):
            assert key in row, key
        assert row["cost_usd"] > 0 and row["tokens"] > 0
        assert 0 <= row["slo_attainment"] <= 1
        assert row["p95_ttft_ms"] > 0 and row["p95_tpot_ms"] > 0
    assert out["bound"]["cost_usd"] <= min(out["llmfleet"]["cost_usd"], out["static"]["cost_usd"])
    assert out["bound"]["slo_attainment"] is None
    bound = out["bound"]
    assert (
        bound["cost_usd"]
        <= bound["cost_usd_peak_minute_demand"]
        <= bound["lower_usd_perfect_foresight_plan"] + 1e-2
        <= bound["cost_usd_perfect_foresight_plan"] + 2e-2
    )
    again = runner.invoke(
        app,
        [
            "simulate",
            str(path),
            "--hours",
            "0.5",
            "--policies",
            "llmfleet,static,bound",
            "--seed",
            "3",
            "--json",
        ],
    )
    assert json.loads(again.stdout) == out  # seeded: the same day twice


def test_table_output(tmp_path: Path) -> None:
    path = write(tmp_path, trace_scenario())
    result = runner.invoke(app, ["simulate", str(path), "--hours", "0.25", "--policies", "static"])
    assert result.exit_code == 0, result.output
    assert "static" in result.stdout and "Policies on the same requests" in result.stdout


def test_bad_simulation_block_is_one_line_exit_2(tmp_path: Path) -> None:
    data = trace_scenario()
    data["simulation"]["outages"] = [{"region": "atlantis", "start_h": 1, "duration_h": 1}]
    result = runner.invoke(app, ["simulate", str(write(tmp_path, data)), "--json"])
    assert result.exit_code == 2
    assert "simulation.outages[0].region" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_options_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, trace_scenario())
    for args in (["--policies", "llmfleet,nope"], ["--hours", "0"], ["--hours", "-3"]):
        result = runner.invoke(app, ["simulate", str(path), *args])
        assert result.exit_code == 2, args
        assert result.stderr.startswith("error: ")
    missing = runner.invoke(app, ["simulate", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr
