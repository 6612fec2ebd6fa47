"""`python -m agents.backends.skypilot task ...`: print the SkyPilot task YAML for one replica.

The control plane's `llmfleet skypilot task` resolves a scenario's deployment, pool and variant into these
flags and runs this command (the control plane does not import the agents package; see docs/DESIGN.md).
With ``--catalog DIR`` the task is first validated by SkyPilot against the catalog snapshot in DIR, offline,
in a throw-away SkyPilot runtime dir. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from agents.backends.base import ReplicaSpec
from agents.backends.skypilot.placement import DEFAULT_DISK_SIZE_GB, Placement, disk_size_for_weights
from agents.backends.skypilot.task_config import (
    DEFAULT_VLLM_VERSION,
    HF_TOKEN_SECRET,
    TaskBuild,
    TaskSettings,
    build_task_config,
)
from agents.backends.vllm_process import engine_flags_for_variant

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # argparse's is NoReturn
        _fail(message)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m agents.backends.skypilot")
    commands = parser.add_subparsers(dest="command", required=True)
    task = commands.add_parser("task", help="print the SkyPilot task YAML for one replica")
    task.add_argument("--replica-id", required=True)
    task.add_argument("--model", required=True, help="what vLLM loads: a hub id or a path on the node")
    task.add_argument("--served-model-name", required=True)
    task.add_argument("--variant", default="bf16", help="bf16, fp8, awq-int4, ...")
    task.add_argument("--tp", type=int, default=1, help="tensor-parallel size")
    task.add_argument("--port", type=int, default=8000)
    task.add_argument("--max-model-len", type=int)
    task.add_argument("--cloud", required=True)
    task.add_argument("--region", required=True)
    task.add_argument("--zone")
    task.add_argument("--instance-type", required=True)
    task.add_argument("--accelerator", required=True)
    task.add_argument("--gpus", type=int, required=True, help="GPUs per instance")
    task.add_argument("--market", choices=("on-demand", "spot"), default="on-demand")
    disk = task.add_mutually_exclusive_group()
    disk.add_argument("--disk-size", type=int, help=f"root disk in GB (default {DEFAULT_DISK_SIZE_GB})")
    disk.add_argument("--weights-gb", type=float, help="size the root disk for weights of this size")
    task.add_argument("--vllm-version", default=DEFAULT_VLLM_VERSION)
    task.add_argument("--hf-token", action="store_true", help="declare the HF_TOKEN secret (gated models)")
    task.add_argument("--aws-zone-name", action="append", default=[], metavar="ZONE_ID=ZONE_NAME")
    task.add_argument("--catalog", type=Path, help="validate offline against this catalog snapshot dir")
    return parser


def build_from_args(args: argparse.Namespace) -> TaskBuild:
    """The task for the parsed flags; ValueError for values that do not make a replica."""
    quantization, dtype = engine_flags_for_variant(args.variant)
    zone_names: dict[str, str] = {}
    for item in args.aws_zone_name:
        zone_id, sep, zone_name = item.partition("=")
        if not sep or not zone_id or not zone_name:
            raise ValueError(f"--aws-zone-name wants ZONE_ID=ZONE_NAME, got {item!r}")
        zone_names[zone_id] = zone_name
    placement = Placement(
        cloud=args.cloud.lower(),
        region=args.region,
        zone=args.zone,
        instance_type=args.instance_type,
        accelerator=args.accelerator,
        gpus_per_instance=args.gpus,
        market=args.market,
        disk_size_gb=_disk_size(args),
    )
    spec = ReplicaSpec(
        replica_id=args.replica_id,
        model=args.model,
        served_model_name=args.served_model_name,
        port=args.port,
        quantization=quantization,
        dtype=dtype,
        tensor_parallel_size=args.tp,
        max_model_len=args.max_model_len,
        accelerator=args.accelerator,
        options=placement.to_options(),
    )
    settings = TaskSettings(
        vllm_version=args.vllm_version,
        extra_secrets=(HF_TOKEN_SECRET,) if args.hf_token else (),
        aws_zone_names=zone_names,
    )
    return build_task_config(spec, settings)


def _disk_size(args: argparse.Namespace) -> int:
    if args.weights_gb is not None:
        return disk_size_for_weights(args.weights_gb)
    return args.disk_size if args.disk_size is not None else DEFAULT_DISK_SIZE_GB


def validate_offline(build: TaskBuild, catalog: Path) -> None:
    """SkyPilot's own checks against the snapshot, in a temporary runtime dir (see offline_catalog)."""
    from agents.backends.skypilot import offline_catalog
    from agents.backends.skypilot.sky_task import validate_task_config

    with tempfile.TemporaryDirectory(prefix="llmfleet-sky-") as runtime_dir:
        clouds = offline_catalog.activate(Path(runtime_dir), catalog)
        if build.placement.cloud not in clouds:
            raise ValueError(
                f"no catalog snapshot for cloud {build.placement.cloud!r} in {catalog} "
                f"(offline validation covers {', '.join(clouds)})"
            )
        validate_task_config(build.catalog_config())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from agents.backends.skypilot.offline_catalog import OfflineCatalogError
    from agents.backends.skypilot.sky_task import CatalogUnavailable

    try:
        build = build_from_args(args)
        if args.catalog is not None:
            validate_offline(build, args.catalog)
    except (ValueError, OfflineCatalogError, CatalogUnavailable) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    sys.stdout.write(build.yaml())
    return 0
