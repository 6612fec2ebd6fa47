"""Canary and A/B splits through the gateway: a 90/10 split holds within a binomial bound, each user stays in
one arm, each arm is served by its version's replica, and metrics carry the arm."""

from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
from sqlalchemy import select

from registry.db import session_factory, transaction
from registry.deployments import Deployment
from registry.routing import ExperimentArm, set_experiment, set_version_weights
from tests.integration.gateway.gateway_harness import fleet, wait_until

USERS = 400
P_CANARY = 0.10


def test_a_90_10_canary_split_holds_and_users_are_sticky(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        world.serve("aws-use1", 1, speedup=20)
        world.register_version("v2")
        world.add_version_replica("v2", "aws-use1", speedup=20)
        with transaction(session_factory(world.engine)) as session:
            chat = session.scalars(select(Deployment).where(Deployment.name == "chat")).one()
            set_version_weights(session, deployment=chat, weights={"v1": 90, "v2": 10}, actor="rollout")
        gateway = world.gateway("us-east-1")
        wait_until(lambda: gateway.parts.gateway.source.snapshot.routes["chat"].weights == (("v1", 90.0), ("v2", 10.0))
                   and len(gateway.parts.gateway.source.snapshot.routes["chat"].replicas) == 2, "the split")
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=world.key(), max_retries=0, timeout=60)

        def ask(user: str) -> tuple[str, str]:
            raw = client.completions.with_raw_response.create(model="chat", prompt="x", max_tokens=1, user=user)
            return raw.headers["x-llmfleet-arm"], raw.headers["x-llmfleet-version"]

        with ThreadPoolExecutor(8) as pool:
            first = dict(zip(range(USERS), pool.map(lambda i: ask(f"user-{i}"), range(USERS)), strict=True))
        arms = Counter(arm for arm, _ in first.values())
        assert set(arms) <= {"baseline", "canary"}
        # Binomial bound: the canary count stays within 4.5 standard deviations of n·p (false alarm < 1e-5).
        sd = math.sqrt(USERS * P_CANARY * (1 - P_CANARY))
        assert abs(arms["canary"] - USERS * P_CANARY) <= 4.5 * sd, arms
        assert all(version == {"baseline": "v1", "canary": "v2"}[arm] for arm, version in first.values())
        for i in range(0, USERS, 40):  # sticky: the same user lands in the same arm every time
            assert {ask(f"user-{i}") for _ in range(3)} == {first[i]}


def test_ab_experiment_arms_are_sticky_and_counted_per_arm(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        world.serve("aws-use1", 1, speedup=20)
        world.register_version("v2")
        world.add_version_replica("v2", "aws-use1", speedup=20)
        with transaction(session_factory(world.engine)) as session:
            chat = session.scalars(select(Deployment).where(Deployment.name == "chat")).one()
            set_experiment(session, deployment=chat, name="prompt-v2", actor="test",
                           arms=[ExperimentArm("control", "v1", 50), ExperimentArm("treatment", "v2", 50)])
        gateway = world.gateway("us-east-1")
        wait_until(lambda: gateway.parts.gateway.source.snapshot.routes["chat"].experiment == "prompt-v2"
                   and len(gateway.parts.gateway.source.snapshot.routes["chat"].replicas) == 2, "the experiment")
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=world.key(), max_retries=0, timeout=60,
                               default_headers={"X-LLMFleet-User": "ignored-when-the-body-names-a-user"})
        seen: dict[str, set[tuple[str, str]]] = {}
        for i in range(40):
            for _ in range(2):
                raw = client.chat.completions.with_raw_response.create(
                    model="chat", messages=[{"role": "user", "content": "x"}], max_tokens=1, user=f"u{i}")
                seen.setdefault(f"u{i}", set()).add((raw.headers["x-llmfleet-arm"], raw.headers["x-llmfleet-version"]))
        assert all(len(arms) == 1 for arms in seen.values())  # sticky
        pairs = {next(iter(arms)) for arms in seen.values()}
        assert pairs == {("control", "v1"), ("treatment", "v2")}
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        assert 'arm="treatment"' in metrics and 'arm="control"' in metrics
