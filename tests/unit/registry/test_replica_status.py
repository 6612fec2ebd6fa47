"""Replica status is derived from recorded facts in one place; later facts win."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry.replicas import Replica, ReplicaStatus, derive_status

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        ({}, ReplicaStatus.PENDING),
        ({"provisioning_at": T}, ReplicaStatus.PROVISIONING),
        ({"provisioning_at": T, "started_at": T}, ReplicaStatus.STARTING),
        ({"started_at": T, "ready_at": T}, ReplicaStatus.READY),
        ({"ready_at": T, "drain_requested_at": T}, ReplicaStatus.DRAINING),
        ({"ready_at": T, "drain_requested_at": T, "terminated_at": T}, ReplicaStatus.TERMINATED),
        ({"started_at": T, "failed_at": T}, ReplicaStatus.FAILED),
        ({"ready_at": T, "preempted_at": T}, ReplicaStatus.PREEMPTED),
        ({"ready_at": T, "failed_at": T, "terminated_at": T}, ReplicaStatus.TERMINATED),
    ],
)
def test_status_from_facts(facts: dict[str, datetime], status: ReplicaStatus) -> None:
    replica = Replica(**facts)
    assert derive_status(replica) is status and replica.status is status


def test_terminal_statuses() -> None:
    assert {s for s in ReplicaStatus if s.is_terminal} == {
        ReplicaStatus.TERMINATED, ReplicaStatus.FAILED, ReplicaStatus.PREEMPTED}
