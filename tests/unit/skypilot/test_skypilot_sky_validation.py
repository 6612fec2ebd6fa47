"""Every replica task passes SkyPilot's own checks offline and survives SkyPilot's YAML round trip.

SkyPilot (the real package) reads the catalog snapshot shipped in control_plane/data/catalog/; the
``no_network`` tripwire fails any test that would make it download anything.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest
import yaml

from agents.backends.base import ReplicaSpec
from agents.backends.skypilot.placement import Placement
from agents.backends.skypilot.sky_task import (
    TaskInvalid,
    canonical_config,
    to_sky_task,
    validate_task_config,
)
from agents.backends.skypilot.task_config import API_KEY_SECRET, TaskBuild, TaskSettings, build_task_config
from agents.backends.vllm_process import engine_flags_for_variant

SECRET = "sk-round-trip-secret-777"
VARIANTS = ("bf16", "fp8", "awq-int4")
MARKETS = ("on-demand", "spot")
# (on-demand or spot) pools from the snapshot: AWS spot is per zone, Nebius spot per region.
POOLS = {
    "aws": Placement("aws", "us-east-1", "p5.48xlarge", "H100", 8, "on-demand", "use1-az6", 512),
    "nebius": Placement("nebius", "eu-north1", "gpu-h100-sxm_8gpu-128vcpu-1600gb", "H100", 8),
}


def build(variant: str, placement: Placement, **spec: Any) -> TaskBuild:
    quantization, dtype = engine_flags_for_variant(variant)
    replica = ReplicaSpec(
        replica_id=f"chat-8b-{variant}-{placement.cloud}-{placement.market}",
        model="meta-llama/Llama-3.1-8B-Instruct",
        served_model_name="chat-8b",
        port=8000,
        quantization=quantization,
        dtype=dtype,
        tensor_parallel_size=placement.gpus_per_instance,
        api_key=SECRET,
        options=placement.to_options(),
        **spec,
    )
    return build_task_config(replica, TaskSettings(extra_secrets=("HF_TOKEN",)))


@pytest.mark.parametrize("cloud", sorted(POOLS))
@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_task_validates_and_round_trips(sky: ModuleType, variant: str, market: str, cloud: str) -> None:
    task_build = build(variant, replace(POOLS[cloud], market=market))  # type: ignore[arg-type]
    for config in (task_build.config, task_build.catalog_config()):
        task = validate_task_config(config)
        assert isinstance(task, sky.Task)
        resources = next(iter(task.resources))
        assert resources.use_spot is (market == "spot")
        assert resources.accelerators == {"H100": 8}
        assert str(resources.cloud).lower() == cloud
        # SkyPilot's YAML form: dumped to text, read back, dumped again: the same.
        canonical = canonical_config(task)
        again = sky.Task.from_yaml_config(yaml.safe_load(yaml.safe_dump(canonical)))
        assert canonical_config(again) == canonical
        assert again.run == config["run"] and again.setup == config["setup"]
        assert again.envs == config["envs"]
    # The YAML text we print is what `sky launch task.yaml` reads.
    from_text = sky.Task.from_yaml_config(yaml.safe_load(task_build.yaml()))
    assert from_text.run == task_build.config["run"]
    assert sorted(ref.name for ref in from_text.managed_secret_refs) == sorted([API_KEY_SECRET, "HF_TOKEN"])


def test_schema_rejects_unknown_fields(sky: ModuleType) -> None:
    config = build("bf16", POOLS["nebius"]).config
    with pytest.raises(TaskInvalid, match="unsupported field 'bogus'"):
        validate_task_config({**config, "bogus": 1})


def test_validation_does_not_change_the_config(sky: ModuleType) -> None:
    config = build("fp8", POOLS["aws"]).catalog_config()
    before = copy.deepcopy(config)
    validate_task_config(config)
    to_sky_task(config, {API_KEY_SECRET: SECRET})
    assert config == before


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        (
            Placement("lambda", "us-east-1", "gpu_8x_h100_sxm5", "H100", 8, "spot"),
            "Spot instances are not supported",
        ),
        (
            Placement("aws", "us-east-1", "p5.48xlarge", "A100", 8),
            "Accelerators for p5.48xlarge: {'H100': 8}",
        ),
        (Placement("aws", "us-east-1", "p5.48xlarge", "H100", 4), "Accelerators requested: {'H100': 4}"),
        (Placement("aws", "us-east-1", "p9.96xlarge", "H100", 8), "Invalid instance type 'p9.96xlarge'"),
        (Placement("aws", "us-east-7", "p5.48xlarge", "H100", 8), "Invalid region 'us-east-7'"),
        (
            Placement("aws", "us-east-1", "p5.48xlarge", "H100", 8, "spot", "use1-az99"),
            "Invalid zone 'use1-az99'",
        ),
    ],
)
def test_skypilot_rejects_what_cannot_launch(sky: ModuleType, placement: Placement, message: str) -> None:
    task_build = build("bf16", placement, accelerator=placement.accelerator)
    with pytest.raises(TaskInvalid) as caught:
        validate_task_config(task_build.catalog_config())
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_lambda_on_demand_validates(sky: ModuleType) -> None:
    validate_task_config(
        build("bf16", Placement("lambda", "us-east-1", "gpu_8x_h100_sxm5", "H100", 8)).config
    )


def test_launch_task_carries_the_key_as_a_secret_only(sky: ModuleType) -> None:
    task_build = build("awq-int4", replace(POOLS["aws"], market="spot"))
    task = to_sky_task(task_build.catalog_config(), {API_KEY_SECRET: SECRET, "HF_TOKEN": "hf_abc"})
    assert task.secrets[API_KEY_SECRET].get_secret_value() == SECRET
    assert not task.managed_secret_refs  # all resolved: nothing left for a secrets provider
    assert SECRET not in (task.run or "") and SECRET not in (task.setup or "")
    assert SECRET not in str(task.envs)
    # The YAML SkyPilot keeps as "what the user wrote" (shown in its dashboard) is our clean config.
    shown = task.to_yaml_config(use_user_specified_yaml=True)
    assert shown["secrets"][API_KEY_SECRET] in (None, "<redacted>")
    assert SECRET not in yaml.safe_dump(shown)
    assert SECRET not in task_build.yaml()
