"""The gateway's settings, validated once at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.gateway.limits import LimitConfig


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    region: str
    api_url: str
    api_key: str
    host: str = "127.0.0.1"
    port: int = 8090
    poll_interval_s: float = 2.0
    # How long keys from a table that could not be refreshed stay valid (bounds revocation when the
    # control plane is down); routing itself keeps using the last table indefinitely.
    auth_max_staleness_s: float = 120.0
    max_body_bytes: int = 4 * 1024 * 1024
    max_attempts: int = 3  # distinct replicas tried before the first byte
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 600.0
    limits: LimitConfig = field(default_factory=LimitConfig)
    redis_url: str | None = None
    saturation: float = 256.0
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 5.0
    max_connections: int = 1024
    # Batch-priority requests (`x-llmfleet-priority: batch`) only go to replicas with fewer outstanding
    # requests than this per unit of capacity weight; otherwise 429 + Retry-After, so real-time traffic
    # keeps the headroom and the batch worker backs off.
    batch_max_outstanding: float = 4.0
    batch_retry_after_s: int = 2
    # Prefix affinity: requests whose first this-many prompt characters agree go to the same replica (its
    # prefix cache is warm); 0 = off. `x-llmfleet-session` pins a session either way. A replica keeps its
    # keys while its load is within `affinity_slack` x the mean of the candidates.
    prefix_affinity_chars: int = 0
    affinity_slack: float = 1.5

    def __post_init__(self) -> None:
        if not self.region:
            raise ValueError("region must not be empty")
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError("api_url must be an http(s) URL")
        if not self.api_key.startswith("lf_"):
            raise ValueError("the gateway needs an llmfleet key (lf_...) that may read /v1/routing")
        if self.max_attempts < 1 or self.poll_interval_s <= 0 or self.max_body_bytes <= 0:
            raise ValueError("max_attempts, poll_interval_s and max_body_bytes must be positive")
        if self.batch_max_outstanding <= 0 or self.batch_retry_after_s < 1:
            raise ValueError("batch_max_outstanding and batch_retry_after_s must be positive")
        if self.prefix_affinity_chars < 0 or self.affinity_slack < 1:
            raise ValueError("prefix_affinity_chars must be >= 0 and affinity_slack >= 1")
