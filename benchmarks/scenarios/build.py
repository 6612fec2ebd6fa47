"""Generate the checked-in placement scenarios from the catalog snapshot and the Azure traces.

    python -m benchmarks.scenarios.build          # rewrites benchmarks/scenarios/*.yaml

Prices come from the product's catalog snapshot `control_plane/data/catalog/gpu_catalog.csv` (see its
PROVENANCE.md); demand comes from the Azure LLM
traces in `benchmarks/traces/` (CC-BY-4.0). Things the catalog does not say are assumptions, named here:
quotas (`QUOTA`), region coordinates (public data-centre locations, rounded), model quality deltas
(illustrative: fp8 ~0.2 points, AWQ int4 ~1 point on a 100-point eval), SLOs and traffic scales.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CATALOG = HERE.parents[1] / "control_plane" / "data" / "catalog" / "gpu_catalog.csv"
TRACES = "../traces"

# Accelerators the built-in GPU table knows (scheduler/data/gpu_specs.csv); others are skipped.
KNOWN_GPUS = {"L4", "A10G", "A10", "L40S", "A100", "A100-80GB", "H100", "H200", "B200", "A6000"}

# Assumed quotas (max instances per pool), by GPUs per instance and market. Spot capacity is scarcer.
QUOTA = {
    ("on-demand", 1): 24,
    ("on-demand", 2): 12,
    ("on-demand", 4): 8,
    ("on-demand", 8): 4,
    ("spot", 1): 12,
    ("spot", 2): 6,
    ("spot", 4): 4,
    ("spot", 8): 2,
}
SPOT_ZONES_PER_TYPE = 2  # the two cheapest zones of each AWS instance type get a spot pool

# Client locations (where requests come from) and pool regions, with coordinates.
CLIENTS = {
    "clients-us-east": (40.7, -74.0),  # New York
    "clients-us-west": (37.8, -122.4),  # San Francisco
    "clients-eu": (51.5, -0.1),  # London
    "clients-ap": (35.7, 139.7),  # Tokyo
}
POOL_REGIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("aws", "us-east-1"): (38.9, -77.4),
    ("aws", "us-west-2"): (45.8, -119.7),
    ("aws", "eu-west-1"): (53.3, -6.3),
    ("aws", "eu-central-1"): (50.1, 8.7),
    ("aws", "ap-northeast-1"): (35.7, 139.7),
    ("lambda", "us-east-1"): (38.9, -77.4),
    ("lambda", "us-west-1"): (37.4, -122.0),
    ("lambda", "europe-central-1"): (50.1, 8.7),
    ("lambda", "asia-northeast-1"): (35.7, 139.7),
    ("nebius", "eu-north1"): (60.6, 25.3),
    ("nebius", "eu-west1"): (48.9, 2.4),
    ("nebius", "us-central1"): (39.1, -94.6),
}
EU_REGIONS = [
    "aws:eu-west-1",
    "aws:eu-central-1",
    "lambda:europe-central-1",
    "nebius:eu-north1",
    "nebius:eu-west1",
]

MODELS: list[dict[str, Any]] = [
    {
        "name": "Llama-3.1-8B",
        "params_b": 8.03,
        "layers": 32,
        "hidden": 4096,
        "kv_heads": 8,
        "head_dim": 128,
        "context": 16384,
        "variants": [
            {"name": "bf16", "bytes_per_param": 2.0, "quality_delta": 0.0},
            {"name": "fp8", "bytes_per_param": 1.0, "quality_delta": 0.2, "kv_bytes_per_elem": 1.0},
            {"name": "awq-int4", "bytes_per_param": 0.5625, "quality_delta": 1.0},
        ],
    },
    {
        "name": "Qwen2.5-32B",
        "params_b": 32.8,
        "layers": 64,
        "hidden": 5120,
        "kv_heads": 8,
        "head_dim": 128,
        "context": 16384,
        "variants": [
            {"name": "bf16", "bytes_per_param": 2.0, "quality_delta": 0.0},
            {"name": "fp8", "bytes_per_param": 1.0, "quality_delta": 0.2, "kv_bytes_per_elem": 1.0},
            {"name": "awq-int4", "bytes_per_param": 0.5625, "quality_delta": 1.0},
        ],
    },
    {
        "name": "Llama-3.3-70B",
        "params_b": 70.6,
        "layers": 80,
        "hidden": 8192,
        "kv_heads": 8,
        "head_dim": 128,
        "context": 16384,
        "variants": [
            {"name": "bf16", "bytes_per_param": 2.0, "quality_delta": 0.0},
            {"name": "fp8", "bytes_per_param": 1.0, "quality_delta": 0.2, "kv_bytes_per_elem": 1.0},
            {"name": "awq-int4", "bytes_per_param": 0.5625, "quality_delta": 1.0},
        ],
    },
]


@dataclass(frozen=True)
class Row:
    cloud: str
    region: str
    zone: str
    instance_type: str
    accelerator: str
    gpus: int
    price: float | None
    spot: float | None


def read_catalog() -> list[Row]:
    rows: list[Row] = []
    with CATALOG.open(newline="") as f:
        for r in csv.DictReader(f):
            count = float(r["accelerator_count"])
            if count < 1 or count != int(count) or r["accelerator"] not in KNOWN_GPUS:
                continue  # fractional GPUs (g6f) and accelerators without a spec
            rows.append(
                Row(
                    r["cloud"],
                    r["region"],
                    r["zone"],
                    r["instance_type"],
                    r["accelerator"],
                    int(count),
                    float(r["price_per_hour"]) if r["price_per_hour"] else None,
                    float(r["spot_price_per_hour"]) if r["spot_price_per_hour"] else None,
                )
            )
    return rows


def pools_for(regions: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """One on-demand pool per (region, accelerator, GPUs per instance) at the cheapest instance type,
    plus AWS/Nebius spot pools (per zone for AWS) where spot is actually discounted."""
    rows = [r for r in read_catalog() if (r.cloud, r.region) in regions]
    pools: list[dict[str, Any]] = []
    cheapest: dict[tuple[str, str, str, int], Row] = {}
    for r in rows:
        if r.price is None:
            continue
        key = (r.cloud, r.region, r.accelerator, r.gpus)
        if key not in cheapest or r.price < cheapest[key].price:  # type: ignore[operator]
            cheapest[key] = r
    for (cloud, region, acc, gpus), r in sorted(cheapest.items()):
        pools.append(_pool(r, "on-demand", r.price, None))  # type: ignore[arg-type]
        spots = [
            s
            for s in rows
            if s.cloud == cloud
            and s.region == region
            and s.instance_type == r.instance_type
            and s.spot is not None
            and s.price is not None
            and s.spot < 0.95 * s.price
        ]
        spots.sort(key=lambda s: s.spot)  # type: ignore[arg-type, return-value]
        seen_zones: set[str] = set()
        for s in spots:
            if len(seen_zones) >= SPOT_ZONES_PER_TYPE or s.zone in seen_zones:
                continue
            seen_zones.add(s.zone)
            pools.append(_pool(s, "spot", s.spot, s.zone or None))  # type: ignore[arg-type]
    return pools


def _pool(r: Row, market: str, price: float, zone: str | None) -> dict[str, Any]:
    pid = f"{r.cloud}:{r.region}:{r.instance_type}:{market}" + (f":{zone}" if zone else "")
    out: dict[str, Any] = {
        "id": pid,
        "cloud": r.cloud,
        "region": f"{r.cloud}:{r.region}",
        "instance_type": r.instance_type,
        "accelerator": r.accelerator,
        "gpus": r.gpus,
        "market": market,
        "price_per_hour": round(price, 5),
        "max_instances": QUOTA[(market, min(8, max(k for k in (1, 2, 4, 8) if k <= r.gpus)))],
    }
    if zone:
        out["zone"] = zone
    return out


def regions_block(pool_regions: set[tuple[str, str]], clients: list[str]) -> list[dict[str, Any]]:
    out = [{"name": c, "cloud": "internet", "lat": CLIENTS[c][0], "lon": CLIENTS[c][1]} for c in clients]
    for cloud, region in sorted(pool_regions):
        lat, lon = POOL_REGIONS[(cloud, region)]
        out.append({"name": f"{cloud}:{region}", "cloud": cloud, "lat": lat, "lon": lon})
    return out


def trace(name: str, scale: float, split: dict[str, float], buckets: int = 3) -> dict[str, Any]:
    return {
        "trace": f"{TRACES}/AzureLLMInferenceTrace_{name}.csv",
        "rate_scale": scale,
        "split": split,
        "buckets": buckets,
        "rate": "mean",
    }


def multi_region(scale: float = 1.0, name: str = "multi-region") -> dict[str, Any]:
    """`scale` multiplies every deployment's traffic (the traces are ~5 and ~2.6 requests/s samples of
    production services; x1 is a small fleet of ~270 requests/s, x5 a mid-size one of ~1,350)."""
    regions = set(POOL_REGIONS)
    return {
        "name": name,
        "description": f"4 client regions, 12 pool regions on AWS, Lambda and Nebius (on-demand and spot), "
        f"5 deployments of 3 models; demand from the Azure conv/code traces (traffic x{scale:g}).",
        "headroom": 0.8,
        "failure_domain": "region",
        "regions": regions_block(regions, list(CLIENTS)),
        "pools": pools_for(regions),
        "models": MODELS,
        "deployments": [
            {
                "name": "chat-8b",
                "model": "Llama-3.1-8B",
                "slo": {"ttft_p95_ms": 800, "tpot_p95_ms": 60},
                "demand": trace(
                    "conv",
                    30 * scale,
                    {"clients-us-east": 0.4, "clients-us-west": 0.2, "clients-eu": 0.25, "clients-ap": 0.15},
                ),
                "min_replicas": 2,
                "spread": True,
                "max_spot_share": 0.5,
                "max_quality_drop": 0.5,
            },
            {
                "name": "code-8b",
                "model": "Llama-3.1-8B",
                "slo": {"ttft_p95_ms": 1000, "tpot_p95_ms": 40},
                "demand": trace(
                    "code", 20 * scale, {"clients-us-east": 0.5, "clients-us-west": 0.3, "clients-eu": 0.2}
                ),
                "min_replicas": 2,
                "spread": True,
                "max_spot_share": 0.3,
                "max_quality_drop": 0.25,
            },
            {
                "name": "chat-70b",
                "model": "Llama-3.3-70B",
                "slo": {"ttft_p95_ms": 1500, "tpot_p95_ms": 80},
                "demand": trace(
                    "conv",
                    6 * scale,
                    {"clients-us-east": 0.5, "clients-us-west": 0.2, "clients-eu": 0.2, "clients-ap": 0.1},
                ),
                "min_replicas": 2,
                "spread": True,
                "max_spot_share": 0.5,
                "max_quality_drop": 0.5,
            },
            {
                "name": "assistant-70b-eu",
                "model": "Llama-3.3-70B",
                "slo": {"ttft_p95_ms": 1500, "tpot_p95_ms": 80},
                "demand": trace("conv", 2 * scale, {"clients-eu": 1.0}),
                "min_replicas": 2,
                "spread": True,
                "max_spot_share": 0.0,
                "max_quality_drop": 0.0,
                "allowed_regions": EU_REGIONS,
            },
            {
                "name": "summarize-32b",
                "model": "Qwen2.5-32B",
                "slo": {"ttft_p95_ms": 2500, "tpot_p95_ms": 80},
                "demand": [
                    {
                        "client_region": "clients-us-east",
                        "rps": 6 * scale,
                        "prompt_tokens": 3000,
                        "output_tokens": 250,
                    },
                    {
                        "client_region": "clients-eu",
                        "rps": 4 * scale,
                        "prompt_tokens": 3000,
                        "output_tokens": 250,
                    },
                ],
                "min_replicas": 1,
                "max_spot_share": 1.0,
                "max_quality_drop": 0.25,
            },
        ],
    }


def single_region() -> dict[str, Any]:
    regions = {("aws", "us-east-1")}
    return {
        "name": "single-region-chat",
        "description": "One AWS region (us-east-1), its GPU families on-demand and spot; one chat deployment "
        "of Llama-3.1-8B serving the Azure conv trace x10 from New York.",
        "headroom": 0.8,
        "regions": regions_block(regions, ["clients-us-east"]),
        "pools": pools_for(regions),
        "models": MODELS[:1],
        "deployments": [
            {
                "name": "chat-8b",
                "model": "Llama-3.1-8B",
                "slo": {"ttft_p95_ms": 800, "tpot_p95_ms": 60},
                "demand": trace("conv", 10, {"clients-us-east": 1.0}),
                "min_replicas": 2,
                "max_spot_share": 0.5,
                "max_quality_drop": 0.5,
            },
        ],
    }


def us_two_clouds() -> dict[str, Any]:
    regions = {
        ("aws", "us-east-1"),
        ("aws", "us-west-2"),
        ("lambda", "us-east-1"),
        ("lambda", "us-west-1"),
        ("nebius", "us-central1"),
    }
    return {
        "name": "us-three-clouds",
        "description": "US only: AWS, Lambda and Nebius regions; a 70B chat model and an 8B code model, "
        "bf16 only (no quantised variant allowed), spread over two regions.",
        "headroom": 0.8,
        "regions": regions_block(regions, ["clients-us-east", "clients-us-west"]),
        "pools": pools_for(regions),
        "models": [MODELS[0], MODELS[2]],
        "deployments": [
            {
                "name": "chat-70b",
                "model": "Llama-3.3-70B",
                "slo": {"ttft_p95_ms": 1500, "tpot_p95_ms": 80},
                "demand": trace("conv", 10, {"clients-us-east": 0.6, "clients-us-west": 0.4}),
                "min_replicas": 2,
                "spread": True,
                "max_spot_share": 0.5,
                "max_quality_drop": 0.0,
            },
            {
                "name": "code-8b",
                "model": "Llama-3.1-8B",
                "slo": {"ttft_p95_ms": 1000, "tpot_p95_ms": 40},
                "demand": trace("code", 10, {"clients-us-east": 0.5, "clients-us-west": 0.5}),
                "min_replicas": 2,
                "spread": True,
                "max_spot_share": 0.3,
                "max_quality_drop": 0.0,
            },
        ],
    }


def write(name: str, scenario: dict[str, Any]) -> Path:
    path = HERE / f"{name}.yaml"
    header = (
        "# Generated by benchmarks/scenarios/build.py from control_plane/data/catalog/gpu_catalog.csv (SkyPilot catalog\n"
        "# snapshot 2026-11-29) and the Azure LLM inference traces (CC-BY-4.0, Splitwise ISCA 2024).\n"
        "# Quotas, quality deltas, SLOs and traffic scales are assumptions stated in build.py.\n"
    )
    path.write_text(header + yaml.safe_dump(scenario, sort_keys=False, width=120))
    return path


def main() -> None:
    for name, scenario in (
        ("multi-region", multi_region(5.0)),
        ("multi-region-small", multi_region(1.0, "multi-region-small")),
        ("single-region-chat", single_region()),
        ("us-three-clouds", us_two_clouds()),
    ):
        path = write(name, scenario)
        print(
            f"wrote {path.relative_to(HERE.parent.parent)}: {len(scenario['pools'])} pools, "
            f"{len(scenario['deployments'])} deployments"
        )


if __name__ == "__main__":
    main()
