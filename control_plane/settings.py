"""The one validated settings object (env prefix LLMFLEET_). Outside `dev` it refuses unsafe defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.environments import Environment

DEFAULT_STATE_DIR = Path(".llmfleet")
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_STATE_DIR}/llmfleet.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMFLEET_", extra="ignore")

    environment: Environment = Environment.DEV
    database_url: str = DEFAULT_DATABASE_URL
    state_dir: Path = DEFAULT_STATE_DIR
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    # Mutating requests per API key per minute; 0 turns the limit off (dev only).
    mutation_rate_limit_per_minute: int = Field(default=120, ge=0)
    max_request_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    temporal_ui_url: str | None = None
    # host:port of a Temporal frontend. Unset: the API writes desired state itself and starts no workflow.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "llmfleet"
    # Where the workflow worker serves its Prometheus /metrics (Temporal SDK exporter); None: not served.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # OTLP endpoint for traces (e.g. http://127.0.0.1:4318); None: the standard OTEL_EXPORTER_OTLP_* variables
    # decide, and without those nothing is exported.
    otlp_endpoint: str | None = None
    # Prometheus the dashboard and canary analysis query; None: not configured.
    prometheus_url: str | None = None
    # Batch API: the largest uploaded file, and how the BatchWorkflow works through a batch (requests in
    # flight at once, and requests per activity call, i.e. per heartbeat-checked unit of progress).
    max_file_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    batch_concurrency: int = Field(default=8, ge=1, le=256)
    batch_chunk_size: int = Field(default=64, ge=1, le=10_000)
    # A worker that stops heartbeating for this long is presumed dead: its chunk is retried elsewhere.
    batch_heartbeat_timeout_s: float = Field(default=30.0, ge=1.0, le=3600.0)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.environment is Environment.DEV:
            return self
        problems = []
        if self.database_url.startswith("sqlite"):
            problems.append("LLMFLEET_DATABASE_URL must point at a server database (PostgreSQL), not SQLite")
        if self.mutation_rate_limit_per_minute == 0:
            problems.append("LLMFLEET_MUTATION_RATE_LIMIT_PER_MINUTE must not be 0 (unlimited)")
        if problems:
            raise ValueError(f"unsafe settings for environment {self.environment.value}: " + "; ".join(problems))
        return self
