"""Checking a client's `lf_` key locally against the hashes in the routing table (no call per request)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from agents.gateway.snapshot import KeyInfo, Snapshot


@dataclass(frozen=True, slots=True)
class AuthFailure:
    status: int
    message: str
    code: str


def authenticate(authorization: str | None, snapshot: Snapshot | None, now: float, max_staleness_s: float
                 ) -> KeyInfo | AuthFailure:
    if snapshot is None:
        return AuthFailure(503, "the gateway has no routing table yet", "service_unavailable")
    if now - snapshot.fetched_at > max_staleness_s:
        # Fail closed: with an old table a revoked key could still pass.
        return AuthFailure(503, "the gateway could not confirm API keys recently", "service_unavailable")
    if not authorization or not authorization.lower().startswith("bearer "):
        return AuthFailure(401, "missing API key: send `Authorization: Bearer lf_...`", "invalid_api_key")
    token = authorization[7:].strip()
    if not token.startswith("lf_"):
        return AuthFailure(401, "invalid API key", "invalid_api_key")
    key = snapshot.keys.get(hashlib.sha256(token.encode()).hexdigest())
    if key is None:
        return AuthFailure(401, "unknown or revoked API key", "invalid_api_key")
    return key
