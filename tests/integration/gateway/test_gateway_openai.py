"""The official `openai` client against a real gateway, control plane and simulated replicas: chat and
completions (streaming and not), models, and OpenAI-style errors (401, 404, 413, 429)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from agents.gateway.limits import LimitConfig
from tests.integration.gateway.gateway_harness import Fleet, fleet, wait_until


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet(tmp_path_factory.mktemp("gw")) as f:
        f.serve("aws-use1", 2)
        yield f


@pytest.fixture(scope="module")
def gateway_url(world: Fleet) -> str:
    gateway = world.gateway("us-east-1")
    world.wait_for_replicas(gateway, 2)
    return gateway.url


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def test_chat_and_completions_through_the_official_client(world: Fleet, gateway_url: str) -> None:
    api = client(gateway_url, world.key())
    chat = api.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello"}], max_tokens=8)
    assert chat.choices[0].message.content and chat.usage is not None and chat.usage.completion_tokens == 8
    text = api.completions.create(model="chat", prompt="once upon a time", max_tokens=5)
    assert text.choices[0].text and text.usage is not None and text.usage.completion_tokens == 5
    pinned = api.chat.completions.with_raw_response.create(
        model="chat@v1", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert pinned.headers["x-llmfleet-version"] == "v1" and pinned.headers["x-llmfleet-arm"] == "pinned"
    assert pinned.parse().model == "chat"


def test_streaming_chat_and_completions(world: Fleet, gateway_url: str) -> None:
    api = client(gateway_url, world.key())
    stream = api.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello"}],
                                         max_tokens=12, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 12
    stream2 = api.completions.create(model="chat", prompt="abc", max_tokens=6, stream=True)
    assert sum(1 for c in stream2 if c.choices and c.choices[0].text) == 6


def test_models_lists_what_the_key_may_use(world: Fleet, gateway_url: str) -> None:
    ids = [m.id for m in client(gateway_url, world.key()).models.list()]
    assert "chat" in ids and "chat@v1" in ids
    assert client(gateway_url, world.key("other-team")).models.list().data == []


def test_errors_are_openai_shaped(world: Fleet, gateway_url: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(gateway_url, "lf_dead_beef").chat.completions.create(model="chat", messages=[])
    api = client(gateway_url, world.key())
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model="chat@v9", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):  # another team's deployment looks like no deployment at all
        client(gateway_url, world.key("other-team")).chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}])
    big = httpx.post(f"{gateway_url}/v1/completions", content=b"x" * (5 * 1024 * 1024),
                     headers={"Authorization": f"Bearer {world.key()}"}, timeout=30)
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"


def test_a_revoked_key_stops_working_after_the_next_poll(world: Fleet, gateway_url: str) -> None:
    key = world.key()
    api = client(gateway_url, key)
    api.completions.create(model="chat", prompt="x", max_tokens=1)
    with world.http() as http:
        assert http.delete(f"/v1/keys/{key.split('_')[1]}", headers=world.admin).status_code == 200

    def refused() -> bool:
        try:
            api.completions.create(model="chat", prompt="x", max_tokens=1)
        except openai.AuthenticationError:
            return True
        return False

    wait_until(refused, "the revoked key to be refused")


def test_rate_limit_answers_429_with_retry_after(world: Fleet) -> None:
    gateway = world.gateway("us-east-1", limits=LimitConfig(requests_per_minute=3))
    world.wait_for_replicas(gateway, 2)
    api = client(gateway.url, world.key())
    for _ in range(3):
        api.completions.create(model="chat", prompt="x", max_tokens=1)
    with pytest.raises(openai.RateLimitError) as limited:
        api.completions.create(model="chat", prompt="x", max_tokens=1)
    assert int(limited.value.response.headers["Retry-After"]) >= 1
    assert limited.value.code == "rate_limit_exceeded"


def test_metrics_count_requests_and_tokens_by_deployment_version_and_arm(world: Fleet, gateway_url: str) -> None:
    api = client(gateway_url, world.key())
    api.completions.create(model="chat", prompt="x", max_tokens=4)
    text = httpx.get(f"{gateway_url}/metrics", timeout=10).text
    assert 'llmfleet_gateway_requests_total{arm="baseline",client_region="us-east-1",deployment="chat",' \
           'status="200",version="v1"}' in text
    assert 'kind="completion"' in text and "llmfleet_gateway_ttft_seconds_bucket" in text
