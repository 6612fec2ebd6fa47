"""Where a replica runs on a cloud: one GPU pool (cloud, region, zone, instance type, market) and a disk.

The reconcile loop speaks ``ReplicaSpec``; the pool travels in ``ReplicaSpec.options`` under the keys in
``OPTION_KEYS`` (``Placement.to_options`` / ``placement_from_spec``), so the backend protocol needs no
cloud-specific fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from agents.backends.base import ReplicaSpec

Market = Literal["on-demand", "spot"]

OPTION_KEYS = (
    "cloud", "region", "zone", "instance_type", "accelerator", "gpus_per_instance", "market", "disk_size_gb",
)  # fmt: skip

# AWS catalogs (SkyPilot's too) list zone IDs such as `use1-az1`; which zone *name* (`us-east-1a`) an ID
# is depends on the account, and a launch with credentials only accepts names.
_AWS_ZONE_ID = re.compile(r"^[a-z]{2,5}\d+(-[a-z]+\d+)?-az\d+$")

DEFAULT_DISK_SIZE_GB = 256
# Root disk beyond the weights: OS image, the vLLM venv (torch with CUDA is ~10 GB), caches and logs.
_DISK_OVERHEAD_GB = 96
_DISK_STEP_GB = 32


@dataclass(frozen=True, slots=True)
class Placement:
    cloud: str  # SkyPilot's cloud name, lower case: aws, gcp, lambda, nebius, runpod...
    region: str  # the cloud's own region name (not llmfleet's "aws:us-east-1" region id)
    instance_type: str
    accelerator: str  # SkyPilot's accelerator name, e.g. H100, A100-80GB
    gpus_per_instance: int
    market: Market = "on-demand"
    zone: str | None = None
    disk_size_gb: int = DEFAULT_DISK_SIZE_GB

    def __post_init__(self) -> None:
        for name in ("cloud", "region", "instance_type", "accelerator"):
            value = getattr(self, name)
            if not value or value != value.strip():
                raise ValueError(f"placement {name} must be a non-empty name, got {value!r}")
        if self.cloud != self.cloud.lower():
            raise ValueError(f"placement cloud must be lower case, got {self.cloud!r}")
        if self.gpus_per_instance < 1:
            raise ValueError("placement gpus_per_instance must be >= 1")
        if self.market not in ("on-demand", "spot"):
            raise ValueError(f"placement market must be 'on-demand' or 'spot', got {self.market!r}")
        if self.zone is not None and (not self.zone or self.zone != self.zone.strip()):
            raise ValueError("placement zone must be None or a non-empty name")
        if self.disk_size_gb < 1:
            raise ValueError("placement disk_size_gb must be positive")

    @property
    def use_spot(self) -> bool:
        return self.market == "spot"

    def to_options(self) -> tuple[tuple[str, str], ...]:
        """``ReplicaSpec.options`` entries for this placement."""
        values: dict[str, str | None] = {
            "cloud": self.cloud,
            "region": self.region,
            "zone": self.zone,
            "instance_type": self.instance_type,
            "accelerator": self.accelerator,
            "gpus_per_instance": str(self.gpus_per_instance),
            "market": self.market,
            "disk_size_gb": str(self.disk_size_gb),
        }
        return tuple((k, v) for k, v in values.items() if v is not None)


def placement_from_spec(spec: ReplicaSpec) -> Placement:
    """The placement carried in ``spec.options``; ValueError naming what is missing or malformed."""
    options = dict(spec.options)
    missing = [k for k in ("cloud", "region", "instance_type", "gpus_per_instance") if not options.get(k)]
    accelerator = options.get("accelerator") or spec.accelerator
    if not accelerator:
        missing.append("accelerator")
    if missing:
        raise ValueError(f"replica {spec.replica_id}: placement option(s) missing: {', '.join(missing)}")
    assert accelerator is not None
    try:
        gpus = int(options["gpus_per_instance"])
        disk = int(options.get("disk_size_gb") or DEFAULT_DISK_SIZE_GB)
    except ValueError as exc:
        raise ValueError(f"replica {spec.replica_id}: {exc}") from None
    market = options.get("market", "on-demand")
    if market not in ("on-demand", "spot"):
        raise ValueError(f"replica {spec.replica_id}: market must be 'on-demand' or 'spot', got {market!r}")
    return Placement(
        cloud=options["cloud"].lower(),
        region=cloud_region_name(options["cloud"].lower(), options["region"]),
        zone=options.get("zone") or None,
        instance_type=options["instance_type"],
        accelerator=accelerator,
        gpus_per_instance=gpus,
        market=market,  # type: ignore[arg-type]  # checked above
        disk_size_gb=disk,
    )


def cloud_region_name(cloud: str, region: str) -> str:
    """The cloud's region name from llmfleet's region id: scenarios name regions ``aws:us-east-1``."""
    prefix = f"{cloud}:"
    return region.removeprefix(prefix)


def is_aws_zone_id(zone: str) -> bool:
    return _AWS_ZONE_ID.match(zone) is not None


def launch_zone(placement: Placement, aws_zone_names: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(zone to pin in the task, note) for a placement.

    An AWS zone ID is translated through ``aws_zone_names`` (this account's ID -> name map, from
    ``aws ec2 describe-availability-zones``). Without a translation the task pins the region only, and the
    note says so: SkyPilot then picks the zone, which is better than a launch that fails on a zone ID.
    """
    zone = placement.zone
    if zone is None or placement.cloud != "aws" or not is_aws_zone_id(zone):
        return zone, None
    if zone in aws_zone_names:
        return aws_zone_names[zone], None
    return None, (
        f"AWS zone ID {zone} is not pinned: zone IDs map to zone names per account (pass the mapping); "
        f"SkyPilot will choose a zone in {placement.region}"
    )


def disk_size_for_weights(weights_gb: float) -> int:
    """Root disk for a replica whose weights take ``weights_gb``: room for the download and the venv."""
    if weights_gb < 0 or not math.isfinite(weights_gb):
        raise ValueError("weights_gb must be a non-negative number")
    needed = weights_gb * 1.25 + _DISK_OVERHEAD_GB  # safetensors plus a partial re-download
    return max(128, math.ceil(needed / _DISK_STEP_GB) * _DISK_STEP_GB)
