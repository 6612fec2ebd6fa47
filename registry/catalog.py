"""Import GPU pools from a price catalog in SkyPilot's `vms.csv` format.

Columns used: InstanceType, AcceleratorName, AcceleratorCount, Price, SpotPrice, Region and, when present,
AvailabilityZone. Each row yields up to two pools (on-demand from Price, spot from SpotPrice). Without a zone
on the cluster, the rows of all zones in its region collapse into one pool per instance type and market at the
lowest price seen (the zone of that price is kept on the pool, where a launcher would go first).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field, replace

from sqlalchemy.orm import Session

from registry import audit
from registry.clusters import Cluster, Market, PoolSpec, upsert_pool
from registry.errors import Invalid

REQUIRED_COLUMNS = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "SpotPrice", "Region")


@dataclass(slots=True)
class SkippedRow:
    line: int
    reason: str


@dataclass(slots=True)
class CatalogParse:
    pools: list[PoolSpec] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    rows_in_region: int = 0


def _price(text: str | None) -> float | None:
    """None for an empty cell (no such market); ValueError for anything that is not a positive number."""
    if text is None or not text.strip():
        return None
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"price {text!r} is not a positive number")
    return value


def parse_catalog(text: str, *, region: str, zone: str | None = None) -> CatalogParse:
    """Pools for one region (and zone, if given) from the CSV text."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(f"catalog CSV lacks column(s): {', '.join(missing)}", field="catalog")
    result = CatalogParse()
    best: dict[tuple[str, Market], PoolSpec] = {}
    for line, row in enumerate(reader, start=2):  # line 1 is the header
        if row.get("Region") != region:
            continue
        row_zone = (row.get("AvailabilityZone") or "").strip() or None
        if zone is not None and row_zone is not None and row_zone != zone:
            continue
        result.rows_in_region += 1
        instance_type = (row.get("InstanceType") or "").strip()
        accelerator = (row.get("AcceleratorName") or "").strip()
        if not instance_type or not accelerator:
            result.skipped.append(SkippedRow(line, "no instance type or accelerator (GPU-only price row)"))
            continue
        try:
            count = float(row.get("AcceleratorCount") or "")
            on_demand = _price(row.get("Price"))
            spot = _price(row.get("SpotPrice"))
        except ValueError as error:
            result.skipped.append(SkippedRow(line, str(error)))
            continue
        if count < 1 or count != int(count):
            result.skipped.append(SkippedRow(line, f"accelerator count {count:g} is not a whole number of GPUs"))
            continue
        for market, price in ((Market.ON_DEMAND, on_demand), (Market.SPOT, spot)):
            if price is None:
                continue
            spec = PoolSpec(
                instance_type=instance_type,
                accelerator=accelerator,
                gpus_per_instance=int(count),
                market=market,
                price_per_hour=price,
                zone=row_zone,
                name=f"{instance_type}/{market.value}",
            )
            current = best.get((instance_type, market))
            if current is None or price < current.price_per_hour:
                best[(instance_type, market)] = spec
    result.pools = sorted(best.values(), key=lambda s: (s.accelerator, s.gpus_per_instance, s.instance_type, s.market))
    return result


def import_catalog(
    session: Session, *, team: str, actor: str, cluster: Cluster, text: str, max_instances: int | None = None
) -> tuple[int, int, list[SkippedRow]]:
    """Upsert the cluster's pools from the catalog; returns (created, updated, skipped rows)."""
    parsed = parse_catalog(text, region=cluster.region, zone=cluster.zone)
    if parsed.rows_in_region == 0:
        raise Invalid(f"catalog has no rows for region {cluster.region!r}", field="catalog")
    created = updated = 0
    for spec in parsed.pools:
        existing = next((p for p in cluster.pools if p.name == spec.resolved_name), None)
        quota = existing.max_instances if existing is not None else max_instances
        _, was_created = upsert_pool(cluster, replace(spec, max_instances=quota))
        created += was_created
        updated += not was_created
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="import_catalog", object_type="cluster", object_id=cluster.name,
        details={"created": created, "updated": updated, "skipped": len(parsed.skipped)},
    )
    return created, updated, parsed.skipped

