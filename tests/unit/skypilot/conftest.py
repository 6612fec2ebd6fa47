"""SkyPilot tests: SkyPilot reads the shipped catalog snapshot, and any network access fails the test."""

from tests.fixtures.skypilot.pytest_fixtures import fake_sdk, no_network, sky

__all__ = ["fake_sdk", "no_network", "sky"]
