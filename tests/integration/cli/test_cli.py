"""The `llmfleet` CLI against a real server: tables or --json on success; one line and exit code 2 on error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from control_plane.cli.main import app as cli
from tests.conftest import KeyMaker
from tests.support.fleet import SMALL_CATALOG, version_body
from tests.support.live_server import live_server
from registry.api_keys import Scope

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), env=env or {})
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout if code == 0 else result.stderr


@pytest.fixture
def api(app: FastAPI):  # type: ignore[no-untyped-def]
    with live_server(app) as url:
        yield url


def test_keys_create_json_against_the_configured_database(tmp_path: Path) -> None:
    env = {"LLMFLEET_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    created = json.loads(run("keys", "create", "--team", "search", "--scope", "deploy", "--scope", "read", "--json",
                             env=env))
    assert created["key"].startswith("lf_") and created["team"] == "search"
    assert created["scopes"] == ["deploy", "read"]
    listed = json.loads(run("keys", "list", "--json", env=env))
    assert [k["key_id"] for k in listed] == [created["key_id"]] and "key" not in listed[0]


def test_keys_create_rejects_bad_input(tmp_path: Path) -> None:
    env = {"LLMFLEET_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    message = run("keys", "create", "--team", "Bad Team", "--scope", "read", env=env, code=2)
    assert message.startswith("error: team") and message.count("\n") == 1
    run("keys", "create", "--team", "t", "--scope", "superuser", env=env, code=2)


def test_full_flow_through_the_api(api: str, make_key: KeyMaker, tmp_path: Path) -> None:
    admin = {"LLMFLEET_API_URL": api, "LLMFLEET_API_KEY": make_key("platform", Scope.ADMIN)}
    team = {"LLMFLEET_API_URL": api, "LLMFLEET_API_KEY": make_key("search", Scope.DEPLOY)}
    run("clusters", "create", "aws-use1", "--cloud", "aws", "--region", "us-east-1", env=admin)
    catalog = tmp_path / "vms.csv"
    catalog.write_text(SMALL_CATALOG)
    imported = json.loads(run("clusters", "import-catalog", str(catalog), "--max-instances", "3", "--json", env=admin))
    assert imported[0]["cluster"] == "aws-use1" and imported[0]["created"] == 3
    assert "g6.xlarge/spot" in run("clusters", "pools", "aws-use1", env=admin)

    run("models", "create", "llama-3.1-8b", env=team)
    version_file = tmp_path / "v1.json"
    version_file.write_text(json.dumps(version_body()))
    run("models", "register-version", "llama-3.1-8b", "--file", str(version_file), env=team)
    run("models", "set-alias", "llama-3.1-8b", "champion", "v1", env=team)
    versions = json.loads(run("models", "get", "llama-3.1-8b", "--json", env=team))
    assert versions[0]["aliases"] == ["champion"]

    spec = tmp_path / "chat.yaml"
    spec.write_text(
        "name: chat\nmodel: llama-3.1-8b\nversion: champion\n"
        "slo: {ttft_p95_ms: 500, tpot_p95_ms: 50}\n"
        "demand:\n  - {client_region: us-east-1, rps: 12}\n"
    )
    assert "created deployment chat" in run("deployments", "create", "--file", str(spec), env=team)
    change = tmp_path / "change.yaml"
    change.write_text("demand:\n  - {client_region: us-east-1, rps: 30}\n")
    run("deployments", "update", "chat", "--file", str(change), env=team)
    got = json.loads(run("deployments", "get", "chat", "--json", env=team))
    assert got["demand"][0]["rps"] == 30 and got["desired_generation"] == 2
    assert "chat" in run("deployments", "list", env=team)
    events = json.loads(run("audit", "--object-type", "deployment", "--json", env=team))
    assert [e["action"] for e in events] == ["update", "create"]
    assert json.loads(run("deployments", "delete", "chat", "--json", env=team))["deleted"] is True


def test_api_errors_are_one_line_with_exit_code_2(api: str, make_key: KeyMaker, tmp_path: Path) -> None:
    team = {"LLMFLEET_API_URL": api, "LLMFLEET_API_KEY": make_key("search", Scope.DEPLOY)}
    missing = run("models", "get", "nope", env=team, code=2)
    assert missing == "error: model 'nope' not found (HTTP 404)\n"
    forbidden = run("clusters", "create", "c1", "--cloud", "aws", "--region", "r", env=team, code=2)
    assert "scope" in forbidden and "(HTTP 403)" in forbidden
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: [unclosed\n")
    assert run("deployments", "create", "--file", str(bad_yaml), env=team, code=2).startswith("error: ")
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("name: chat\nmodel: m\n")
    assert "(HTTP 422)" in run("deployments", "create", "--file", str(invalid), env=team, code=2)
    assert "no API key" in run("models", "list", env={"LLMFLEET_API_URL": api}, code=2)
    unreachable = run("models", "list", env={"LLMFLEET_API_URL": "http://127.0.0.1:9", "LLMFLEET_API_KEY": "lf_x"},
                      code=2)
    assert unreachable.startswith("error: cannot reach the API")
