"""Per-key requests/min and tokens/min in fixed one-minute windows.

`RedisLimits` shares the windows across gateway processes (INCR/INCRBY on keys that expire); `MemoryLimits`
is the same arithmetic in one process. Tokens are charged after a response (its usage is known only then),
so a key over its token budget is refused from its next request until the window rolls over. If Redis
fails, the gateway falls back to its local windows rather than refusing all traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

WINDOW_S = 60


@dataclass(frozen=True, slots=True)
class LimitConfig:
    requests_per_minute: int = 0  # 0: unlimited
    tokens_per_minute: int = 0

    def for_key(self, requests_per_minute: int | None, tokens_per_minute: int | None) -> LimitConfig:
        """A key's own limits (from the registry) where it has them, this default elsewhere."""
        if requests_per_minute is None and tokens_per_minute is None:
            return self  # the common case on the hot path: no per-request allocation
        return LimitConfig(self.requests_per_minute if requests_per_minute is None else requests_per_minute,
                           self.tokens_per_minute if tokens_per_minute is None else tokens_per_minute)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0
    reason: str = ""


class Limits(Protocol):
    async def admit(self, key_id: str, requests_per_minute: int | None = None,
                    tokens_per_minute: int | None = None) -> Verdict: ...

    async def charge_tokens(self, key_id: str, tokens: int) -> None: ...

    async def close(self) -> None: ...


def _verdict(config: LimitConfig, requests: int, tokens: int, now: float) -> Verdict:
    retry = max(1, int(WINDOW_S - now % WINDOW_S + 0.999))
    if config.requests_per_minute and requests > config.requests_per_minute:
        return Verdict(False, retry, f"rate limit of {config.requests_per_minute} requests per minute reached")
    if config.tokens_per_minute and tokens >= config.tokens_per_minute:
        return Verdict(False, retry, f"rate limit of {config.tokens_per_minute} tokens per minute reached")
    return Verdict(True)


@dataclass(slots=True)
class MemoryLimits:
    config: LimitConfig
    clock: Callable[[], float]  # wall-clock seconds: windows are aligned to minutes like Redis ones
    _windows: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def _window(self, key_id: str) -> list[int]:
        minute = int(self.clock() // WINDOW_S)
        if len(self._windows) > 10_000:  # drop old windows now and then
            self._windows = {k: v for k, v in self._windows.items() if k[1] >= minute - 1}
        return self._windows.setdefault((key_id, minute), [0, 0])

    async def admit(self, key_id: str, requests_per_minute: int | None = None,
                    tokens_per_minute: int | None = None) -> Verdict:
        window = self._window(key_id)
        window[0] += 1
        return _verdict(self.config.for_key(requests_per_minute, tokens_per_minute), window[0], window[1],
                        self.clock())

    async def charge_tokens(self, key_id: str, tokens: int) -> None:
        self._window(key_id)[1] += tokens

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class RedisLimits:
    config: LimitConfig
    redis: Any  # redis.asyncio.Redis
    clock: Callable[[], float]
    fallback: MemoryLimits
    prefix: str = "llmfleet:gw"

    def _keys(self, key_id: str) -> tuple[str, str]:
        minute = int(self.clock() // WINDOW_S)
        base = f"{self.prefix}:{key_id}:{minute}"
        return f"{base}:req", f"{base}:tok"

    async def admit(self, key_id: str, requests_per_minute: int | None = None,
                    tokens_per_minute: int | None = None) -> Verdict:
        req, tok = self._keys(key_id)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(req)
            pipe.expire(req, 2 * WINDOW_S)
            pipe.get(tok)
            requests, _, tokens = await pipe.execute()
        except Exception as error:  # noqa: BLE001 - any Redis failure: keep serving on local windows
            log.warning("redis rate limit unavailable, using local windows: %s", error)
            return await self.fallback.admit(key_id, requests_per_minute, tokens_per_minute)
        return _verdict(self.config.for_key(requests_per_minute, tokens_per_minute), int(requests), int(tokens or 0),
                        self.clock())

    async def charge_tokens(self, key_id: str, tokens: int) -> None:
        if tokens <= 0:
            return
        _, tok = self._keys(key_id)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incrby(tok, tokens)
            pipe.expire(tok, 2 * WINDOW_S)
            await pipe.execute()
        except Exception as error:  # noqa: BLE001
            log.warning("redis token charge failed, using local windows: %s", error)
            await self.fallback.charge_tokens(key_id, tokens)

    async def close(self) -> None:
        await self.redis.aclose()


def make_limits(config: LimitConfig, redis_url: str | None, clock: Callable[[], float]) -> Limits:
    memory = MemoryLimits(config, clock)
    if not redis_url:
        return memory
    import redis.asyncio as redis_asyncio  # only when configured: no Redis client in a memory-only gateway

    client = redis_asyncio.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return RedisLimits(config, client, clock, memory)
