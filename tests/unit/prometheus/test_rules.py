"""The Prometheus rules pass `promtool check rules` and their unit tests (`promtool test rules`); the SLO
bucket bounds the control plane publishes are the gateway's own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agents.gateway.metrics import LATENCY_BUCKETS, TPOT_BUCKETS
from control_plane.observability.slo_buckets import GATEWAY_TPOT_BUCKETS, GATEWAY_TTFT_BUCKETS, slo_le
from control_plane.stack.prometheus import RULES_DIR
from tests.support.real_parts import require_or_skip

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    require_or_skip(path is not None, "promtool (Debian package prometheus)")
    assert path is not None
    return path


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, cwd=HERE)


def test_rules_are_valid(promtool: str) -> None:
    files = sorted(RULES_DIR.glob("*.yml"))
    assert {f.name for f in files} >= {"slo.yml", "fleet.yml"}
    result = run(promtool, "check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", sorted(p.name for p in HERE.glob("*_test.yml")))
def test_rule_unit_tests_pass(promtool: str, test_file: str) -> None:
    result = run(promtool, "test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_slo_bucket_bounds_match_the_gateway() -> None:
    assert GATEWAY_TTFT_BUCKETS == LATENCY_BUCKETS
    assert GATEWAY_TPOT_BUCKETS == TPOT_BUCKETS


def test_slo_le_rounds_down_to_a_bucket_bound() -> None:
    assert slo_le(0.5, GATEWAY_TTFT_BUCKETS) == "0.5"
    assert slo_le(0.1, GATEWAY_TTFT_BUCKETS) == "0.1"  # 100 ms / 1000 is 0.1 exactly enough
    assert slo_le(0.7, GATEWAY_TTFT_BUCKETS) == "0.5"
    assert slo_le(3.0, GATEWAY_TTFT_BUCKETS) == "2.5"
    assert slo_le(1.0, GATEWAY_TTFT_BUCKETS) == "1.0"  # prometheus_client's spelling of the label
    assert slo_le(1000.0, GATEWAY_TTFT_BUCKETS) == "120.0"
    assert slo_le(0.001, GATEWAY_TTFT_BUCKETS) is None
    assert slo_le(0.05, GATEWAY_TPOT_BUCKETS) == "0.04"
