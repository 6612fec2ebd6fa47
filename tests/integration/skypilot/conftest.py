"""SkyPilot tests: SkyPilot reads the shipped catalog snapshot, and any network access fails the test."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.fixtures.skypilot.fake_sky_sdk import FakeSkyPilotSdk
from tests.fixtures.skypilot.sky_offline import NetworkTripwire, sky_offline


@pytest.fixture(scope="session")
def sky(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The real ``sky`` module, offline on the catalog snapshot (see tests/fixtures/skypilot)."""
    return sky_offline(tmp_path_factory.mktemp("sky"))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkTripwire]:
    tripwire = NetworkTripwire()
    tripwire.install(monkeypatch)
    yield tripwire
    assert not tripwire.attempts, f"the test tried to reach the network: {tripwire.attempts}"


@pytest.fixture
def fake_sdk() -> FakeSkyPilotSdk:
    """The fake at the SkyPilot SDK boundary (the only fake in these tests)."""
    return FakeSkyPilotSdk()
