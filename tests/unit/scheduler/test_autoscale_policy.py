"""The autoscaling policy: fast up, slow down (after a delay), bounds and budget, and no data holds."""

from __future__ import annotations

import pytest

from scheduler.autoscale import AutoscalePolicy, AutoscaleState, Observation, bounds, decide, forecast, resize

POLICY = AutoscalePolicy(min_replicas=1, max_replicas=10, target_utilisation=0.5, down_delay_intervals=3)


def test_rising_load_scales_up_at_once() -> None:
    decision, state = decide(POLICY, AutoscaleState(forecast_rps=1.0), Observation(rps=10.0, replicas=1, capacity_rps=2.0))
    # forecast 0.8*10 + 0.2*1 = 8.2 rps; 8.2 / (2 * 0.5) -> 9 replicas
    assert decision.replicas == 9 and state.forecast_rps == pytest.approx(8.2)


def test_falling_load_waits_then_scales_down() -> None:
    state = AutoscaleState(forecast_rps=8.0)
    replicas = 8
    seen = []
    for _ in range(3):
        decision, state = decide(POLICY, state, Observation(rps=0.0, replicas=replicas, capacity_rps=2.0))
        seen.append(decision.replicas)
        replicas = decision.replicas
    assert seen[:2] == [8, 8] and seen[2] < 8


def test_forecast_is_asymmetric() -> None:
    assert forecast(10.0, 0.0, POLICY) == pytest.approx(8.0)  # slow down
    assert forecast(0.0, 10.0, POLICY) == pytest.approx(8.0)  # fast up


def test_an_observation_over_n_intervals_weighs_as_n_in_a_row() -> None:
    one_by_one = 10.0
    for _ in range(3):
        one_by_one = forecast(one_by_one, 0.0, POLICY)
    assert forecast(10.0, 0.0, POLICY, intervals=3) == pytest.approx(one_by_one)  # 10 x 0.8^3
    # An hour of one-minute intervals forgets an old peak almost entirely.
    assert forecast(10.0, 2.0, POLICY, intervals=60) == pytest.approx(2.0, abs=1e-4)
    with pytest.raises(ValueError, match="intervals"):
        forecast(10.0, 2.0, POLICY, intervals=0)


def test_bounds_and_budget() -> None:
    budget = AutoscalePolicy(min_replicas=2, max_replicas=10, budget_per_hour=3.0, price_per_replica_hour=1.0)
    assert bounds(budget) == (2, 3)
    decision, _ = decide(budget, AutoscaleState(), Observation(rps=100.0, replicas=2, capacity_rps=1.0))
    assert decision.replicas == 3
    # The floor wins over the budget.
    assert bounds(AutoscalePolicy(min_replicas=4, budget_per_hour=1.0, price_per_replica_hour=1.0)) == (4, 4)
    decision, _ = decide(POLICY, AutoscaleState(), Observation(rps=0.0, replicas=1, capacity_rps=1.0))
    assert decision.replicas == 1


def test_no_telemetry_holds() -> None:
    decision, state = decide(POLICY, AutoscaleState(forecast_rps=5.0, lower_for=2),
                             Observation(rps=None, replicas=4, capacity_rps=2.0))
    assert decision.replicas == 4 and state.lower_for == 0


def test_invalid_policy() -> None:
    with pytest.raises(ValueError):
        AutoscalePolicy(min_replicas=3, max_replicas=2)


def test_resize_adds_where_the_traffic_goes_not_to_an_idle_item() -> None:
    # The spread replica in the first cluster gets no traffic (the plan routes everything to the second):
    # scaling up there would serve nothing.
    assert resize([1, 1], [0.0, 8.6], 5) == [1, 4]
    # Load per replica decides: 3 replicas at 3 rps each are less loaded than 1 at 5 rps.
    assert resize([3, 1], [9.0, 5.0], 5) == [3, 2]


def test_resize_removes_from_the_idlest_and_keeps_failure_domains() -> None:
    assert resize([1, 4], [0.0, 8.0], 2) == [1, 1]  # never the idle item's last replica first
    assert resize([2, 2], [1.0, 8.0], 3) == [1, 2]
    assert resize([1, 1], [0.0, 1.0], 1) == [0, 1]  # below one per item only when the target says so


def test_resize_without_telemetry_spreads_by_size_and_order() -> None:
    assert resize([2, 1], [0.0, 0.0], 4) == [3, 1]  # no load anywhere: the larger item, as before
    assert sum(resize([2, 1, 3], [0.0, 0.0, 0.0], 9)) == 9
    assert resize([], [], 3) == []
    with pytest.raises(ValueError):
        resize([1], [], 2)
