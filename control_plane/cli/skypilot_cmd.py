"""`llmfleet skypilot task SCENARIO --deployment D --pool P`: the SkyPilot task YAML for one replica.

For review, or for `sky launch task.yaml --secret VLLM_API_KEY=...` by hand. The scenario (see
docs/scenarios.md) gives the model, its variants and the pool; this command picks the variant (the
deployment's full-quality one unless --variant) and the tensor-parallel size (the smallest that fits the
pool's GPUs per the performance model unless --tp), then has the agents' SkyPilot task builder print the
task after SkyPilot validated it offline against the shipped catalog snapshot.

The control plane does not import the agents package (docs/DESIGN.md, layout), so the builder runs as
`python -m agents.backends.skypilot task ...` and this command relays its output and errors.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli.errors import CliError, cli_errors
from scheduler.model_spec import Variant
from scheduler.perf_model import PerfModel
from scheduler.placement.eligibility import pool_allowed, tp_options, variant_allowed
from scheduler.placement.snapshot import Deployment, Pool
from scheduler.scenario import Scenario, ScenarioError, load_scenario

app = typer.Typer(
    help="SkyPilot tasks for llmfleet replicas.", no_args_is_help=True, pretty_exceptions_enable=False
)

BUILDER_TIMEOUT_S = 180.0  # importing SkyPilot and validating takes a few seconds on a busy 2-core box
_MAX_LISTED = 8


def catalog_snapshot_dir() -> Path:
    """The price catalog snapshot shipped with the control plane (SkyPilot's vms.csv format)."""
    return Path(str(resources.files("control_plane").joinpath("data/catalog")))


@app.command("task")
@cli_errors
def task(
    scenario: Annotated[Path, typer.Argument(help="scenario file (YAML or JSON, see docs/scenarios.md)")],
    deployment: Annotated[str, typer.Option("--deployment", help="deployment name in the scenario")],
    pool: Annotated[str, typer.Option("--pool", help="pool id in the scenario")],
    variant: Annotated[str | None, typer.Option("--variant", help="default: least quality loss")] = None,
    tp: Annotated[
        int | None, typer.Option("--tp", help="tensor-parallel size; default: smallest fit")
    ] = None,
    artifact: Annotated[
        str | None,
        typer.Option("--artifact", help="what vLLM loads (hub id or path); default: the model name"),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="port vLLM listens on (opened on the node)")] = 8000,
    replica_id: Annotated[str | None, typer.Option("--replica-id", help="default: from the names")] = None,
    hf_token: Annotated[bool, typer.Option("--hf-token", help="declare the HF_TOKEN secret")] = False,
    aws_zone_name: Annotated[
        list[str] | None,
        typer.Option("--aws-zone-name", metavar="ZONE_ID=ZONE_NAME", help="pin an AWS zone (repeatable)"),
    ] = None,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="SkyPilot checks it offline")
    ] = True,
) -> None:
    """Print the SkyPilot task YAML for one replica of DEPLOYMENT on POOL."""
    if not 1 <= port <= 65535:
        raise CliError(f"--port {port} is out of range")
    scn = _load(scenario)
    dep = _deployment(scn, deployment)
    chosen_pool = _pool(scn, pool)
    if not pool_allowed(dep, chosen_pool):
        raise CliError(
            f"deployment {dep.name} may not use pool {chosen_pool.id} (its regions, clouds or spot cap)"
        )
    chosen_variant = _variant(dep, variant)
    chosen_tp = _tp(scn, dep, chosen_variant, chosen_pool, tp)
    if artifact is None:
        typer.echo(
            f"note: no --artifact; vLLM will load {dep.arch.name!r} (pass a hub id or a path)", err=True
        )
    argv = builder_argv(
        replica_id=replica_id or f"{dep.name}-{chosen_variant.name}-tp{chosen_tp}-{chosen_pool.id}",
        model=artifact or dep.arch.name,
        served_model_name=dep.name,
        variant=chosen_variant.name,
        tp=chosen_tp,
        port=port,
        max_model_len=dep.arch.context,
        pool=chosen_pool,
        weights_gb=dep.arch.params_b * chosen_variant.bytes_per_param,
        hf_token=hf_token,
        aws_zone_names=aws_zone_name or [],
        catalog=catalog_snapshot_dir() if validate else None,
    )
    sys.stdout.write(run_builder(argv))


