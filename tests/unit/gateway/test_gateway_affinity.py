"""Affinity keys: the session header wins; prefix affinity (when on) keys on the prompt's first characters,
for completions and chat alike, as a digest."""

from __future__ import annotations

from agents.gateway.affinity import affinity_key, prompt_text

SYSTEM = "You are the search team's ranking assistant. " * 4


def chat(user: str, system: str = SYSTEM) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}


def test_session_wins_and_prefix_affinity_is_off_by_default() -> None:
    assert affinity_key(chat("hi"), "s-1", 64) == "session:s-1"
    assert affinity_key(chat("hi"), None, 0) is None


def test_requests_sharing_a_long_prefix_share_a_key() -> None:
    a, b = affinity_key(chat("first question"), None, 64), affinity_key(chat("another one"), None, 64)
    assert a is not None and a == b and a.startswith("prefix:")
    assert SYSTEM[:20] not in a  # a digest, never the prompt itself
    assert affinity_key(chat("first question", system="Other instructions. " * 8), None, 64) != a
    # Within a short window the user turn is part of the key.
    assert affinity_key(chat("x", system="short"), None, 64) != affinity_key(chat("y", system="short"), None, 64)


def test_roles_and_content_parts_are_read_in_order() -> None:
    parts = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "ab"},
                                                                    {"type": "image_url", "image_url": {}},
                                                                    {"type": "text", "text": "cd"}]}]}
    assert prompt_text(parts, 100) == "\x1euser\x1fabcd"
    as_system = {"model": "m", "messages": [{"role": "system", "content": "abcd"}]}
    assert affinity_key(parts, None, 100) != affinity_key(as_system, None, 100)


def test_completion_prompts_and_bad_bodies() -> None:
    assert prompt_text({"prompt": "hello world"}, 5) == "hello"
    assert prompt_text({"prompt": ["batch one", "batch two"]}, 5) == "batch"
    assert affinity_key({"prompt": "hello world"}, None, 5) == affinity_key({"prompt": "hello there"}, None, 5)
    assert affinity_key({"prompt": [1, 2]}, None, 8) is None
    assert affinity_key({"messages": "not a list"}, None, 8) is None
    assert affinity_key({"messages": [None, {"role": "user", "content": 3}]}, None, 8) is None
