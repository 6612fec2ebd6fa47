"""Prefix affinity through a real gateway and the official OpenAI client: chats that share a long system
prompt keep landing on one replica (its prefix cache is warm), different prompts spread over the replicas,
and a session header pins a session whatever its prompts."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.integration.gateway.gateway_harness import fleet, wait_until

PREFIX = 96


def test_shared_prefixes_stick_to_a_replica_and_different_ones_spread(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        world.serve("aws-use1", 3, speedup=20)
        gateway = world.gateway("us-east-1", prefix_affinity_chars=PREFIX)
        wait_until(lambda: len(gateway.parts.gateway.source.snapshot.routes["chat"].replicas) == 3, "3 replicas")
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=world.key(), max_retries=0, timeout=60)

        def replica(system: str, user: str, session: str | None = None) -> str:
            raw = client.chat.completions.with_raw_response.create(
                model="chat", max_tokens=2, messages=[{"role": "system", "content": system},
                                                      {"role": "user", "content": user}],
                extra_headers={"x-llmfleet-session": session} if session else None)
            return raw.headers["x-llmfleet-replica"]

        system = "You rank search results for the home feed; answer with the best id only. " * 3
        assert len({replica(system, f"question {i}") for i in range(12)}) == 1
        homes = {replica(f"Team {t} assistant, version {t}. " * 6, "hi") for t in range(24)}
        assert len(homes) == 3
        pinned = {replica(f"prompt {i} " * 20, "hi", session="user-42") for i in range(6)}
        assert len(pinned) == 1
