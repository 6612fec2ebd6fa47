"""Small scenarios for the fleet simulator: two regions, 1-GPU pools, one model; hours, not days."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

TRACES = Path(__file__).resolve().parents[3] / "benchmarks" / "traces"


def pool(
    pid: str, region: str, market: str, price: float, quota: int = 16, zone: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": pid,
        "cloud": "aws",
        "region": region,
        "instance_type": "g6e.xlarge",
        "accelerator": "L40S",
        "gpus": 1,
        "market": market,
        "price_per_hour": price,
        "max_instances": quota,
    }
    if zone:
        out["zone"] = zone
    return out


def base_scenario() -> dict[str, Any]:
    return {
        "name": "tiny",
        "regions": [
            {"name": "us", "cloud": "aws", "lat": 38.9, "lon": -77.4},
            {"name": "us2", "cloud": "aws", "lat": 40.0, "lon": -83.0},
            {"name": "clients", "cloud": "internet", "lat": 40.7, "lon": -74.0},
        ],
        "pools": [pool("us-od", "us", "on-demand", 1.8), pool("us2-od", "us2", "on-demand", 1.8)],
        "models": [
            {
                "name": "m",
                "params_b": 8,
                "layers": 32,
                "hidden": 4096,
                "kv_heads": 8,
                "head_dim": 128,
                "context": 8192,
                "variants": [{"name": "bf16", "bytes_per_param": 2}],
            }
        ],
        "deployments": [
            {
                "name": "chat",
                "model": "m",
                "slo": {"ttft_p95_ms": 1000, "tpot_p95_ms": 60},
                "demand": [
                    {"client_region": "clients", "rps": 12, "prompt_tokens": 500, "output_tokens": 100}
                ],
                "min_replicas": 2,
                "spread": True,
            }
        ],
        "simulation": {
            "hours": 2,
            "step_s": 60,
            "control_interval_s": 60,
            "replan_interval_s": 1800,
            "cold_start_s": 120,
            "perf_error": 0.0,
            "solver_time_limit_s": 2,
        },
    }


def trace_scenario() -> dict[str, Any]:
    data = base_scenario()
    data["deployments"][0]["demand"] = {
        "trace": str(TRACES / "AzureLLMInferenceTrace_conv.csv"),
        "rate_scale": 2.0,
        "split": {"clients": 1.0},
        "buckets": 2,
    }
    return data


@pytest.fixture
def scenario_data() -> dict[str, Any]:
    return copy.deepcopy(base_scenario())
