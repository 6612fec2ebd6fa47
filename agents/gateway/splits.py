"""Canary and A/B splits by hashed user id: the same user always lands in the same arm (sticky), and the
share of users per arm converges to the published percentages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from agents.gateway.snapshot import Route

BASELINE = "baseline"
CANARY = "canary"
PINNED = "pinned"


@dataclass(frozen=True, slots=True)
class Assignment:
    arm: str  # metric label: an experiment arm's name, "baseline", "canary" or "pinned"
    version: str


def bucket(deployment: str, user: str) -> float:
    """A uniform point in [0, 100) from the user id. Salted by deployment so a user's arm in one experiment
    says nothing about their arm in another."""
    digest = hashlib.sha256(f"{deployment}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def _walk(point: float, parts: list[tuple[str, str, float]]) -> tuple[str, str]:
    total = 0.0
    for label, version, percent in parts:
        total += percent
        if point < total:
            return label, version
    label, version, _ = parts[-1]  # rounding: percents may sum to 99.999...
    return label, version


def assign(route: Route, point: float) -> Assignment:
    """`point` is `bucket(...)` for a known user, or a random point in [0, 100) for an anonymous request."""
    if route.arms:
        label, version = _walk(point, [(a.name, a.version, a.percent) for a in route.arms])
        return Assignment(label, version)
    if not route.weights:
        return Assignment(BASELINE, route.version)
    parts = [(BASELINE if v == route.version else CANARY, v, p) for v, p in route.weights]
    label, version = _walk(point, parts)
    return Assignment(label, version)
