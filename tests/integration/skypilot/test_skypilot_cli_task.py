"""`llmfleet skypilot task`: a scenario's replica as SkyPilot task YAML, and one-line errors (exit 2).

The command runs the agents' task builder in a subprocess. That subprocess gets an unreachable proxy,
so a catalog download there would fail the test just as the tripwire does in this process.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from agents.backends.skypilot.sky_task import canonical_config, validate_task_config
from agents.backends.skypilot.task_config import API_KEY_SECRET, serve_argv_from_run
from control_plane.cli import skypilot_cmd
from tests.fixtures.skypilot.sky_offline import FIXTURES, REPO_ROOT

CHECKED_IN = REPO_ROOT / "benchmarks" / "scenarios" / "single-region-chat.yaml"
THREE_MARKETS = FIXTURES / "three-markets.yaml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def no_network_in_children(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(skypilot_cmd.app, name="skypilot")
    return app


def invoke(*args: str) -> Result:
    return runner.invoke(cli(), ["skypilot", "task", *args])


def printed_task(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def test_checked_in_scenario_prints_a_valid_task(sky: ModuleType) -> None:
    scenario = yaml.safe_load(CHECKED_IN.read_text())
    pool = next(p for p in scenario["pools"] if p["market"] == "spot" and p["instance_type"] == "g6e.xlarge")
    result = invoke(str(CHECKED_IN), "--deployment", "chat-8b", "--pool", pool["id"],
                    "--artifact", "meta-llama/Llama-3.1-8B-Instruct")  # fmt: skip
    config = printed_task(result)  # validated by SkyPilot in the builder, offline
    task = validate_task_config(config)  # and again here, in this process
    again = sky.Task.from_yaml_config(yaml.safe_load(yaml.safe_dump(canonical_config(task))))
    assert canonical_config(again) == canonical_config(task)
    resources = config["resources"]
    assert resources["use_spot"] is True and resources["instance_type"] == "g6e.xlarge"
    assert resources["accelerators"] == {"L40S": 1} and resources["infra"] == "aws/us-east-1"
    assert config["secrets"] == {API_KEY_SECRET: None}
    argv = serve_argv_from_run(config["run"])
    assert argv[2] == "meta-llama/Llama-3.1-8B-Instruct" and "--quantization" not in argv  # bf16 by default
    assert result.stdout.startswith(f"# AWS zone ID {pool['zone']} is not pinned")


MATRIX = [
    ("bf16", "aws-h100x8-od", "on-demand"),
    ("bf16", "aws-h100x8-spot-az6", "spot"),
    ("fp8", "nebius-h100-od", "on-demand"),
    ("fp8", "nebius-h100-spot", "spot"),
    ("awq-int4", "aws-a10g-spot-az2", "spot"),
    ("awq-int4", "lambda-h100x8-od", "on-demand"),
]


@pytest.mark.parametrize(("variant", "pool", "market"), MATRIX)
def test_every_variant_and_market(sky: ModuleType, variant: str, pool: str, market: str) -> None:
    # The builder's own SkyPilot check is skipped here (it is covered above) to keep this matrix fast; the
    # printed YAML is validated in this process instead.
    result = invoke(str(THREE_MARKETS), "--deployment", "chat-8b", "--pool", pool, "--variant", variant,
                    "--artifact", "org/model", "--no-validate")  # fmt: skip
    config = printed_task(result)
    task = validate_task_config(config)
    assert next(iter(task.resources)).use_spot is (market == "spot")
    argv = serve_argv_from_run(config["run"])
    expected = {"bf16": None, "fp8": "fp8", "awq-int4": "awq"}[variant]
    assert (argv[argv.index("--quantization") + 1] if "--quantization" in argv else None) == expected
    assert argv[argv.index("--max-model-len") + 1] == "16384"
    assert argv[argv.index("--served-model-name") + 1] == "chat-8b"


def test_tp_defaults_to_the_smallest_fit_and_can_be_chosen() -> None:
    config = printed_task(invoke(str(THREE_MARKETS), "--deployment", "chat-8b", "--pool", "aws-h100x8-od",
                                 "--artifact", "org/model", "--no-validate"))  # fmt: skip
    argv = serve_argv_from_run(config["run"])
    assert argv[argv.index("--tensor-parallel-size") + 1] == "1"
    config = printed_task(invoke(str(THREE_MARKETS), "--deployment", "chat-8b", "--pool", "aws-h100x8-od",
                                 "--tp", "8", "--artifact", "org/model", "--no-validate"))  # fmt: skip
    argv = serve_argv_from_run(config["run"])
    assert argv[argv.index("--tensor-parallel-size") + 1] == "8"


def test_no_artifact_is_noted_on_stderr() -> None:
    result = invoke(
        str(THREE_MARKETS), "--deployment", "chat-8b", "--pool", "nebius-h100-od", "--no-validate"
    )
    assert result.exit_code == 0 and "no --artifact" in result.stderr


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--deployment", "nope", "--pool", "aws-h100x8-od"],
            "unknown deployment 'nope' (scenario has: chat-8b)",
        ),
        (["--deployment", "chat-8b", "--pool", "nope"], "unknown pool 'nope' (scenario has: aws-h100x8-od"),
        (
            ["--deployment", "chat-8b", "--pool", "aws-h100x8-od", "--variant", "int3"],
            "has no variant 'int3'",
        ),
        (
            ["--deployment", "chat-8b", "--pool", "aws-a10g-spot-az2", "--tp", "2"],
            "does not pack into 1 GPUs",
        ),
        (["--deployment", "chat-8b", "--pool", "aws-h100x8-od", "--port", "0"], "--port 0 is out of range"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    assert message in one_line_error(invoke(str(THREE_MARKETS), *args))


def test_checked_in_scenario_unknown_names_and_quality_budget() -> None:
    assert "unknown deployment 'chat-70b'" in one_line_error(invoke(str(CHECKED_IN), "--deployment", "chat-70b",
                                                                    "--pool", "x"))  # fmt: skip
    assert "unknown pool 'x'" in one_line_error(
        invoke(str(CHECKED_IN), "--deployment", "chat-8b", "--pool", "x")
    )
    pool = yaml.safe_load(CHECKED_IN.read_text())["pools"][0]["id"]
    over_budget = invoke(str(CHECKED_IN), "--deployment", "chat-8b", "--pool", pool, "--variant", "awq-int4")
    assert "over deployment chat-8b's budget of 0.5" in one_line_error(over_budget)


def test_missing_or_broken_scenario(tmp_path: Path) -> None:
    assert "cannot read" in one_line_error(
        invoke(str(tmp_path / "none.yaml"), "--deployment", "d", "--pool", "p")
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("regions: []\npools: []\nmodels: []\ndeployments: []\n")
    assert "regions" in one_line_error(invoke(str(broken), "--deployment", "d", "--pool", "p"))


def test_skypilot_refusal_comes_back_as_one_line() -> None:
    # The builder's offline SkyPilot check runs (the default) and refuses an instance type the catalog lacks.
    result = invoke(str(THREE_MARKETS), "--deployment", "chat-8b", "--pool", "aws-not-in-catalog",
                    "--artifact", "org/model")  # fmt: skip
    assert "Invalid instance type 'p9.96xlarge' for cloud AWS" in one_line_error(result)
