"""`llmfleet plan`: tables, --json, baselines, exit codes and field-naming errors."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from control_plane.cli.plan_cmd import plan
from tests.unit.scheduler.test_scenario import minimal

app = typer.Typer()
app.command("plan")(plan)


@app.command("version")
def _version() -> None:  # a second command keeps typer in multi-command mode, like the real app
    typer.echo("test")


runner = CliRunner()


def scenario(tmp_path: Path, data: dict | None = None) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data if data is not None else minimal()))
    return path


def test_json_output_has_the_promised_fields(tmp_path: Path) -> None:
    data = minimal()
    data["pools"].append(
        {
            "id": "p2",
            "cloud": "aws",
            "region": "eu",
            "instance_type": "g6e.xlarge",
            "accelerator": "L40S",
            "gpus": 1,
            "market": "on-demand",
            "price_per_hour": 1.9,
            "max_instances": 8,
        }
    )
    result = runner.invoke(
        app,
        [
            "plan",
            str(scenario(tmp_path, data)),
            "--json",
            "--time-limit",
            "20",
            "--baselines",
            "skyserve,on_demand_only",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in (
        "status",
        "cost_per_hour",
        "lower_bound_per_hour",
        "solve_seconds",
        "replicas",
        "routing",
        "baselines",
    ):
        assert key in out
    assert out["status"] == "optimal"
    assert out["cost_per_hour"] >= out["lower_bound_per_hour"]
    assert set(out["baselines"]) == {"skyserve", "on_demand_only"}
    assert {"deployment", "variant", "pool", "tp", "count"} <= set(out["replicas"][0])
    assert {"deployment", "client_region", "pool", "share"} <= set(out["routing"][0])


def test_table_output_lists_replicas_and_baselines(tmp_path: Path) -> None:
    data = minimal()
    data["deployments"][0].update(spread=False, max_spot_share=1.0)
    result = runner.invoke(app, ["plan", str(scenario(tmp_path, data)), "--baselines", "skyserve"])
    assert result.exit_code == 0, result.output
    assert "Replicas" in result.stdout and "skyserve" in result.stdout and "llmfleet" in result.stdout


def test_bad_scenario_names_the_field_and_exits_2(tmp_path: Path) -> None:
    data = minimal()
    data["deployments"][0]["slo"]["ttft_p95_ms"] = "fast"
    result = runner.invoke(app, ["plan", str(scenario(tmp_path, data))])
    assert result.exit_code == 2
    assert "deployments[0].slo.ttft_p95_ms" in result.stderr
    assert result.stdout == ""


def test_unknown_baseline_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", str(scenario(tmp_path)), "--baselines", "skyserve,magic"])
    assert result.exit_code == 2 and "magic" in result.stderr


def test_infeasible_scenario_exits_1_and_says_why(tmp_path: Path) -> None:
    # spread over two regions, but the only pool is in one region
    data = minimal()
    data["deployments"][0]["max_spot_share"] = 1.0
    result = runner.invoke(app, ["plan", str(scenario(tmp_path, data)), "--json", "--baselines", "none"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["status"] == "infeasible" and out["cost_per_hour"] is None
    assert any(b.startswith("spread") for b in out["binding"])
    assert out["baselines"] == {}
