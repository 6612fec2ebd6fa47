"""Split assignment: sticky by user, proportional over many users, experiments override weights."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from agents.gateway.snapshot import Arm, Route
from agents.gateway.splits import assign, bucket


def route(weights: tuple[tuple[str, float], ...], arms: tuple[Arm, ...] = ()) -> Route:
    return Route("chat", "t", "m", "v1", {}, weights, "exp" if arms else None, arms, {}, ())


@given(st.text(min_size=1, max_size=40))
def test_bucket_is_stable_and_in_range(user: str) -> None:
    assert bucket("chat", user) == bucket("chat", user)
    assert 0 <= bucket("chat", user) < 100


def test_ninety_ten_over_many_users_within_a_binomial_bound() -> None:
    r = route((("v1", 90.0), ("v2", 10.0)))
    n = 20_000
    canary = sum(assign(r, bucket("chat", f"u{i}")).arm == "canary" for i in range(n))
    assert abs(canary - n * 0.1) <= 4.5 * math.sqrt(n * 0.1 * 0.9)


def test_experiment_arms_and_no_weights() -> None:
    r = route((("v1", 100.0),), (Arm("control", "v1", 50), Arm("treatment", "v2", 50)))
    assert assign(r, 10.0).arm == "control" and assign(r, 60.0).version == "v2"
    assert assign(r, 99.9999999).arm == "treatment"
    assert assign(route(()), 50).version == "v1"
    assert assign(route((("v1", 90.0), ("v2", 10.0))), 95).version == "v2"
