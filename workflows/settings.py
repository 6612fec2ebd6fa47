"""The worker-side settings workflows' activities read (env prefix LLMFLEET_, like the control plane's).

Workflows may not import `control_plane`, so the few values activities need are read here: the same
variable names as `control_plane.settings.Settings`, so one environment configures both processes.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkflowSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMFLEET_", extra="ignore", frozen=True, env_ignore_empty=True)

    # Prometheus scraping the gateways; set: canary analysis reads the gateway histograms there,
    # unset: it reads the agents' telemetry windows from the registry.
    prometheus_url: AnyHttpUrl | None = None
    prometheus_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # The shortest range a canary query uses: rate() needs a few scrapes even right after a step starts.
    canary_min_window_s: float = Field(default=30.0, ge=1, le=86_400)

    @property
    def prometheus_base(self) -> str | None:
        return str(self.prometheus_url).rstrip("/") if self.prometheus_url is not None else None
