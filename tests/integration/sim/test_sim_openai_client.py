"""The official `openai` client against a simulated replica: chat, completions, streaming with usage, errors."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.sim.sim_harness import HostThread


def _client(url: str, api_key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=30)


def test_models_list(sim_url: str) -> None:
    assert [m.id for m in _client(sim_url).models.list()] == ["sim-model"]


def test_chat_completion_with_usage(sim_url: str) -> None:
    reply = _client(sim_url).chat.completions.create(
        model="sim-model", messages=[{"role": "user", "content": "Say hello"}], max_tokens=6)
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "length"
    assert len((reply.choices[0].message.content or "").split()) == 6
    assert reply.usage is not None and reply.usage.completion_tokens == 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 6


def test_completion(sim_url: str) -> None:
    reply = _client(sim_url).completions.create(model="sim-model", prompt="Once upon a time", max_tokens=4)
    assert reply.object == "text_completion" and len(reply.choices[0].text.split()) == 4
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_streaming_chat_with_include_usage(sim_url: str) -> None:
    stream = _client(sim_url).chat.completions.create(
        model="sim-model", messages=[{"role": "user", "content": "Count"}], max_tokens=9, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 9
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 9 and last.usage.total_tokens == last.usage.prompt_tokens + 9
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_completion_with_include_usage(sim_url: str) -> None:
    stream = _client(sim_url).completions.create(
        model="sim-model", prompt=[1, 2, 3, 4, 5], max_tokens=5, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert len("".join(c.choices[0].text for c in chunks if c.choices).split()) == 5
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 5


def test_streaming_without_usage_has_no_usage_chunk(sim_url: str) -> None:
    chunks = list(_client(sim_url).completions.create(model="sim-model", prompt="x", max_tokens=3, stream=True))
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "length"


def test_client_errors_map_to_openai_exceptions(sim_host: HostThread) -> None:
    url = sim_host.start(api_key="k")
    with pytest.raises(openai.AuthenticationError):
        _client(url, "wrong").models.list()
    client = _client(url, "k")
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x", max_tokens=1)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="sim-model", prompt="x", max_tokens=10**6)


def test_injected_5xx_raises_server_error(sim_url: str) -> None:
    httpx.post(f"{sim_url}/admin/fault", json={"mode": "error", "status": 500})
    with pytest.raises(openai.InternalServerError):
        _client(sim_url).completions.create(model="sim-model", prompt="x", max_tokens=1)
