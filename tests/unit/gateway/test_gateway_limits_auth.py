"""Local rate-limit windows, key checks against the table's hashes, and snapshot parsing."""

from __future__ import annotations

import asyncio
import hashlib

from agents.gateway.auth import AuthFailure, authenticate
from agents.gateway.limits import LimitConfig, MemoryLimits
from agents.gateway.snapshot import KeyInfo, parse_snapshot


def test_memory_windows_count_requests_and_tokens_per_minute() -> None:
    now = [120.0]
    limits = MemoryLimits(LimitConfig(requests_per_minute=2, tokens_per_minute=100), lambda: now[0])

    async def go() -> None:
        assert (await limits.admit("k")).allowed and (await limits.admit("k")).allowed
        refused = await limits.admit("k")
        assert not refused.allowed and refused.retry_after_s == 60
        assert (await limits.admit("other")).allowed
        now[0] = 180.0  # next window
        assert (await limits.admit("k")).allowed
        await limits.charge_tokens("k", 100)
        assert not (await limits.admit("k")).allowed

    asyncio.run(go())


TABLE = {
    "deployments": [{
        "name": "chat", "team": "search", "model": "llama", "version": "v1", "aliases": {"champion": "v1"},
        "generation": 3, "version_weights": {"v1": 100.0}, "experiment": None,
        "shares": {"us-east-1": {"aws-use1": 1.0}}, "shares_published": True,
        "replicas": [{"name": "r1", "endpoint": "http://x:1/", "cluster": "aws-use1", "region": "us-east-1",
                      "version": "v1", "variant": "fp8", "capacity_weight": 1.0}],
    }],
    "keys": [{"key_id": "abcd0123", "key_hash": hashlib.sha256(b"lf_abcd0123_secret").hexdigest(),
              "team": "search", "scopes": ["read"]}],
    "generation": 3,
}


def test_keys_are_checked_by_hash_and_a_stale_table_fails_closed() -> None:
    snapshot = parse_snapshot(TABLE, '"e"', now=10.0)
    assert snapshot.routes["chat"].replicas[0].endpoint == "http://x:1"
    assert snapshot.routes["chat"].resolve("champion") == "v1" and snapshot.routes["chat"].resolve("v7") is None
    key = authenticate("Bearer lf_abcd0123_secret", snapshot, 11.0, 60)
    assert isinstance(key, KeyInfo) and key.team == "search"
    assert isinstance(authenticate("Bearer lf_abcd0123_wrong", snapshot, 11.0, 60), AuthFailure)
    assert isinstance(authenticate(None, snapshot, 11.0, 60), AuthFailure)
    stale = authenticate("Bearer lf_abcd0123_secret", snapshot, 100.0, 60)
    assert isinstance(stale, AuthFailure) and stale.status == 503
    assert isinstance(authenticate("Bearer lf_abcd0123_secret", None, 0, 60), AuthFailure)


def test_a_keys_own_limits_override_the_default_and_others_keep_it() -> None:
    now = [120.0]
    limits = MemoryLimits(LimitConfig(requests_per_minute=3), lambda: now[0])

    async def go() -> None:
        assert [(await limits.admit("tight", 1, None)).allowed for _ in range(2)] == [True, False]
        assert [(await limits.admit("default")).allowed for _ in range(4)] == [True, True, True, False]
        assert all([(await limits.admit("generous", 10, None)).allowed for _ in range(10)])
        await limits.charge_tokens("tokens", 50)
        assert (await limits.admit("tokens", None, 100)).allowed
        await limits.charge_tokens("tokens", 50)
        refused = await limits.admit("tokens", None, 100)
        assert not refused.allowed and "100 tokens per minute" in refused.reason

    asyncio.run(go())


def test_the_routing_table_carries_each_keys_limits() -> None:
    table = {**TABLE, "keys": [{**TABLE["keys"][0], "requests_per_minute": 7, "tokens_per_minute": None}]}
    snapshot = parse_snapshot(table, '"e"', now=10.0)
    key = next(iter(snapshot.keys.values()))
    assert (key.requests_per_minute, key.tokens_per_minute) == (7, None)
    # An older control plane sends no limits: the gateway's default applies.
    old = next(iter(parse_snapshot(TABLE, '"e"', now=10.0).keys.values()))
    assert (old.requests_per_minute, old.tokens_per_minute) == (None, None)
