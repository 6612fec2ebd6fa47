"""Per-key limits set in the registry (through the API) reach a running gateway with its next poll and are
enforced there; other keys keep the gateway's default; a change takes effect without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.integration.gateway.gateway_harness import fleet, wait_until


def _complete(url: str, key: str) -> int:
    response = httpx.post(f"{url}/v1/completions", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                          json={"model": "chat", "prompt": "x", "max_tokens": 1})
    if response.status_code == 429:
        assert response.json()["error"]["code"] == "rate_limit_exceeded" and response.headers["Retry-After"]
    return response.status_code


def test_limits_from_the_registry_are_enforced_per_key(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        world.serve("aws-use1", 1, speedup=20)
        gateway = world.gateway("us-east-1")
        world.wait_for_replicas(gateway, 1)
        tight, other = world.key(), world.key()
        key_id = tight.split("_")[1]
        with world.http() as api:
            set_limits = api.put(f"/v1/keys/{key_id}/limits", headers=world.admin, json={"requests_per_minute": 2})
            assert set_limits.status_code == 200 and set_limits.json()["requests_per_minute"] == 2
        snapshot_keys = lambda: gateway.parts.gateway.source.snapshot.keys.values()  # noqa: E731
        wait_until(lambda: any(k.key_id == key_id and k.requests_per_minute == 2 for k in snapshot_keys()),
                   "the limit to reach the gateway")
        url = gateway.url
        if time.time() % 60 > 45:  # windows are per wall-clock minute: do not straddle a boundary
            time.sleep(61 - time.time() % 60)
        assert [_complete(url, tight) for _ in range(3)] == [200, 200, 429]
        assert [_complete(url, other) for _ in range(3)] == [200, 200, 200]  # no limit by default
        with world.http() as api:  # raised again: applied with the next poll, no restart
            assert api.put(f"/v1/keys/{key_id}/limits", headers=world.admin,
                           json={"requests_per_minute": 100}).status_code == 200
        wait_until(lambda: any(k.key_id == key_id and k.requests_per_minute == 100 for k in snapshot_keys()),
                   "the new limit to reach the gateway")
        assert _complete(url, tight) == 200
