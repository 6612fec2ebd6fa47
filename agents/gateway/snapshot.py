"""The routing table as the gateway holds it: immutable, parsed once per change, cheap to read per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    endpoint: str  # base URL of the replica, e.g. http://10.0.0.5:8000
    cluster: str
    region: str
    version: str
    variant: str
    capacity_weight: float


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    version: str
    percent: float


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    team: str
    model: str
    version: str  # the deployment's own (baseline) version
    aliases: dict[str, str]
    weights: tuple[tuple[str, float], ...]  # (version, percent), sorted by version: stable buckets
    experiment: str | None
    arms: tuple[Arm, ...]
    shares: dict[str, dict[str, float]]  # client region -> cluster -> share
    replicas: tuple[Upstream, ...]

    def resolve(self, ref: str) -> str | None:
        """A version string or alias named by `deployment@ref`; None when unknown."""
        known = {self.version, *(v for v, _ in self.weights), *(a.version for a in self.arms),
                 *(r.version for r in self.replicas)}
        if ref in known:
            return ref
        return self.aliases.get(ref)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    team: str
    scopes: frozenset[str]
    requests_per_minute: int | None = None  # the key's own limits from the registry; None: the default
    tokens_per_minute: int | None = None

    def may_use(self, route: Route) -> bool:
        return route.team == self.team or "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class Snapshot:
    etag: str
    fetched_at: float  # monotonic seconds of the last successful fetch (or 304)
    routes: dict[str, Route]
    keys: dict[str, KeyInfo]  # by SHA-256 hex of the full key
    regions: frozenset[str] = frozenset()  # every client region or replica region the table names

    def refreshed(self, now: float) -> Snapshot:
        return Snapshot(self.etag, now, self.routes, self.keys, self.regions)


def parse_snapshot(body: dict[str, Any], etag: str, now: float) -> Snapshot:
    routes: dict[str, Route] = {}
    for d in body["deployments"]:
        experiment = d.get("experiment") or None
        routes[d["name"]] = Route(
            name=d["name"], team=d["team"], model=d["model"], version=d["version"], aliases=dict(d["aliases"]),
            weights=tuple(sorted((str(v), float(p)) for v, p in d["version_weights"].items())),
            experiment=experiment["name"] if experiment else None,
            arms=tuple(Arm(a["name"], a["version"], float(a["percent"])) for a in experiment["arms"])
            if experiment else (),
            shares={r: dict(c) for r, c in d["shares"].items()},
            replicas=tuple(Upstream(
                name=r["name"], endpoint=r["endpoint"].rstrip("/"), cluster=r["cluster"], region=r["region"],
                version=r["version"], variant=r["variant"], capacity_weight=float(r["capacity_weight"]) or 1.0,
            ) for r in d["replicas"]),
        )
    keys = {k["key_hash"]: KeyInfo(k["key_id"], k["team"], frozenset(k["scopes"]), k.get("requests_per_minute"),
                                   k.get("tokens_per_minute")) for k in body["keys"]}
    regions = frozenset({r for route in routes.values() for r in route.shares}
                        | {u.region for route in routes.values() for u in route.replicas})
    return Snapshot(etag=etag, fetched_at=now, routes=routes, keys=keys, regions=regions)
