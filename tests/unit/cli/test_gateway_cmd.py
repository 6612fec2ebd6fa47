"""`llmfleet gateway`: refuses a missing or malformed key with one line and exit status 2."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from control_plane.cli.gateway_cmd import gateway


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("gateway")(gateway)
    app.command("noop")(lambda: None)  # two commands: typer keeps the `gateway` sub-command name
    return app


def test_gateway_refuses_a_bad_key() -> None:
    result = CliRunner().invoke(cli(), ["gateway", "--region", "us-east-1", "--api-url", "http://127.0.0.1:1",
                                        "--api-key", "not-a-key"], env={"LLMFLEET_AGENT_KEY": ""})
    assert result.exit_code == 2 and "lf_" in result.output


def test_gateway_help_names_the_options() -> None:
    result = CliRunner().invoke(cli(), ["gateway", "--help"])
    assert result.exit_code == 0 and "--region" in result.output and "--redis-url" in result.output
