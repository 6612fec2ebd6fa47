"""Sending eval prompts through the gateway (OpenAI chat completions), with bounded concurrency."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class Answer:
    text: str | None  # None when the request failed
    error: str | None = None


async def _ask(client: httpx.AsyncClient, gate: asyncio.Semaphore, model: str, prompt: str, max_tokens: int
               ) -> Answer:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": max_tokens}
    async with gate:
        try:
            response = await client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as error:
            return Answer(None, f"{type(error).__name__}: {error}")
    if response.status_code != 200:
        return Answer(None, f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        return Answer(str(response.json()["choices"][0]["message"]["content"] or ""))
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return Answer(None, f"unexpected answer: {error}")


async def ask_all(gateway_url: str, api_key: str, model: str, prompts: list[str], *, concurrency: int,
                  max_tokens: int, transport: httpx.AsyncBaseTransport | None = None,
                  timeout_s: float = 120.0) -> list[Answer]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"},
                                 timeout=timeout_s, limits=limits, transport=transport) as client:
        return list(await asyncio.gather(*(_ask(client, gate, model, p, max_tokens) for p in prompts)))
