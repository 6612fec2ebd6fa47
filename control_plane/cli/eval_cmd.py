"""`llmfleet eval`: score a deployment on a (prompt, reference) dataset through the gateway, record the
result on the model version in the registry, and gate on it.

Exit codes: 0 at or above the threshold (or with none given), 1 below it, 2 on bad input (a bad dataset,
naming its bad lines; an unknown metric or deployment; an unreachable gateway). The prompts are sent to
`deployment@version`, so every answer comes from the version the result is recorded on, even mid-canary.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from control_plane.cli.api_client import DEFAULT_API_URL, ApiClient, ApiKey, ApiUrl
from control_plane.cli.errors import CliError, cli_errors
from control_plane.cli.output import JsonFlag, emit_json
from control_plane.evaluation.dataset import load_dataset
from control_plane.evaluation.metrics import UnknownMetric, label, resolve, score_all
from control_plane.evaluation.runner import ask_all

BELOW_THRESHOLD_EXIT_CODE = 1
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8090"
SAMPLE_FAILURES = 5


@cli_errors
def eval_(
    deployment: Annotated[str, typer.Option("--deployment", help="the deployment to evaluate")],
    dataset: Annotated[Path, typer.Option("--dataset", help="JSONL of {prompt, reference} records")],
    metric: Annotated[str, typer.Option("--metric", help="exact_match, contains, an entry point of group "
                                        "llmfleet.eval_metrics, or module:function")] = "exact_match",
    threshold: Annotated[float | None, typer.Option("--threshold", help="exit 1 when the score is below")] = None,
    gateway: Annotated[str, typer.Option("--gateway", envvar="LLMFLEET_GATEWAY_URL", help="gateway URL")]
    = DEFAULT_GATEWAY_URL,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256)] = 8,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=100_000)] = 256,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a deployment's version on a dataset and record the result on that version."""
    try:
        parsed = load_dataset(dataset)
    except OSError as error:
        raise CliError(f"cannot read the dataset {dataset}: {error.strerror or error}") from None
    if not parsed.ok:
        raise CliError(f"dataset {dataset}: {len(parsed.errors)} bad record(s): {parsed.summary(10)}")
    try:
        scorer = resolve(metric)
    except UnknownMetric as error:
        raise CliError(str(error)) from None
    api = ApiClient(api_url, api_key)
    target = api.get(f"/v1/deployments/{deployment}")
    model, version = target["model"], target["version"]
    records = [record for _, record in parsed.records]
    assert api_key is not None  # ApiClient refused a missing key
    answers = asyncio.run(ask_all(gateway, api_key, f"{deployment}@{version}", [r.prompt for r in records],
                                  concurrency=concurrency, max_tokens=max_tokens))
    failed = [(r, a.error) for r, a in zip(records, answers, strict=True) if a.text is None]
    if len(failed) == len(records):
        raise CliError(f"no request succeeded through the gateway at {gateway}: {failed[0][1]}")
    try:
        scores = score_all(scorer, [a.text for a in answers], [r.reference for r in records])
    except Exception as error:  # noqa: BLE001 - a plugged-in metric may fail in any way
        raise CliError(f"the metric {metric!r} failed: {error}") from None
    value = sum(scores) / len(scores)
    passed = threshold is None or value >= threshold
    details: dict[str, Any] = {
        "deployment": deployment, "threshold": threshold, "passed": passed, "failed_requests": len(failed),
        "failures": [{"id": r.id, "error": e} for r, e in failed[:SAMPLE_FAILURES]], "metric_spec": metric,
    }
    stored = api.post(f"/v1/models/{model}/versions/{version}/evals", json={
        "dataset": dataset.name, "metric": label(metric), "value": value, "samples": len(records), "details": details})
    summary = {"deployment": deployment, "model": model, "version": version, "dataset": dataset.name,
               "metric": label(metric), "value": value, "samples": len(records), "failed_requests": len(failed),
               "threshold": threshold, "passed": passed, "recorded_at": stored["created_at"]}
    if as_json:
        emit_json(summary)
    else:
        verdict = "" if threshold is None else (" ≥ " if passed else " < ") + f"threshold {threshold:g}"
        print(f"{deployment} ({model} {version}) on {dataset.name}: {metric} = {value:.4f} over "
              f"{len(records)} record(s){verdict}; {len(failed)} request(s) failed; recorded on {model} {version}")
    if not passed:
        print(f"below the threshold: {value:.4f} < {threshold:g}", file=sys.stderr)
        raise typer.Exit(BELOW_THRESHOLD_EXIT_CODE)
