"""Scenario files: strict parsing with field paths in errors, trace demand, the checked-in scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "benchmarks" / "scenarios"


def minimal() -> dict[str, Any]:
    return {
        "regions": [
            {"name": "us", "cloud": "aws", "lat": 38.9, "lon": -77.4},
            {"name": "eu", "cloud": "aws", "lat": 53.3, "lon": -6.3},
        ],
        "pools": [
            {
                "id": "p1",
                "cloud": "aws",
                "region": "us",
                "instance_type": "g6e.xlarge",
                "accelerator": "L40S",
                "gpus": 1,
                "market": "spot",
                "price_per_hour": 0.9,
                "max_instances": 8,
                "zone": "use1-az1",
            }
        ],
        "models": [
            {
                "name": "m",
                "params_b": 8,
                "layers": 32,
                "hidden": 4096,
                "kv_heads": 8,
                "head_dim": 128,
                "context": 8192,
                "variants": [
                    {"name": "bf16", "bytes_per_param": 2},
                    {"name": "fp8", "bytes_per_param": 1, "quality_delta": 0.2},
                ],
            }
        ],
        "deployments": [
            {
                "name": "chat",
                "model": "m",
                "slo": {"ttft_p95_ms": 800, "tpot_p95_ms": 60},
                "demand": [
                    {"client_region": "us", "rps": 3, "prompt_tokens": 500, "output_tokens": 100},
                    {"client_region": "eu", "rps": 1, "prompt_tokens": 500, "output_tokens": 100},
                ],
                "min_replicas": 2,
                "spread": True,
                "max_spot_share": 0.5,
                "max_quality_drop": 0.3,
                "allowed_clouds": ["aws"],
            }
        ],
    }


def error(data: Any, tmp_path: Path = Path(".")) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, base_dir=tmp_path)
    return info.value


def test_minimal_scenario_builds_a_snapshot() -> None:
    scn = parse_scenario(minimal(), base_dir=Path("."))
    snap = scn.snapshot
    assert [p.id for p in snap.pools] == ["p1"]
    d = snap.deployments[0]
    assert d.constraints.spread and d.constraints.max_spot_share == 0.5
    assert d.constraints.allowed_clouds == frozenset({"aws"})
    assert [v.name for v in d.variants] == ["bf16", "fp8"]
    assert d.total_rps == 4
    assert "L40S" in scn.gpus


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["pools"][0].update(colour="red"), "pools[0].colour"),
        (lambda s: s["pools"][0].update(gpus=0), "pools[0].gpus"),
        (lambda s: s["pools"][0].update(market="reserved"), "pools[0].market"),
        (lambda s: s["pools"][0].update(region="mars"), "pools[0].region"),
        (lambda s: s["deployments"][0]["slo"].update(ttft_p95_ms=-1), "deployments[0].slo.ttft_p95_ms"),
        (lambda s: s["deployments"][0].update(model="nope"), "deployments[0].model"),
        (
            lambda s: s["deployments"][0]["demand"][1].update(client_region="asia"),
            "deployments[0].demand[1].client_region",
        ),
        (lambda s: s["deployments"][0]["demand"][0].update(extra=1), "deployments[0].demand[0].extra"),
        (lambda s: s["deployments"][0].update(max_spot_share=2), "deployments[0].max_spot_share"),
        (lambda s: s["deployments"][0].update(allowed_regions=["moon"]), "deployments[0].allowed_regions[0]"),
        (
            lambda s: s["models"][0]["variants"].append({"name": "bf16", "bytes_per_param": 2}),
            "models[0].variants[2]",
        ),
        (lambda s: s.update(rtt_ms={"us": {"pluto": 3}}), "rtt_ms.us.pluto"),
        (
            lambda s: s.update(
                current=[{"deployment": "chat", "variant": "int2", "pool": "p1", "tp": 1, "count": 1}]
            ),
            "current[0].variant",
        ),
        (lambda s: s.pop("regions"), "regions"),
    ],
)
def test_errors_name_the_field(mutate: Any, field: str) -> None:
    data = minimal()
    mutate(data)
    err = error(data)
    assert err.field == field, str(err)
    assert str(err).startswith(field)


def test_trace_demand_is_bucketed_and_split(tmp_path: Path) -> None:
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    rows += [
        f"2023-11-16 18:00:{2 * i:02d}.0,{100 if i % 2 else 1000},{10 if i % 2 else 50}" for i in range(30)
    ]
    rows.append("2023-11-16 18:01:00.0,1000,50")
    (tmp_path / "t.csv").write_text("\n".join(rows))
    data = minimal()
    data["deployments"][0]["demand"] = {
        "trace": "t.csv",
        "rate_scale": 2,
        "split": {"us": 0.75, "eu": 0.25},
        "buckets": 2,
    }
    snap = parse_scenario(data, base_dir=tmp_path).snapshot
    slices = snap.deployments[0].demand
    assert {(s.client_region, s.shape.prompt_tokens) for s in slices} == {
        (r, p) for r in ("us", "eu") for p in (100, 1000)
    }
    total = sum(s.rps for s in slices)
    assert total == pytest.approx(31 / 60 * 2)  # 31 requests over 60 s, doubled
    assert sum(s.rps for s in slices if s.client_region == "us") == pytest.approx(0.75 * total)


def test_trace_errors_name_the_field(tmp_path: Path) -> None:
    data = minimal()
    data["deployments"][0]["demand"] = {"trace": "missing.csv", "split": {"us": 1.0}}
    assert error(data, tmp_path).field == "deployments[0].demand.trace"
    data["deployments"][0]["demand"] = {"trace": "x.csv", "split": {"us": 0.5}}
    assert error(data, tmp_path).field == "deployments[0].demand.split"
    data["deployments"][0]["demand"] = {"trace": "x.csv", "split": {"us": 1.0}, "bogus": 1}
    assert error(data, tmp_path).field == "deployments[0].demand.bogus"


def test_json_and_yaml_files_load(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(minimal()))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(minimal()))
    assert load_scenario(tmp_path / "s.json").snapshot == load_scenario(tmp_path / "s.yaml").snapshot
    (tmp_path / "bad.yaml").write_text("regions: [")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(tmp_path / "bad.yaml")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "absent.yaml")


def test_gpu_overrides_replace_builtin_specs() -> None:
    data = minimal()
    data["gpus"] = {
        "L40S": {"memory_gib": 96, "bandwidth_gb_s": 1000, "bf16_tflops": 400},
        "X1": {"memory_gib": 32, "bandwidth_gb_s": 500, "bf16_tflops": 100, "fp8_tflops": 200},
    }
    gpus = parse_scenario(data, base_dir=Path(".")).gpus
    assert gpus["L40S"].memory_gib == 96 and gpus["X1"].fp8_tflops == 200


@pytest.mark.parametrize("name", ["multi-region.yaml", "single-region-chat.yaml", "us-three-clouds.yaml"])
def test_checked_in_scenarios_load(name: str) -> None:
    scn = load_scenario(SCENARIOS / name)
    assert scn.snapshot.pools and scn.snapshot.deployments
    assert all(d.total_rps > 0 for d in scn.snapshot.deployments)


def test_multi_region_scenario_has_the_promised_shape() -> None:
    snap = load_scenario(SCENARIOS / "multi-region.yaml").snapshot
    assert len({p.region for p in snap.pools}) >= 3
    assert len({p.accelerator for p in snap.pools}) >= 4
    assert {p.market for p in snap.pools} == {"on-demand", "spot"}
    assert len({d.arch.name for d in snap.deployments}) >= 2
