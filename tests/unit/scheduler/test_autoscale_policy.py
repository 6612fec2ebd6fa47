"""The autoscaling policy: fast up, slow down (after a delay), bounds and budget, and no data holds."""

from __future__ import annotations

import pytest

from scheduler.autoscale import AutoscalePolicy, AutoscaleState, Observation, bounds, decide, forecast

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
