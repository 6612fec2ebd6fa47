"""Sending eval prompts through the gateway (OpenAI chat completions), with bounded concurrency.

Offline evaluation is batch work: every request says `x-llmfleet-priority: batch`, so the gateway serves
it only from spare capacity and answers 429 with Retry-After when real-time traffic needs the replicas (or
the key's limits are reached). Those answers are waited out and retried, within `patience_s` per prompt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay

PRIORITY_HEADERS = {"x-llmfleet-priority": "batch"}
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class Answer:
    text: str | None  # None when the request failed
    error: str | None = None


def retry_after_s(response: httpx.Response) -> float:
    """The wait a 429 asks for (seconds form of Retry-After), bounded; a default when absent or unreadable."""
    try:
        return min(max(float(response.headers.get("retry-after", "")), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


def _told_to_wait(outcome: httpx.Response | Answer) -> bool:
    return isinstance(outcome, httpx.Response) and outcome.status_code == 429


def _wait_as_told(state: object) -> float:
    outcome = state.outcome.result()  # type: ignore[attr-defined]
    return retry_after_s(outcome) if isinstance(outcome, httpx.Response) else DEFAULT_RETRY_AFTER_S


async def _ask(client: httpx.AsyncClient, gate: asyncio.Semaphore, model: str, prompt: str, max_tokens: int,
               patience_s: float) -> Answer:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": max_tokens}

    async def once() -> httpx.Response | Answer:
        async with gate:  # a prompt waiting out a 429 does not hold a concurrency slot
            try:
                return await client.post("/v1/chat/completions", json=body, headers=PRIORITY_HEADERS)
            except httpx.HTTPError as error:
                return Answer(None, f"{type(error).__name__}: {error}")

    retrying = AsyncRetrying(retry=retry_if_result(_told_to_wait), wait=_wait_as_told,
                             stop=stop_after_delay(patience_s), retry_error_callback=lambda s: s.outcome.result())
    response = await retrying(once)
    if isinstance(response, Answer):
        return response
    if response.status_code != 200:
        return Answer(None, f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        return Answer(str(response.json()["choices"][0]["message"]["content"] or ""))
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return Answer(None, f"unexpected answer: {error}")


async def ask_all(gateway_url: str, api_key: str, model: str, prompts: list[str], *, concurrency: int,
                  max_tokens: int, transport: httpx.AsyncBaseTransport | None = None,
                  timeout_s: float = 120.0, patience_s: float = 600.0) -> list[Answer]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"},
                                 timeout=timeout_s, limits=limits, transport=transport) as client:
        return list(await asyncio.gather(*(_ask(client, gate, model, p, max_tokens, patience_s) for p in prompts)))
