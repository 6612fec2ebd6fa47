"""`x-llmfleet-priority: batch`: batch requests take only spare capacity and are told to back off (429 with
Retry-After) when real-time traffic holds it; real-time requests are never refused for that reason."""

from __future__ import annotations

import asyncio
import json

import httpx
from aiohttp import web

from tests.integration.gateway.lean_support import KEY, lean_gateway

BODY = json.dumps({"model": "chat", "prompt": "hi"}).encode()
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
BATCH = {**HEADERS, "x-llmfleet-priority": "batch"}


def test_batch_requests_back_off_while_real_time_traffic_holds_the_replica() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"ok": True})

    async def go() -> None:
        async with lean_gateway(slow, batch_max_outstanding=2.0, batch_retry_after_s=3) as gw, \
                httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            batch_alone = asyncio.create_task(client.post("/v1/completions", content=BODY, headers=BATCH))
            real_time = [asyncio.create_task(client.post("/v1/completions", content=BODY, headers=HEADERS))
                         for _ in range(2)]
            await asyncio.sleep(0.3)  # three in flight: one batch (admitted at 0) and two real-time
            refused = await client.post("/v1/completions", content=BODY, headers=BATCH)
            assert refused.status_code == 429 and refused.headers["retry-after"] == "3"
            assert refused.json()["error"]["code"] == "batch_capacity_busy"
            another = asyncio.create_task(client.post("/v1/completions", content=BODY, headers=HEADERS))
            await asyncio.sleep(0.2)
            assert not another.done()  # real-time traffic is admitted beyond the batch cap
            release.set()
            answers = await asyncio.gather(batch_alone, *real_time, another)
            assert [a.status_code for a in answers] == [200] * 4
            after = await client.post("/v1/completions", content=BODY, headers=BATCH)
            assert after.status_code == 200  # capacity is spare again
            metrics = (await client.get("/metrics")).text
            assert 'llmfleet_gateway_rejected_total{reason="batch_deferred"} 1.0' in metrics

    asyncio.run(go())
