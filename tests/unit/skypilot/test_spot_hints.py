"""Per-zone spot availability hints -> per-pool availability factors and the usable spot share."""

from __future__ import annotations

import math

import pytest

from scheduler.placement.snapshot import Pool
from scheduler.spot_hints import (
    ON_DEMAND,
    SpotHintPolicy,
    ZoneHint,
    availability_factor,
    preemption_rate,
    spot_availability,
    usable_spot_share,
    zone_availability,
)

NOW = 1_800_000_000.0
POLICY = SpotHintPolicy(recovery_hours=0.25, prior_preemptions=0.5, prior_hours=10.0, min_factor=0.5)


def pool(
    pid: str, market: str = "spot", zone: str | None = "use1-az1", region: str = "aws:us-east-1"
) -> Pool:
    return Pool(pid, "aws", region, "p5.48xlarge", "H100", 8, market, 20.0, 2, zone)  # type: ignore[arg-type]


def hint(zone: str | None = "use1-az1", **kw: object) -> ZoneHint:
    return ZoneHint("aws", "aws:us-east-1", zone, **kw)  # type: ignore[arg-type]


def test_rate_and_factor() -> None:
    assert preemption_rate(0, 0.0, POLICY) == pytest.approx(0.05)  # the prior alone
    assert preemption_rate(10, 90.0, POLICY) == pytest.approx(10.5 / 100)
    assert availability_factor(0.0, 0.25) == 1.0
    assert availability_factor(4.0, 0.25) == pytest.approx(0.5)


def test_no_data_is_the_prior_not_perfection() -> None:
    a = zone_availability(None, POLICY)
    assert a.usable and a.factor == pytest.approx(1 / (1 + 0.05 * 0.25))
    assert a.factor < 1.0 and a.share_weight > 1.0


def test_a_quiet_zone_beats_a_noisy_one() -> None:
    quiet = zone_availability(hint(preemptions=0, replica_hours=500), POLICY)
    noisy = zone_availability(hint(preemptions=40, replica_hours=20), POLICY)
    assert quiet.factor > noisy.factor
    assert noisy.factor == pytest.approx(1 / (1 + (40.5 / 30) * 0.25))


def test_one_early_preemption_does_not_condemn_a_zone() -> None:
    assert zone_availability(hint(preemptions=1, replica_hours=1), POLICY).usable


def test_too_unreliable_or_no_capacity_is_unusable() -> None:
    flaky = zone_availability(hint(preemptions=100, replica_hours=10), POLICY)
    assert not flaky.usable and "< 50%" in flaky.reason and flaky.share_weight == math.inf
    full = zone_availability(hint(capacity_available=False, preemptions=0, replica_hours=100), POLICY)
    assert not full.usable and full.factor == 0.0 and "no spot capacity" in full.reason


def test_pools_by_zone_region_and_market() -> None:
    pools = [
        pool("od", market="on-demand", zone=None),
        pool("az1", zone="use1-az1"),
        pool("az2", zone="use1-az2"),
        pool("az9", zone="use1-az9"),  # no hint of its own: the region-wide hint applies
        pool("regional", zone=None),  # SkyPilot picks the zone: the best known one
        pool("west", zone="usw2-az1", region="aws:us-west-2"),  # nothing known: the prior
    ]
    hints = [
        hint("use1-az1", preemptions=30, replica_hours=20),
        hint("use1-az2", preemptions=0, replica_hours=200),
        hint(None, preemptions=2, replica_hours=100),
    ]
    got = spot_availability(pools, hints, NOW, POLICY)
    assert got["od"] is ON_DEMAND and got["od"].share_weight == 1.0
    assert got["az2"].factor > got["az9"].factor > got["az1"].factor
    assert got["az9"] == zone_availability(hints[2], POLICY)
    assert got["regional"].factor == got["az2"].factor and got["regional"].reason.startswith("best zone")
    assert got["west"] == zone_availability(None, POLICY)


def test_a_regional_pool_with_every_zone_full_is_unusable() -> None:
    hints = [hint("use1-az1", capacity_available=False), hint("use1-az2", capacity_available=False)]
    got = spot_availability([pool("regional", zone=None)], hints, NOW, POLICY)
    assert not got["regional"].usable


def test_stale_hints_are_ignored_and_the_newest_wins() -> None:
    old = hint(capacity_available=False, observed_at=NOW - 7 * 3600)
    assert spot_availability([pool("az1")], [old], NOW, POLICY)["az1"].usable
    earlier = hint(capacity_available=False, observed_at=NOW - 600)
    later = hint(capacity_available=True, preemptions=0, replica_hours=50, observed_at=NOW - 60)
    assert spot_availability([pool("az1")], [later, earlier], NOW, POLICY)["az1"].usable
    assert not spot_availability([pool("az1")], [earlier], NOW, POLICY)["az1"].usable


def test_usable_spot_share() -> None:
    good = zone_availability(hint(preemptions=0, replica_hours=1000), POLICY)
    bad = zone_availability(hint(capacity_available=False), POLICY)
    assert usable_spot_share(0.5, [good, bad]) == pytest.approx(0.5 * good.factor)
    assert usable_spot_share(0.5, [bad]) == 0.0
    assert usable_spot_share(0.5, []) == 0.0
    assert usable_spot_share(1.0, [ON_DEMAND]) == 1.0
    with pytest.raises(ValueError):
        usable_spot_share(1.5, [good])


def test_weighted_share_rule_reduces_to_todays_with_perfect_pools() -> None:
    # Σ weight·share ≤ cap: with factor 1 every weight is 1, the plain spot-share cap.
    assert ON_DEMAND.share_weight == 1.0
    # A pool serving 80% of the time: a unit of traffic there uses 1.25 units of the spot budget.
    policy = SpotHintPolicy(recovery_hours=1.0, prior_preemptions=0.0, prior_hours=1.0)
    pool_80 = zone_availability(hint(preemptions=1, replica_hours=3), policy)
    assert pool_80.factor == pytest.approx(0.8) and pool_80.share_weight == pytest.approx(1.25)


@pytest.mark.parametrize(
    "bad",
    [
        {"recovery_hours": -1},
        {"prior_hours": 0},
        {"min_factor": 1.5},
        {"max_age_s": 0},
    ],
)
def test_policy_validation(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SpotHintPolicy(**bad)


def test_hint_validation() -> None:
    with pytest.raises(ValueError):
        ZoneHint("aws", "r", "z", preemptions=-1)
    with pytest.raises(ValueError):
        ZoneHint("aws", "r", "z", replica_hours=math.nan)