def builder_argv(
    *,
    replica_id: str,
    model: str,
    served_model_name: str,
    variant: str,
    tp: int,
    port: int,
    max_model_len: int,
    pool: Pool,
    weights_gb: float,
    hf_token: bool,
    aws_zone_names: list[str],
    catalog: Path | None,
) -> list[str]:
    """The agents' task-builder command line for one replica of ``pool``."""
    argv = [
        sys.executable, "-m", "agents.backends.skypilot", "task",
        "--replica-id", replica_id,
        "--model", model,
        "--served-model-name", served_model_name,
        "--variant", variant,
        "--tp", str(tp),
        "--port", str(port),
        "--max-model-len", str(max_model_len),
        "--cloud", pool.cloud,
        "--region", pool.region,
        "--instance-type", pool.instance_type,
        "--accelerator", pool.accelerator,
        "--gpus", str(pool.gpus),
        "--market", pool.market,
        "--weights-gb", f"{weights_gb:.3f}",
    ]  # fmt: skip
    if pool.zone:
        argv += ["--zone", pool.zone]
    if hf_token:
        argv.append("--hf-token")
    for item in aws_zone_names:
        argv += ["--aws-zone-name", item]
    if catalog is not None:
        argv += ["--catalog", str(catalog)]
    return argv


def run_builder(argv: list[str]) -> str:
    """The builder's YAML; its one-line error (exit status 2) becomes ours."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=BUILDER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CliError(f"the SkyPilot task builder did not run: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        message = errors[-1] if errors else (lines[-1] if lines else f"exit status {done.returncode}")
        raise CliError(message)
    return done.stdout


def _load(path: Path) -> Scenario:
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise CliError(f"{path}: {exc}") from None


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def _deployment(scn: Scenario, name: str) -> Deployment:
    for dep in scn.snapshot.deployments:
        if dep.name == name:
            return dep
    raise CliError(
        f"unknown deployment {name!r} (scenario has: {_names([d.name for d in scn.snapshot.deployments])})"
    )


def _pool(scn: Scenario, pool_id: str) -> Pool:
    for pool in scn.snapshot.pools:
        if pool.id == pool_id:
            return pool
    raise CliError(f"unknown pool {pool_id!r} (scenario has: {_names([p.id for p in scn.snapshot.pools])})")


def _variant(dep: Deployment, name: str | None) -> Variant:
    if name is None:
        return dep.full_quality_variant
    for variant in dep.variants:
        if variant.name == name:
            # The same quality rule the placement applies: a replica it would never plan is no replica.
            if not variant_allowed(dep, variant):
                raise CliError(
                    f"variant {name} loses {variant.quality_delta:g} quality, over deployment {dep.name}'s "
                    f"budget of {dep.constraints.max_quality_drop:g}"
                )
            return variant
    raise CliError(
        f"deployment {dep.name} has no variant {name!r} (it allows: {_names([v.name for v in dep.variants])})"
    )


def _tp(scn: Scenario, dep: Deployment, variant: Variant, pool: Pool, tp: int | None) -> int:
    model = PerfModel(gpus=scn.gpus)
    options = tp_options(pool.gpus)
    if tp is not None:
        if tp not in options:
            raise CliError(
                f"--tp {tp} does not pack into {pool.gpus} GPUs per instance (choose from {options})"
            )
        problem = model.fit_problem(dep.arch, variant, pool.accelerator, tp)
        if problem is not None:
            raise CliError(f"{dep.arch.name} {variant.name} does not fit: {problem}")
        return tp
    for candidate in options:
        if model.fits(dep.arch, variant, pool.accelerator, candidate):
            return candidate
    largest = options[-1]
    problem = (
        model.fit_problem(dep.arch, variant, pool.accelerator, largest) or "no tensor-parallel size fits"
    )
    raise CliError(f"{dep.arch.name} {variant.name} does not fit one {pool.instance_type}: {problem}")
