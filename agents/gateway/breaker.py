"""A per-replica circuit breaker: after `threshold` consecutive failures the replica gets no traffic for
`cooldown_s`; then one trial request decides whether it closes again. Clock injected for tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Breaker:
    clock: Callable[[], float]
    threshold: int = 3
    cooldown_s: float = 5.0
    failures: int = 0
    open_until: float = 0.0
    trial_in_flight: bool = field(default=False)

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold and self.clock() < self.open_until

    def allows(self) -> bool:
        if self.failures < self.threshold:
            return True
        if self.clock() < self.open_until or self.trial_in_flight:
            return False
        return True  # half-open: let one trial through (claimed in `on_pick`)

    def on_pick(self) -> None:
        if self.failures >= self.threshold:
            self.trial_in_flight = True

    def record_success(self) -> None:
        self.failures = 0
        self.trial_in_flight = False

    def record_failure(self) -> None:
        self.failures += 1
        self.trial_in_flight = False
        if self.failures >= self.threshold:
            self.open_until = self.clock() + self.cooldown_s
