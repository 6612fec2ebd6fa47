"""Two concurrent updates of one deployment through a real server: exactly one wins, the other gets 409."""

from __future__ import annotations

import threading

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from registry.api_keys import Scope
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate
from tests.support.live_server import live_server


def test_two_concurrent_updates_give_one_409(app: FastAPI, client: TestClient, make_key: KeyMaker) -> None:
    team = bearer(make_key("search", Scope.DEPLOY))
    populate(client, bearer(make_key("platform", Scope.ADMIN)), team)
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    with live_server(app) as url:
        def update(rps: float) -> None:
            with httpx.Client(base_url=url, headers={**team, "If-Match": '"1"'}) as http:
                barrier.wait()
                body = {"demand": [{"client_region": "us-east-1", "rps": rps}]}
                statuses.append(http.patch("/v1/deployments/chat", json=body).status_code)

        threads = [threading.Thread(target=update, args=(rps,)) for rps in (5.0, 7.0)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(statuses) == [200, 409]
    final = ok(client.get("/v1/deployments/chat", headers=team))
    assert final["resource_version"] == 2 and final["desired_generation"] == 2
    updates = ok(client.get("/v1/audit", headers=team, params={"object_type": "deployment", "object_id": "chat"}))
    assert [e["action"] for e in updates].count("update") == 1  # the loser left no trace


def test_concurrent_creates_of_one_name_give_one_201(app: FastAPI, client: TestClient, make_key: KeyMaker) -> None:
    team = bearer(make_key("search", Scope.DEPLOY))
    populate(client, bearer(make_key("platform", Scope.ADMIN)), team)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    with live_server(app) as url:
        def create() -> None:
            with httpx.Client(base_url=url, headers=team) as http:
                barrier.wait()
                statuses.append(http.post("/v1/deployments", json=deployment_body()).status_code)

        threads = [threading.Thread(target=create) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(statuses) == [201, 409, 409, 409]
    assert len(ok(client.get("/v1/deployments", headers=team))) == 1
