"""One settings object; outside dev it refuses unsafe defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from control_plane.settings import Settings
from registry.environments import Environment


def test_dev_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLMFLEET_ENVIRONMENT", "LLMFLEET_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.environment is Environment.DEV
    assert settings.database_url.startswith("sqlite")


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMFLEET_DATABASE_URL", "postgresql://db/llmfleet")
    monkeypatch.setenv("LLMFLEET_ENVIRONMENT", "prod")
    monkeypatch.setenv("LLMFLEET_API_PORT", "9000")
    settings = Settings()
    assert settings.environment is Environment.PROD and settings.api_port == 9000
    assert settings.database_url == "postgresql://db/llmfleet"


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_outside_dev_sqlite_is_refused(monkeypatch: pytest.MonkeyPatch, environment: str) -> None:
    monkeypatch.delenv("LLMFLEET_DATABASE_URL", raising=False)
    monkeypatch.setenv("LLMFLEET_ENVIRONMENT", environment)
    with pytest.raises(ValidationError, match="PostgreSQL"):
        Settings()


def test_outside_dev_unlimited_rate_is_refused() -> None:
    with pytest.raises(ValidationError, match="RATE_LIMIT"):
        Settings(environment=Environment.PROD, database_url="postgresql://db/x", mutation_rate_limit_per_minute=0)
    assert Settings(environment=Environment.DEV, mutation_rate_limit_per_minute=0).mutation_rate_limit_per_minute == 0
