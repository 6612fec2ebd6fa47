"""Parsing SkyPilot vms.csv catalogs into pools, on the shipped real snapshot and on hand-made rows."""

from __future__ import annotations

from importlib import resources

import pytest

from registry.catalog import parse_catalog
from registry.clusters import Market
from registry.errors import Invalid


def _shipped(name: str) -> str:
    return resources.files("control_plane").joinpath(f"data/catalog/{name}").read_text()


def test_real_aws_snapshot_us_east_1() -> None:
    parsed = parse_catalog(_shipped("aws_vms_gpu_rows.csv"), region="us-east-1")
    pools = {(p.instance_type, p.market): p for p in parsed.pools}
    h100 = pools[("p5.48xlarge", Market.ON_DEMAND)]
    assert h100.accelerator == "H100" and h100.gpus_per_instance == 8
    # one pool per (instance type, market): the spot price is the lowest over the region's zones
    assert len(pools) == len(parsed.pools)
    spot_l4 = pools[("g6.xlarge", Market.SPOT)]
    assert spot_l4.price_per_hour < pools[("g6.xlarge", Market.ON_DEMAND)].price_per_hour
    assert spot_l4.zone is not None and spot_l4.zone.startswith("use1-")


def test_every_shipped_catalog_parses_for_its_busiest_region() -> None:
    expected_regions = {
        "aws_vms_gpu_rows.csv": "us-east-1",
        "lambda_vms_gpu_rows.csv": "us-east-1",
        "runpod_vms_gpu_rows.csv": "US",
        "nebius_vms_gpu_rows.csv": "eu-north1",
    }
    for name, region in expected_regions.items():
        parsed = parse_catalog(_shipped(name), region=region)
        assert parsed.pools, name
        assert all(p.price_per_hour > 0 and p.gpus_per_instance >= 1 for p in parsed.pools), name


def test_gcp_accelerator_only_rows_are_skipped_with_a_reason() -> None:
    parsed = parse_catalog(_shipped("gcp_vms_gpu_rows.csv"), region="us-central1")
    assert parsed.pools == [] and parsed.skipped
    assert all("instance type" in s.reason for s in parsed.skipped)


def test_zone_of_the_cluster_filters_rows() -> None:
    text = (
        "InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region,AvailabilityZone\n"
        "g6.xlarge,L4,1,0.80,0.30,us-east-1,use1-az1\n"
        "g6.xlarge,L4,1,0.80,0.20,us-east-1,use1-az2\n"
    )
    spot = [p for p in parse_catalog(text, region="us-east-1", zone="use1-az1").pools if p.market is Market.SPOT]
    assert [p.price_per_hour for p in spot] == [0.30]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("g6.xlarge,L4,0.5,1,,us-east-1", "whole number"),
        ("g6.xlarge,L4,1,-3,,us-east-1", "positive"),
        ("g6.xlarge,L4,1,nan,,us-east-1", "positive"),
        ("g6.xlarge,L4,one,1,,us-east-1", "could not convert"),
    ],
)
def test_bad_rows_are_skipped_by_line(row: str, reason: str) -> None:
    text = "InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region\n" + row + "\n"
    parsed = parse_catalog(text, region="us-east-1")
    assert parsed.pools == [] and parsed.skipped[0].line == 2 and reason in parsed.skipped[0].reason


def test_missing_columns_are_named() -> None:
    with pytest.raises(Invalid, match="SpotPrice"):
        parse_catalog("InstanceType,AcceleratorName,AcceleratorCount,Price,Region\n", region="x")
