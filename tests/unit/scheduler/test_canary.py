"""Canary analysis: pass only on enough good data; any clear regression fails; no data is never a pass."""

from __future__ import annotations

from scheduler.canary import ArmSample, CanaryPolicy, Verdict, analyse

GOOD = ArmSample(requests=200, errors=0, ttft_p95_ms=300, tpot_p95_ms=30)


def test_equal_arms_pass() -> None:
    assert analyse(GOOD, GOOD).verdict is Verdict.PASS


def test_no_data_is_inconclusive_never_pass() -> None:
    empty = ArmSample(requests=0, errors=0, ttft_p95_ms=None, tpot_p95_ms=None)
    assert analyse(empty, GOOD).verdict is Verdict.INCONCLUSIVE
    assert analyse(GOOD, empty).verdict is Verdict.INCONCLUSIVE
    assert analyse(empty, empty).verdict is Verdict.INCONCLUSIVE


def test_missing_percentile_is_inconclusive() -> None:
    no_ttft = ArmSample(requests=200, errors=0, ttft_p95_ms=None, tpot_p95_ms=30)
    assert analyse(no_ttft, GOOD).verdict is Verdict.INCONCLUSIVE


def test_slow_canary_fails() -> None:
    slow = ArmSample(requests=200, errors=0, ttft_p95_ms=900, tpot_p95_ms=30)
    result = analyse(slow, GOOD)
    assert result.verdict is Verdict.FAIL and "TTFT" in result.reasons[0]
    slow_tpot = ArmSample(requests=200, errors=0, ttft_p95_ms=300, tpot_p95_ms=80)
    assert analyse(slow_tpot, GOOD).verdict is Verdict.FAIL


def test_within_ratio_passes() -> None:
    slightly = ArmSample(requests=200, errors=0, ttft_p95_ms=350, tpot_p95_ms=33)
    assert analyse(slightly, GOOD).verdict is Verdict.PASS


def test_error_rate_regression_fails() -> None:
    erring = ArmSample(requests=180, errors=20, ttft_p95_ms=300, tpot_p95_ms=30)
    assert analyse(erring, GOOD).verdict is Verdict.FAIL


def test_slo_breach_fails_even_when_baseline_is_as_slow() -> None:
    slow = ArmSample(requests=200, errors=0, ttft_p95_ms=900, tpot_p95_ms=30)
    assert analyse(slow, slow, CanaryPolicy(slo_ttft_p95_ms=500)).verdict is Verdict.FAIL


def test_failure_wins_over_missing_metric() -> None:
    canary = ArmSample(requests=200, errors=0, ttft_p95_ms=900, tpot_p95_ms=None)
    assert analyse(canary, GOOD).verdict is Verdict.FAIL


def test_blue_green_is_judged_by_the_slo() -> None:
    from scheduler.canary import analyse_against_slo

    policy = CanaryPolicy(slo_ttft_p95_ms=500, slo_tpot_p95_ms=50)
    assert analyse_against_slo(GOOD, policy).verdict is Verdict.PASS
    assert analyse_against_slo(ArmSample(200, 0, 900, 30), policy).verdict is Verdict.FAIL
    assert analyse_against_slo(ArmSample(0, 0, None, None), policy).verdict is Verdict.INCONCLUSIVE
    assert analyse_against_slo(GOOD, CanaryPolicy()).verdict is Verdict.INCONCLUSIVE


def test_a_small_absolute_difference_is_noise_not_a_regression() -> None:
    # 33 ms against 20 ms is 65 % worse but 13 ms: p95 noise between identical arms at this scale.
    fast = ArmSample(requests=40, errors=0, ttft_p95_ms=20, tpot_p95_ms=24)
    assert analyse(ArmSample(40, 0, 33, 26), fast).verdict is Verdict.PASS
    assert analyse(ArmSample(40, 0, 60, 24), fast).verdict is Verdict.FAIL  # 40 ms more: real
    assert analyse(ArmSample(40, 0, 20, 36), fast).verdict is Verdict.FAIL  # TPOT +12 ms: real
    strict = CanaryPolicy(min_ttft_delta_ms=0, min_tpot_delta_ms=0)
    assert analyse(ArmSample(40, 0, 33, 24), fast, strict).verdict is Verdict.FAIL
