"""Failure injection for a simulated replica: crash, hang, slow, HTTP 5xx.

- crash: the replica (or the whole process, scope "process") dies abruptly: listener closed, open
  connections reset, in-flight requests lost.
- hang: the replica stops answering: requests and health checks wait forever, the engine stops stepping;
  connections are still accepted (like a wedged process). The admin endpoints keep working so a test can
  lift it.
- slow: every engine step takes `slowdown` times longer (latency and throughput degrade together).
- error: each inference request fails with HTTP `status` (default 500) with probability `probability`.

Faults come from CLI flags (applied at start or `after_s` seconds later) or POST /admin/fault; DELETE clears
hang, slow and error.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from enum import Enum
from typing import Any


class FaultMode(str, Enum):
    CRASH = "crash"
    HANG = "hang"
    SLOW = "slow"
    ERROR = "error"


class CrashScope(str, Enum):
    REPLICA = "replica"
    PROCESS = "process"


class FaultError(ValueError):
    """An invalid fault specification (HTTP 400 / CLI exit 2)."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    mode: FaultMode
    after_s: float = 0.0  # wall seconds to wait before injecting
    slowdown: float = 5.0  # slow: step duration multiplier
    probability: float = 1.0  # error: chance that a request fails
    status: int = 500  # error: HTTP status returned
    scope: CrashScope = CrashScope.REPLICA  # crash: what dies
    exit_code: int = 1  # crash with scope "process": the process exit status

    def __post_init__(self) -> None:
        if self.after_s < 0:
            raise FaultError("after_s must be >= 0")
        if self.slowdown <= 0:
            raise FaultError("slowdown must be > 0")
        if not 0 <= self.probability <= 1:
            raise FaultError("probability must be in [0, 1]")
        if not 500 <= self.status <= 599:
            raise FaultError("status must be a 5xx code")

    @classmethod
    def from_json(cls, body: Any) -> FaultSpec:
        if not isinstance(body, dict) or "mode" not in body:
            raise FaultError('expected a JSON object with "mode"')
        known = {"mode", "after_s", "slowdown", "probability", "status", "scope", "exit_code"}
        unknown = set(body) - known
        if unknown:
            raise FaultError(f"unknown fields: {', '.join(sorted(unknown))}")
        try:
            return cls(
                mode=FaultMode(body["mode"]),
                after_s=float(body.get("after_s", 0.0)),
                slowdown=float(body.get("slowdown", 5.0)),
                probability=float(body.get("probability", 1.0)),
                status=int(body.get("status", 500)),
                scope=CrashScope(body.get("scope", CrashScope.REPLICA.value)),
                exit_code=int(body.get("exit_code", 1)),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FaultError):
                raise
            raise FaultError(str(exc)) from exc


class FaultState:
    """The faults currently in force on one replica (crash is an action, not a state)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.slowdown = 1.0
        self.error_probability = 0.0
        self.error_status = 500
        self._unhung = asyncio.Event()
        self._unhung.set()

    @property
    def hung(self) -> bool:
        return not self._unhung.is_set()

    def hang(self) -> None:
        self._unhung.clear()

    async def wait_unhung(self) -> None:
        await self._unhung.wait()

    def should_fail(self) -> bool:
        return self.error_probability > 0 and self._rng.random() < self.error_probability

    def clear(self) -> None:
        self.slowdown = 1.0
        self.error_probability = 0.0
        self.error_status = 500
        self._unhung.set()

    def as_json(self) -> dict[str, Any]:
        return {
            "hang": self.hung,
            "slowdown": self.slowdown,
            "error_probability": self.error_probability,
            "error_status": self.error_status,
        }
