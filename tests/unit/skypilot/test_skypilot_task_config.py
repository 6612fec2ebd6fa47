"""The task config for one replica, built without SkyPilot: resources, secrets, setup and run scripts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml

from agents.backends.base import ReplicaSpec
from agents.backends.skypilot.naming import cluster_name_for
from agents.backends.skypilot.placement import (
    Placement,
    cloud_region_name,
    disk_size_for_weights,
    is_aws_zone_id,
    placement_from_spec,
)
from agents.backends.skypilot.task_config import (
    API_KEY_SECRET,
    TaskSettings,
    build_task_config,
    serve_argv_from_run,
)
from agents.backends.vllm_process import engine_flags_for_variant

SECRET = "sk-never-in-yaml-4242"
VARIANTS = ("bf16", "fp8", "awq-int4")
MARKETS = ("on-demand", "spot")

AWS_SPOT = Placement("aws", "us-east-1", "p5.48xlarge", "H100", 8, "spot", "use1-az6", 512)


def replica(variant: str = "bf16", placement: Placement = AWS_SPOT, **overrides: Any) -> ReplicaSpec:
    quantization, dtype = engine_flags_for_variant(variant)
    base = ReplicaSpec(
        replica_id="chat-8b/0",
        model="meta-llama/Llama-3.1-8B-Instruct",
        served_model_name="chat-8b",
        port=8000,
        quantization=quantization,
        dtype=dtype,
        tensor_parallel_size=8,
        max_model_len=16384,
        api_key=SECRET,
        options=placement.to_options(),
    )
    return replace(base, **overrides)


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("market", MARKETS)
def test_task_per_variant_and_market(variant: str, market: str) -> None:
    placement = replace(AWS_SPOT, market=market)  # type: ignore[arg-type]
    build = build_task_config(replica(variant, placement))
    resources = build.config["resources"]
    assert resources["use_spot"] is (market == "spot")
    assert resources["instance_type"] == "p5.48xlarge"
    assert resources["accelerators"] == {"H100": 8}
    assert resources["disk_size"] == 512 and resources["ports"] == [8000]
    quantization, dtype = engine_flags_for_variant(variant)
    argv = serve_argv_from_run(build.config["run"])
    assert argv == build.serve_argv
    assert argv[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    assert flag(argv, "--quantization") == quantization
    assert flag(argv, "--dtype") == dtype
    assert flag(argv, "--tensor-parallel-size") == "8"
    assert flag(argv, "--host") == "0.0.0.0" and flag(argv, "--port") == "8000"
    assert flag(argv, "--max-model-len") == "16384"
    assert "--model" not in argv  # `vllm serve` takes the model positionally


def test_the_key_is_declared_never_written() -> None:
    build = build_task_config(replica())
    assert build.config["secrets"] == {API_KEY_SECRET: None}
    text = build.yaml()
    assert SECRET not in text and "--api-key" not in text
    assert yaml.safe_load(text)["secrets"] == {API_KEY_SECRET: None}
    assert SECRET not in repr(build)


def test_yaml_text_is_the_config() -> None:
    build = build_task_config(replica())
    assert yaml.safe_load(build.yaml()) == build.config
    assert build.yaml().startswith("# AWS zone ID use1-az6 is not pinned")  # notes are comments


def test_setup_installs_the_pinned_vllm_once() -> None:
    setup = build_task_config(replica(), TaskSettings(vllm_version="0.32.0")).config["setup"]
    assert "vllm==0.32.0" in setup
    assert 'grep -qx "Version: 0.32.0"' in setup  # a relaunch on a set-up node skips the install
    assert setup.startswith("set -euo pipefail")


def test_run_execs_vllm_so_sigterm_reaches_it() -> None:
    run = build_task_config(replica()).config["run"]
    assert [line for line in run.splitlines() if line.startswith("exec ")] == [
        line for line in run.splitlines() if "vllm" in line and "serve" in line
    ]


def test_extra_secrets_and_envs() -> None:
    settings = TaskSettings(extra_secrets=("HF_TOKEN",), envs={"HF_HUB_ENABLE_HF_TRANSFER": "1"})
    config = build_task_config(replica(), settings).config
    assert config["secrets"] == {API_KEY_SECRET: None, "HF_TOKEN": None}
    assert config["envs"]["HF_HUB_ENABLE_HF_TRANSFER"] == "1"
    assert config["envs"]["LLMFLEET_REPLICA_ID"] == "chat-8b/0"


@pytest.mark.parametrize(
    "settings",
    [
        {"envs": {API_KEY_SECRET: "x"}},
        {"extra_secrets": (API_KEY_SECRET,)},
        {"extra_secrets": ("HF_TOKEN",), "envs": {"HF_TOKEN": "x"}},
        {"extra_secrets": ("not valid",)},
        {"vllm_version": "0.32; rm -rf /"},
    ],
)
def test_bad_settings_are_rejected(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TaskSettings(**settings)


def test_aws_zone_ids_pin_only_with_a_mapping() -> None:
    unpinned = build_task_config(replica())
    assert unpinned.config["resources"]["infra"] == "aws/us-east-1"
    assert any("use1-az6" in note for note in unpinned.notes)
    assert unpinned.catalog_config()["resources"]["infra"] == "aws/us-east-1/use1-az6"
    pinned = build_task_config(replica(), TaskSettings(aws_zone_names={"use1-az6": "us-east-1b"}))
    assert pinned.config["resources"]["infra"] == "aws/us-east-1/us-east-1b"
    assert not any("zone" in note for note in pinned.notes)


def test_zone_names_and_other_clouds_pass_through() -> None:
    gcp = Placement("gcp", "us-central1", "a3-highgpu-8g", "H100", 8, "spot", "us-central1-a")
    assert (
        build_task_config(replica(placement=gcp)).config["resources"]["infra"]
        == "gcp/us-central1/us-central1-a"
    )
    nebius = Placement("nebius", "eu-north1", "gpu-h100-sxm_1gpu-16vcpu-200gb", "H100", 1, "spot")
    build = build_task_config(replica(placement=nebius, tensor_parallel_size=1))
    assert build.config["resources"]["infra"] == "nebius/eu-north1"
    assert build.notes == ()


def test_a_partial_instance_is_noted() -> None:
    build = build_task_config(replica(tensor_parallel_size=2))
    assert any("uses 2 of the 8 GPUs" in note for note in build.notes)


def test_tp_larger_than_the_instance_is_rejected() -> None:
    small = Placement("aws", "us-east-1", "g5.xlarge", "A10G", 1)
    with pytest.raises(ValueError, match="needs more GPUs"):
        build_task_config(replica(placement=small, tensor_parallel_size=2))


def test_accelerator_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="does not match"):
        build_task_config(replica(accelerator="A100"))


def test_extra_args_cannot_set_the_key() -> None:
    with pytest.raises(ValueError, match="may not set --api-key"):
        build_task_config(replica(extra_args=("--api-key", "x")))


def test_placement_round_trips_through_spec_options() -> None:
    assert placement_from_spec(replica()) == AWS_SPOT
    options = dict(AWS_SPOT.to_options())
    options["region"] = "aws:us-east-1"  # scenario region ids carry the cloud
    spec = replica(options=tuple(options.items()))
    assert placement_from_spec(spec).region == "us-east-1"


@pytest.mark.parametrize("drop", ["cloud", "region", "instance_type", "gpus_per_instance"])
def test_placement_names_what_is_missing(drop: str) -> None:
    options = tuple((k, v) for k, v in AWS_SPOT.to_options() if k != drop)
    with pytest.raises(ValueError, match=drop):
        placement_from_spec(replica(options=options))


@pytest.mark.parametrize(
    "bad",
    [
        {"market": "reserved"},
        {"gpus_per_instance": 0},
        {"cloud": "AWS"},
        {"zone": ""},
        {"instance_type": " p5"},
        {"disk_size_gb": 0},
    ],
)
def test_placement_rejects_bad_fields(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(AWS_SPOT, **bad)


def test_region_and_zone_helpers() -> None:
    assert cloud_region_name("aws", "aws:us-east-1") == "us-east-1"
    assert cloud_region_name("aws", "us-east-1") == "us-east-1"
    assert is_aws_zone_id("use1-az6") and is_aws_zone_id("use1-atl2-az1") and is_aws_zone_id("apne1-az4")
    assert not is_aws_zone_id("us-east-1a")


def test_disk_fits_the_weights() -> None:
    assert disk_size_for_weights(16) == 128  # an 8B model: the floor
    assert disk_size_for_weights(141.2) >= 141.2 * 1.25 + 96
    assert disk_size_for_weights(141.2) % 32 == 0
    with pytest.raises(ValueError):
        disk_size_for_weights(-1)


def test_cluster_names_are_valid_short_and_distinct() -> None:
    names = {cluster_name_for(r) for r in ("a_b", "a-b", "A B", "chat-70b/fp8/" + "x" * 80)}
    assert len(names) == 4
    for name in names:
        assert len(name) <= 32 and name.startswith("llmf-") and name == name.lower()
        assert all(c.isalnum() or c == "-" for c in name) and name[-1].isalnum()
    assert cluster_name_for("r1") == cluster_name_for("r1")
