"""Two gateway processes share one per-key rate limit through the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import redis

from tests.integration.gateway.gateway_harness import fleet, wait_until
from tests.support.real_parts import require_or_skip

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = 5


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_two_gateway_processes_share_one_rate_limit_through_redis(tmp_path: Path) -> None:
    require_or_skip(redis_up(), f"Redis at {REDIS_URL}")
    with fleet(tmp_path) as world:
        world.serve("aws-use1", 1, speedup=20)
        args = ("--redis-url", REDIS_URL, "--requests-per-minute", str(LIMIT))
        urls = [world.gateway_process("us-east-1", *args), world.gateway_process("us-east-1", *args)]
        key = world.key()
        headers = {"Authorization": f"Bearer {key}"}
        for url in urls:  # /v1/models authenticates without spending the request budget
            wait_until(lambda u=url: httpx.get(f"{u}/v1/models", headers=headers, timeout=5).status_code == 200,
                       "the key to reach both gateways")
            wait_until(lambda u=url: any(m["id"] == "chat@v1" for m in
                                         httpx.get(f"{u}/v1/models", headers=headers, timeout=5).json()["data"]),
                       "the replica to reach both gateways")
        if time.time() % 60 > 45:  # windows are per wall-clock minute: do not straddle a boundary
            time.sleep(61 - time.time() % 60)
        statuses = []
        for i in range(2 * LIMIT):
            response = httpx.post(f"{urls[i % 2]}/v1/completions", headers=headers, timeout=30,
                                  json={"model": "chat", "prompt": "x", "max_tokens": 1})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert statuses == [200] * LIMIT + [429] * LIMIT
