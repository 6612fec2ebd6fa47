"""`llmfleet keys create --scope agent --cluster C` makes a cluster-bound agent key; `llmfleet agent` refuses to
start without one."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from control_plane.cli.main import app as cli
from registry.api_keys import Scope, authenticate
from registry.clusters import create_cluster
from registry.db import make_engine, session_factory, transaction, upgrade_to_head

runner = CliRunner()


def test_agent_keys_from_the_cli_are_bound_to_their_cluster(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    engine = make_engine(url)
    upgrade_to_head(engine)
    with transaction(session_factory(engine)) as session:
        create_cluster(session, team="platform", actor="test", name="aws-use1", cloud="aws", region="us-east-1",
                       zone=None)
    env = {"LLMFLEET_DATABASE_URL": url}
    result = runner.invoke(cli, ["keys", "create", "--team", "platform", "--scope", "agent", "--cluster", "aws-use1",
                                 "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["scopes"] == ["agent"] and created["cluster"] == "aws-use1"
    with transaction(session_factory(engine)) as session:
        row = authenticate(session, created["key"])
        assert row is not None and row.cluster == "aws-use1" and row.scopes == [Scope.AGENT.value]
    listed = json.loads(runner.invoke(cli, ["keys", "list", "--json"], env=env).stdout)
    assert listed[0]["cluster"] == "aws-use1"
    for bad in (["--scope", "agent"], ["--scope", "agent", "--cluster", "moon-1"],
                ["--scope", "read", "--cluster", "aws-use1"]):
        refused = runner.invoke(cli, ["keys", "create", "--team", "platform", *bad], env=env)
        assert refused.exit_code == 2 and refused.stderr.startswith("error: "), bad
    engine.dispose()


def test_the_agent_command_needs_a_key() -> None:
    result = runner.invoke(cli, ["agent", "--cluster", "aws-use1", "--api-url", "http://127.0.0.1:1"],
                           env={"LLMFLEET_AGENT_API_KEY": ""})
    assert result.exit_code == 2 and "no API key" in result.stderr
