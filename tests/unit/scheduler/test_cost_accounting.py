"""Cost accounting: per-GPU attribution of instance prices, grouping, $ per 1M tokens and goodput per dollar."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.cost_accounting import (
    BilledReplica,
    DeploymentTerms,
    GroupBy,
    cost_series,
    deployment_cost,
    deployment_costs,
    group_costs,
    total_usd_per_hour,
    within_slo,
)

TERMS = DeploymentTerms(ttft_p95_ms=500, tpot_p95_ms=50, budget_usd_per_hour=10.0)


def replica(name: str = "r", *, deployment: str = "chat", team: str = "search", region: str = "us-east-1",
            accelerator: str = "H100", market: str = "on-demand", gpus: int = 1, per_instance: int = 8,
            price: float = 80.0, tokens: float = 0.0, ttft: float | None = None, tpot: float | None = None
            ) -> BilledReplica:
    return BilledReplica(name=name, deployment=deployment, team=team, region=region, accelerator=accelerator,
                         market=market, gpus=gpus, gpus_per_instance=per_instance, instance_price_per_hour=price,
                         tokens_per_second=tokens, ttft_p95_ms=ttft, tpot_p95_ms=tpot)


def test_a_replica_pays_for_the_gpus_it_occupies_at_the_pools_price_per_gpu() -> None:
    assert replica(gpus=2, per_instance=8, price=80.0).usd_per_hour == pytest.approx(20.0)
    assert replica(gpus=1, per_instance=1, price=0.8).usd_per_hour == pytest.approx(0.8)


def test_grouping_sorts_by_cost_and_counts_replicas_and_gpus() -> None:
    fleet = [replica("a", region="eu", gpus=4), replica("b", region="us", gpus=1), replica("c", region="us", gpus=1)]
    groups = group_costs(fleet, GroupBy.REGION)
    assert [(g.key, g.usd_per_hour, g.replicas, g.gpus) for g in groups] == [("eu", 40.0, 1, 4), ("us", 20.0, 2, 2)]
    assert group_costs([], GroupBy.TEAM) == []


def test_unit_costs_and_goodput_of_a_deployment() -> None:
    fleet = [replica("fast", tokens=1000, ttft=200, tpot=20, price=8, per_instance=1),
             replica("slow", tokens=3000, ttft=900, tpot=20, price=8, per_instance=1),
             replica("other", deployment="ads", price=100, per_instance=1, tokens=5)]
    cost = deployment_cost("chat", fleet, TERMS)
    assert cost.usd_per_hour == 16 and cost.tokens_per_second == 4000 and cost.goodput_tokens_per_second == 1000
    assert cost.usd_per_million_tokens == pytest.approx(16 / (4000 * 3600) * 1e6)
    assert cost.goodput_tokens_per_usd == pytest.approx(1000 * 3600 / 16)
    assert cost.over_budget and not deployment_cost("chat", fleet, DeploymentTerms(500, 50, 16.0)).over_budget
    assert [(r.region, r.replicas) for r in cost.by_region] == [("us-east-1", 2)]


def test_no_tokens_or_no_cost_gives_none_not_a_division_by_zero() -> None:
    idle = deployment_cost("chat", [replica()], TERMS)
    assert idle.usd_per_million_tokens is None and idle.goodput_tokens_per_usd is None
    free = deployment_cost("chat", [replica(price=0.0, tokens=10, ttft=1, tpot=1)], TERMS)
    assert free.usd_per_million_tokens == 0 and free.goodput_tokens_per_usd is None
    empty = deployment_costs([], {"chat": TERMS})["chat"]
    assert empty.usd_per_hour == 0 and empty.by_region == []


def test_within_slo_judges_only_the_latencies_the_window_has() -> None:
    assert within_slo(replica(tokens=10, ttft=500, tpot=None), TERMS)
    assert not within_slo(replica(tokens=10, ttft=501, tpot=10), TERMS)
    assert not within_slo(replica(tokens=10, ttft=100, tpot=51), TERMS)
    assert not within_slo(replica(tokens=10), TERMS)  # tokens but no latency: proves nothing
    assert within_slo(replica(tokens=0), TERMS)


@pytest.mark.parametrize("bad", [{"gpus": 0}, {"per_instance": 0}, {"price": -1.0}, {"price": math.nan},
                                 {"tokens": math.inf}])
def test_impossible_inputs_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        replica(**bad)  # type: ignore[arg-type]


replicas = st.lists(
    st.builds(
        replica,
        name=st.text("abc", min_size=1, max_size=3),
        deployment=st.sampled_from(["chat", "code"]), team=st.sampled_from(["a", "b"]),
        region=st.sampled_from(["us", "eu", "ap"]), accelerator=st.sampled_from(["L4", "H100"]),
        market=st.sampled_from(["spot", "on-demand"]), gpus=st.integers(1, 8), per_instance=st.integers(8, 8),
        price=st.floats(0, 200), tokens=st.floats(0, 1e5),
    ),
    max_size=30,
)


@given(replicas, st.sampled_from(list(GroupBy)))
def test_every_grouping_and_the_series_add_up_to_the_total(fleet: list[BilledReplica], by: GroupBy) -> None:
    total = total_usd_per_hour(fleet)
    groups = group_costs(fleet, by)
    assert math.isclose(sum(g.usd_per_hour for g in groups), total, abs_tol=1e-6)
    assert sum(g.replicas for g in groups) == len(fleet)
    series = cost_series(fleet)
    for group in groups:
        from_series = sum(v.usd_per_hour for k, v in series.items() if getattr(k, by.value) == group.key)
        assert math.isclose(from_series, group.usd_per_hour, rel_tol=1e-9, abs_tol=1e-9)
