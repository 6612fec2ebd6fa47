"""Failures under load: a replica killed mid-run costs no request that had not started streaming; when the
client region's capacity is gone, requests spill to another region and are counted."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai

from sqlalchemy import select

from registry.db import session_factory, transaction
from registry.deployments import Deployment
from registry.routing import RouteShare, publish_routing
from tests.integration.gateway.gateway_harness import fleet, wait_until


def api(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def test_killing_a_replica_under_load_fails_no_request_that_had_not_started_streaming(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        sims = world.serve("aws-use1", 3, speedup=2.0)
        gateway = world.gateway("us-east-1")
        world.wait_for_replicas(gateway, 3)
        client = api(gateway.url, world.key())
        done = threading.Event()
        completed = {"plain": 0, "stream": 0}
        unexpected: list[str] = []  # failures of requests that had not started streaming
        lock = threading.Lock()

        def worker(i: int) -> None:
            n = 0
            while not done.is_set() or n < 3:
                n += 1
                if (i + n) % 2:
                    try:
                        client.completions.create(model="chat", prompt=f"w{i} r{n}", max_tokens=16)
                    except openai.APIError as error:
                        with lock:
                            unexpected.append(f"plain: {error!r}")
                    else:
                        with lock:
                            completed["plain"] += 1
                    continue
                received = 0
                try:
                    for chunk in client.completions.create(model="chat", prompt=f"w{i} s{n}", max_tokens=16,
                                                           stream=True):
                        received += 1
                except (openai.APIError, httpx.HTTPError) as error:
                    if received == 0:
                        with lock:
                            unexpected.append(f"stream before first chunk: {error!r}")
                else:
                    with lock:
                        completed["stream"] += 1

        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(worker, i) for i in range(12)]
            wait_until(lambda: sum(completed.values()) >= 30, "traffic to flow")
            sims[0].kill()
            start = sum(completed.values())
            wait_until(lambda: sum(completed.values()) >= start + 60, "traffic after the kill")
            done.set()
            for future in futures:
                future.result()
        assert unexpected == []
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        retried = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("llmfleet_gateway_retries_total{")]
        assert sum(retried) > 0  # the kill did hit requests in flight or being routed


def test_requests_spill_to_another_region_when_local_capacity_is_down(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        local = world.serve("aws-use1", 1)
        world.serve("aws-euc1", 1)
        with transaction(session_factory(world.engine)) as session:
            chat = session.scalars(select(Deployment).where(Deployment.name == "chat")).one()
            publish_routing(session, deployment=chat, actor="test", shares=[
                RouteShare("us-east-1", "aws-use1", 1.0), RouteShare("eu-central-1", "aws-euc1", 1.0)])
        gateway = world.gateway("us-east-1")
        world.wait_for_replicas(gateway, 2)
        client = api(gateway.url, world.key())
        first = client.completions.with_raw_response.create(model="chat", prompt="x", max_tokens=2)
        assert first.headers["x-llmfleet-replica"].startswith("chat-aws-use1")
        local[0].kill()
        for _ in range(5):
            answer = client.completions.with_raw_response.create(model="chat", prompt="x", max_tokens=2)
            assert answer.headers["x-llmfleet-replica"].startswith("chat-aws-euc1")
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        assert 'llmfleet_gateway_spillovers_total{client_region="us-east-1",deployment="chat",' \
               'to_region="eu-central-1"}' in metrics


def test_a_draining_replica_gets_no_new_requests(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        world.serve("aws-use1", 2)
        gateway = world.gateway("us-east-1")
        world.wait_for_replicas(gateway, 2)
        with world.http() as http:  # shrink to one: the other replica is asked to drain
            http.put("/v1/deployments/chat/placement", headers=world.team, json={"replicas": [
                {"cluster": "aws-use1", "pool": "g6.xlarge/on-demand", "variant": "fp8", "tensor_parallel": 1,
                 "count": 1}]}).raise_for_status()
            observed = http.get("/v1/deployments/chat", headers=world.team).json()["observed"]["replicas"]
        draining = {r["name"] for r in observed if r["status"] == "draining"}
        assert len(draining) == 1
        world.wait_for_replicas(gateway, 1)
        client = api(gateway.url, world.key())
        for _ in range(10):
            answer = client.completions.with_raw_response.create(model="chat", prompt="x", max_tokens=1)
            assert answer.headers["x-llmfleet-replica"] not in draining
