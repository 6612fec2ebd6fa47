"""Fixtures: simulated replicas on real sockets (see sim_harness)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.sim.sim_harness import HostThread


@pytest.fixture
def sim_host() -> Iterator[HostThread]:
    host = HostThread()
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def sim_url(sim_host: HostThread) -> str:
    return sim_host.start()
