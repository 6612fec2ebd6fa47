"""Send a trace's requests through an OpenAI-compatible endpoint at their arrival times (open loop) and
measure what clients see: time to first token, time per output token, end-to-end latency and errors.

Prompts are token-id lists (`/v1/completions` accepts them, vLLM and the simulator alike), so every request
carries exactly the trace's prompt length; outputs are forced to the trace's length with `ignore_eos`.
Open loop: a slow server does not slow the arrivals (that would hide overload); `max_in_flight` only
protects the client machine, and how late requests were sent because of it is reported.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from control_plane.replay.trace import Arrival

REGION_HEADER = "x-llmfleet-client-region"  # the gateway routes by the client's region when given


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    base_url: str  # ends before /v1
    model: str
    api_key: str | None = None
    client_region: str | None = None
    max_prompt_tokens: int = 2048
    max_output_tokens: int = 512
    max_in_flight: int = 256
    timeout_s: float = 120.0
    vocab: int = 500  # token ids drawn from [1, vocab): valid for any real tokenizer


@dataclass(slots=True)
class Outcome:
    status: str  # "ok", an HTTP status, or an exception name
    ttft_s: float | None = None
    e2e_s: float | None = None
    output_tokens: int = 0
    prompt_tokens: int = 0
    late_s: float = 0.0


@dataclass(slots=True)
class ReplayReport:
    sent: int
    elapsed_s: float
    by_status: dict[str, int]
    prompt_tokens: int
    output_tokens: int
    ttft_ms: dict[str, float | None]
    tpot_ms: dict[str, float | None]
    e2e_ms: dict[str, float | None]
    max_late_ms: float
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.by_status.get("ok", 0)

    def as_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "ok": self.ok, "elapsed_s": round(self.elapsed_s, 3),
                "by_status": self.by_status, "prompt_tokens": self.prompt_tokens,
                "output_tokens": self.output_tokens, "ttft_ms": self.ttft_ms, "tpot_ms": self.tpot_ms,
                "e2e_ms": self.e2e_ms, "max_late_ms": round(self.max_late_ms, 1), "errors": self.errors}


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 in milliseconds (None without data)."""
    ordered = sorted(values)

    def rank(q: float) -> float | None:
        if not ordered:
            return None
        return round(1000.0 * ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 2)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99)}


def summarise(outcomes: Sequence[Outcome], elapsed_s: float, errors: list[str]) -> ReplayReport:
    good = [o for o in outcomes if o.status == "ok"]
    tpots = [(o.e2e_s - o.ttft_s) / (o.output_tokens - 1) for o in good
             if o.ttft_s is not None and o.e2e_s is not None and o.output_tokens > 1]
    return ReplayReport(
        sent=len(outcomes), elapsed_s=elapsed_s, by_status=dict(Counter(o.status for o in outcomes)),
        prompt_tokens=sum(o.prompt_tokens for o in good), output_tokens=sum(o.output_tokens for o in good),
        ttft_ms=percentiles([o.ttft_s for o in good if o.ttft_s is not None]), tpot_ms=percentiles(tpots),
        e2e_ms=percentiles([o.e2e_s for o in good if o.e2e_s is not None]),
        max_late_ms=1000.0 * max((o.late_s for o in outcomes), default=0.0), errors=errors[:5],
    )


async def _one(client: httpx.AsyncClient, options: ReplayOptions, arrival: Arrival, rng: random.Random,
               clock: Callable[[], float], late_s: float, errors: list[str]) -> Outcome:
    prompt = [rng.randrange(1, options.vocab) for _ in range(max(1, min(arrival.prompt_tokens,
                                                                         options.max_prompt_tokens)))]
    max_tokens = max(1, min(arrival.output_tokens, options.max_output_tokens))
    body = {"model": options.model, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    outcome = Outcome(status="ok", late_s=late_s)
    start = clock()
    try:
        async with client.stream("POST", "/v1/completions", json=body) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")[:200]
                errors.append(f"HTTP {response.status_code}: {text}")
                outcome.status = str(response.status_code)
                return outcome
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("choices") and outcome.ttft_s is None and chunk["choices"][0].get("text"):
                    outcome.ttft_s = clock() - start
                if chunk.get("usage"):
                    outcome.output_tokens = int(chunk["usage"]["completion_tokens"])
                    outcome.prompt_tokens = int(chunk["usage"]["prompt_tokens"])
    except (httpx.HTTPError, json.JSONDecodeError, KeyError, ValueError) as error:
        errors.append(f"{type(error).__name__}: {error}")
        outcome.status = type(error).__name__
        return outcome
    outcome.e2e_s = clock() - start
    return outcome


async def replay(arrivals: Sequence[Arrival], options: ReplayOptions, *, seed: int = 0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 on_progress: Callable[[int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> ReplayReport:
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    if options.client_region:
        headers[REGION_HEADER] = options.client_region
    limits = httpx.Limits(max_connections=options.max_in_flight, max_keepalive_connections=options.max_in_flight)
    rng = random.Random(seed)
    errors: list[str] = []
    gate = asyncio.Semaphore(options.max_in_flight)
    async with httpx.AsyncClient(base_url=options.base_url, headers=headers, limits=limits, transport=transport,
                                 timeout=httpx.Timeout(options.timeout_s, connect=10.0)) as client:
        start = clock()

        async def send(arrival: Arrival) -> Outcome:
            async with gate:
                late = max(0.0, clock() - start - arrival.at_s)
                return await _one(client, options, arrival, rng, clock, late, errors)

        tasks: list[asyncio.Task[Outcome]] = []
        for index, arrival in enumerate(arrivals):
            delay = start + arrival.at_s - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(arrival)))
            if on_progress is not None:
                on_progress(index + 1)
        outcomes = list(await asyncio.gather(*tasks))
    return summarise(outcomes, clock() - start, errors)
