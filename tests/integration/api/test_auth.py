"""Authentication, scopes, team isolation and the per-key rate limit."""

from __future__ import annotations

from fastapi.testclient import TestClient

from control_plane.app import create_app
from control_plane.rate_limit import RateLimiter
from registry.api_keys import Scope
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate


def test_no_key_is_401_with_problem_body(client: TestClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and "API key" in body["detail"]


def test_unknown_and_malformed_keys_are_401(client: TestClient, make_key: KeyMaker) -> None:
    real = make_key()
    assert client.get("/v1/models", headers=bearer(real + "x")).status_code == 401
    assert client.get("/v1/models", headers=bearer("sk-not-ours")).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    assert client.get("/v1/models", headers=bearer(real)).status_code == 200


def test_revoked_key_is_401(client: TestClient, make_key: KeyMaker) -> None:
    admin = bearer(make_key("platform", Scope.ADMIN))
    issued = ok(client.post("/v1/keys", json={"team": "search", "scopes": ["read"]}, headers=admin), 201)
    assert client.get("/v1/models", headers=bearer(issued["key"])).status_code == 200
    ok(client.delete(f"/v1/keys/{issued['key_id']}", headers=admin))
    assert client.get("/v1/models", headers=bearer(issued["key"])).status_code == 401


def test_key_is_stored_only_as_hash(client: TestClient, make_key: KeyMaker, engine) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    admin = bearer(make_key("platform", Scope.ADMIN))
    issued = ok(client.post("/v1/keys", json={"team": "search", "scopes": ["deploy"]}, headers=admin), 201)
    assert issued["key"].startswith("lf_")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM api_keys")).all()
    assert all(issued["key"] not in str(tuple(row)) for row in rows)
    listed = ok(client.get("/v1/keys", headers=admin))
    assert all("key" not in k for k in listed)


def test_missing_scope_is_403(client: TestClient, make_key: KeyMaker) -> None:
    reader = bearer(make_key("search", Scope.READ))
    deployer = bearer(make_key("search", Scope.DEPLOY))
    response = client.post("/v1/models", json={"name": "m"}, headers=reader)
    assert response.status_code == 403 and "deploy" in response.json()["detail"]
    assert client.post("/v1/clusters", json={"name": "c", "cloud": "aws", "region": "r"},
                       headers=deployer).status_code == 403
    assert client.get("/v1/keys", headers=deployer).status_code == 403
    assert client.get("/v1/clusters", headers=reader).status_code == 200


def test_other_teams_objects_are_404(client: TestClient, make_key: KeyMaker) -> None:
    admin = bearer(make_key("platform", Scope.ADMIN))
    search = bearer(make_key("search", Scope.DEPLOY))
    feed = bearer(make_key("feed", Scope.DEPLOY))
    populate(client, admin, search)
    ok(client.post("/v1/deployments", json=deployment_body(), headers=search), 201)
    for path in ("/v1/models/llama-3.1-8b", "/v1/models/llama-3.1-8b/versions/v1", "/v1/deployments/chat"):
        assert client.get(path, headers=feed).status_code == 404, path
    assert client.patch("/v1/deployments/chat", json={"demand": [{"client_region": "us-east-1", "rps": 1}]},
                        headers=feed).status_code == 404
    assert client.delete("/v1/deployments/chat", headers=feed).status_code == 404
    assert ok(client.get("/v1/models", headers=feed)) == []
    assert ok(client.get("/v1/deployments", headers=feed)) == []
    # feed cannot deploy search's model either: to feed it does not exist.
    response = client.post("/v1/deployments", json=deployment_body("feed-chat"), headers=feed)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "model"
    # feed's audit view holds none of search's events.
    assert all(e["team"] == "feed" for e in ok(client.get("/v1/audit", headers=feed)))


def test_mutations_are_rate_limited_per_key(settings, engine, make_key: KeyMaker) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    app = create_app(settings, engine=engine, limiter=RateLimiter(per_minute=3, clock=lambda: now[0]))
    client = TestClient(app, raise_server_exceptions=False)
    first, second = bearer(make_key()), bearer(make_key())
    statuses = [client.post("/v1/models", json={"name": f"m{i}"}, headers=first).status_code for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    limited = client.post("/v1/models", json={"name": "m9"}, headers=first)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["status"] == 429
    # reads are not limited, and another key has its own bucket
    assert client.get("/v1/models", headers=first).status_code == 200
    assert client.post("/v1/models", json={"name": "other"}, headers=second).status_code == 201
    now[0] += 20.0  # one token back (3 per minute)
    assert client.post("/v1/models", json={"name": "m5"}, headers=first).status_code == 201


def test_per_key_traffic_limits_are_set_audited_and_published_to_gateways(client: TestClient,
                                                                           make_key: KeyMaker) -> None:
    admin = bearer(make_key("platform", Scope.ADMIN))
    issued = ok(client.post("/v1/keys", json={"team": "search", "scopes": ["read"], "requests_per_minute": 60,
                                              "tokens_per_minute": 100000}, headers=admin), 201)
    assert (issued["requests_per_minute"], issued["tokens_per_minute"]) == (60, 100000)
    key_id = issued["key_id"]
    changed = ok(client.put(f"/v1/keys/{key_id}/limits", json={"tokens_per_minute": 5000}, headers=admin))
    assert (changed["requests_per_minute"], changed["tokens_per_minute"]) == (None, 5000)  # replaced, not merged
    events = ok(client.get("/v1/audit", params={"object_type": "api_key", "object_id": key_id}, headers=admin))
    assert {e["action"] for e in events} >= {"create", "set_limits"}
    published = {k["key_id"]: k for k in ok(client.get("/v1/routing", headers=admin))["keys"]}
    assert (published[key_id]["requests_per_minute"], published[key_id]["tokens_per_minute"]) == (None, 5000)

    for bad in ({"requests_per_minute": 0}, {"tokens_per_minute": -1}, {"rpm": 5}):
        response = client.put(f"/v1/keys/{key_id}/limits", json=bad, headers=admin)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert client.put("/v1/keys/deadbeef/limits", json={}, headers=admin).status_code == 404
    assert client.put(f"/v1/keys/{key_id}/limits", json={}, headers=bearer(make_key("search", Scope.DEPLOY))
                      ).status_code == 403
    ok(client.delete(f"/v1/keys/{key_id}", headers=admin))
    revoked = client.put(f"/v1/keys/{key_id}/limits", json={"requests_per_minute": 1}, headers=admin)
    assert revoked.status_code == 422 and "revoked" in revoked.json()["detail"]
