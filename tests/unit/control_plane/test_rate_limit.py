"""Token bucket per key with an injected clock."""

from __future__ import annotations

import pytest

from control_plane.rate_limit import RateLimiter, retry_after_header


def test_burst_then_refill() -> None:
    now = [100.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert limiter.acquire("a") is None and limiter.acquire("a") is None
    wait = limiter.acquire("a")
    assert wait == pytest.approx(30.0)  # 2 per minute: one token every 30 s
    now[0] += 15.0
    assert limiter.acquire("a") == pytest.approx(15.0)
    now[0] += 15.0
    assert limiter.acquire("a") is None
    assert limiter.acquire("b") is None  # keys are independent


def test_zero_means_unlimited() -> None:
    limiter = RateLimiter(per_minute=0)
    assert all(limiter.acquire("a") is None for _ in range(1000))


def test_retry_after_is_a_whole_number_of_seconds_at_least_one() -> None:
    assert retry_after_header(0.2) == {"Retry-After": "1"}
    assert retry_after_header(29.1) == {"Retry-After": "30"}
