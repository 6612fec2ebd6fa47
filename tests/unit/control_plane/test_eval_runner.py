"""The eval runner is batch traffic: it marks every request with the batch priority and waits out 429s
(the gateway's "no spare capacity" or a key limit) for as long as Retry-After asks, within its patience."""

from __future__ import annotations

import asyncio
import json

import httpx

from control_plane.evaluation.runner import ask_all, retry_after_s


def chat(content: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})


def test_batch_priority_is_sent_and_429s_are_retried_after_the_wait_asked() -> None:
    seen: list[tuple[str | None, str]] = []
    busy_left = {"p0": 2, "p1": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][0]["content"]
        seen.append((request.headers.get("x-llmfleet-priority"), prompt))
        if busy_left[prompt]:
            busy_left[prompt] -= 1
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"code": "batch_capacity_busy"}})
        return chat(f"answer to {prompt}")

    answers = asyncio.run(ask_all("http://gw", "k", "chat", ["p0", "p1"], concurrency=2, max_tokens=4,
                                  transport=httpx.MockTransport(handler)))
    assert [a.text for a in answers] == ["answer to p0", "answer to p1"]
    assert {h for h, _ in seen} == {"batch"}
    assert sum(1 for _, p in seen if p == "p0") == 3  # two refusals, then the answer


def test_patience_runs_out_into_a_failed_answer_not_an_exception() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, headers={"Retry-After": "0.05"}, json={"error": {"message": "busy"}})

    answers = asyncio.run(ask_all("http://gw", "k", "chat", ["p"], concurrency=1, max_tokens=4,
                                  transport=httpx.MockTransport(handler), patience_s=0.2))
    assert answers[0].text is None and answers[0].error is not None and answers[0].error.startswith("HTTP 429")
    assert calls >= 2


def test_other_errors_are_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(404, json={"error": {"message": "no such model"}})

    answers = asyncio.run(ask_all("http://gw", "k", "nope", ["p"], concurrency=1, max_tokens=4,
                                  transport=httpx.MockTransport(handler)))
    assert calls == 1 and answers[0].error is not None and answers[0].error.startswith("HTTP 404")


def test_retry_after_is_read_bounded_and_defaulted() -> None:
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "9999"})) == 30.0
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 1.0
    assert retry_after_s(httpx.Response(429)) == 1.0
