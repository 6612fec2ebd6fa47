"""`llmfleet eval` against simulated replicas through a real gateway: the score is computed from the real
answers, recorded on the model version in the registry, and the exit code gates on the threshold (0/1);
bad input exits 2 naming every bad line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from control_plane.cli import eval_cmd
from tests.integration.gateway.gateway_harness import Fleet, fleet
from tests.support.fleet import ok

runner = CliRunner()
cli = typer.Typer()
cli.command("eval")(eval_cmd.eval_)


@cli.callback()
def _root() -> None:
    """Several commands' worth of parsing: `eval` stays a subcommand, as in `llmfleet eval`."""


MAX_TOKENS = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, str]]:
    with fleet(tmp_path_factory.mktemp("eval")) as f:
        f.serve("aws-use1", 1, speedup=50.0)
        gateway = f.gateway("us-east-1")
        f.wait_for_replicas(gateway, 1)
        yield f, gateway.url


def answer(gateway_url: str, key: str, prompt: str) -> str:
    body = {"model": "chat@v1", "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": MAX_TOKENS}
    response = ok(httpx.post(f"{gateway_url}/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {key}"}, timeout=30))
    return str(response["choices"][0]["message"]["content"])


def dataset(tmp_path: Path, world: tuple[Fleet, str], right: int, wrong: int) -> Path:
    f, url = world
    key = f.key()
    rows = []
    for i in range(right + wrong):
        prompt = f"question {i}"
        reference = answer(url, key, prompt) if i < right else "certainly not this"
        rows.append(json.dumps({"id": f"q{i}", "prompt": prompt, "reference": f"  {reference}  "}))
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def run(world: tuple[Fleet, str], *args: str) -> tuple[int, str, str]:
    f, url = world
    env = {"LLMFLEET_API_URL": f.api_url, "LLMFLEET_API_KEY": f.team_key, "LLMFLEET_GATEWAY_URL": url}
    result = runner.invoke(cli, ["eval", "--deployment", "chat", "--max-tokens", str(MAX_TOKENS), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def evals(world: tuple[Fleet, str]) -> list[dict[str, object]]:
    f, _ = world
    with f.http() as http:
        return ok(http.get("/v1/models/llama-3.1-8b/versions/v1", headers=f.team))["evals"]  # type: ignore[no-any-return]


def test_scores_records_and_passes_the_threshold(world: tuple[Fleet, str], tmp_path: Path) -> None:
    path = dataset(tmp_path, world, right=7, wrong=3)
    code, out, err = run(world, "--dataset", str(path), "--threshold", "0.6", "--json", "--concurrency", "4")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["value"] == pytest.approx(0.7) and summary["samples"] == 10 and summary["passed"]
    assert (summary["model"], summary["version"], summary["failed_requests"]) == ("llama-3.1-8b", "v1", 0)
    stored = evals(world)[-1]
    assert stored["dataset"] == "qa.jsonl" and stored["metric"] == "exact_match"
    assert stored["value"] == pytest.approx(0.7) and stored["samples"] == 10
    assert stored["details"]["deployment"] == "chat" and stored["details"]["threshold"] == 0.6  # type: ignore[index]


def test_below_the_threshold_exits_1_and_is_still_recorded(world: tuple[Fleet, str], tmp_path: Path) -> None:
    path = dataset(tmp_path, world, right=2, wrong=2)
    before = len(evals(world))
    code, out, err = run(world, "--dataset", str(path), "--threshold", "0.9")
    assert code == 1 and "exact_match = 0.5000" in out and "below the threshold" in err
    assert len(evals(world)) == before + 1 and evals(world)[-1]["details"]["passed"] is False  # type: ignore[index]


def test_a_plugged_in_metric_by_module_and_function(world: tuple[Fleet, str], tmp_path: Path) -> None:
    path = dataset(tmp_path, world, right=0, wrong=3)
    code, out, err = run(world, "--dataset", str(path), "--metric",
                         "control_plane.evaluation.metrics:contains", "--json")
    assert code == 0, err
    assert json.loads(out)["value"] == 0.0


def test_bad_input_exits_2_naming_every_bad_line(world: tuple[Fleet, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "reference": "b"}\n{"prompt": ""}\n\nnot json\n{"prompt": "x", "reference": 3}\n')
    before = len(evals(world))
    code, _, err = run(world, "--dataset", str(path))
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "line 2" in err and "line 4" in err and "line 5" in err and "line 1" not in err
    good = dataset(tmp_path, world, right=1, wrong=0)
    assert run(world, "--dataset", str(good), "--metric", "no_such_metric")[0] == 2
    assert run(world, "--dataset", str(tmp_path / "missing.jsonl"))[0] == 2
    code, _, err = run(world, "--dataset", str(good), "--gateway", "http://127.0.0.1:9")
    assert code == 2 and "gateway" in err
    assert len(evals(world)) == before
