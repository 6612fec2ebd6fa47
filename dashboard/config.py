"""The dashboard's settings, read from the environment (the API key stays out of argv, like the agents' keys).

`llmfleet dashboard` and the local-stack supervisor turn their arguments into these variables for the
`streamlit run` child."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

API_URL_ENV = "LLMFLEET_API_URL"
API_KEY_ENV = "LLMFLEET_API_KEY"
PROMETHEUS_URL_ENV = "LLMFLEET_PROMETHEUS_URL"
TEMPORAL_UI_URL_ENV = "LLMFLEET_TEMPORAL_UI_URL"
REFRESH_ENV = "LLMFLEET_DASHBOARD_REFRESH_S"
DEFAULT_API_URL = "http://127.0.0.1:8080"
DEFAULT_REFRESH_S = 15.0


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    api_url: str
    api_key: str
    prometheus_url: str | None = None  # None: the pages work from the API alone and say so
    temporal_ui_url: str | None = None
    refresh_s: float = DEFAULT_REFRESH_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        env = os.environ if env is None else env
        key = env.get(API_KEY_ENV, "").strip()
        if not key:
            raise ConfigError(f"no API key: set {API_KEY_ENV} (a key with the read scope is enough)")
        raw_refresh = env.get(REFRESH_ENV, "").strip() or str(DEFAULT_REFRESH_S)
        try:
            refresh = float(raw_refresh)
        except ValueError:
            raise ConfigError(f"{REFRESH_ENV} must be a number of seconds, not {raw_refresh!r}") from None
        if not 1.0 <= refresh <= 3600.0:
            raise ConfigError(f"{REFRESH_ENV} must be between 1 and 3600 seconds, not {refresh:g}")
        return cls(
            api_url=_url(env.get(API_URL_ENV, "").strip() or DEFAULT_API_URL, API_URL_ENV),
            api_key=key,
            prometheus_url=_optional_url(env.get(PROMETHEUS_URL_ENV), PROMETHEUS_URL_ENV),
            temporal_ui_url=_optional_url(env.get(TEMPORAL_UI_URL_ENV), TEMPORAL_UI_URL_ENV),
            refresh_s=refresh,
        )

    def to_env(self) -> dict[str, str]:
        """The variables that make `from_env` give back this config (for a child process)."""
        env = {API_URL_ENV: self.api_url, API_KEY_ENV: self.api_key, REFRESH_ENV: f"{self.refresh_s:g}"}
        if self.prometheus_url:
            env[PROMETHEUS_URL_ENV] = self.prometheus_url
        if self.temporal_ui_url:
            env[TEMPORAL_UI_URL_ENV] = self.temporal_ui_url
        return env


def _url(value: str, name: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _optional_url(value: str | None, name: str) -> str | None:
    value = (value or "").strip()
    return _url(value, name) if value else None
