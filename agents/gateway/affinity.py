"""Which requests should land on the same replica: a session the client names, or a shared prompt prefix.

A replica that served a prefix before holds its KV cache (vLLM's prefix caching), so sending the next
request with that prefix there skips recomputing it. The session header wins; prefix affinity is off
unless the gateway is started with a prefix length. The key is a digest: prompts never reach logs or labels.
"""

from __future__ import annotations

import hashlib
from typing import Any


def prompt_text(body: dict[str, Any], limit: int) -> str:
    """The first `limit` characters the model reads: the completion prompt, or the chat messages' text in
    order (role-tagged, so the same words as system or user prompt differ)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt and isinstance(prompt[0], str) else None
    if isinstance(prompt, str):
        return prompt[:limit]
    parts: list[str] = []
    size = 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if size >= limit:
            break
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts: only their text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        if isinstance(content, str):
            piece = f"\x1e{message.get('role', '')}\x1f{content}"
            parts.append(piece)
            size += len(piece)
    return "".join(parts)[:limit]


def affinity_key(body: dict[str, Any], session: str | None, prefix_chars: int) -> str | None:
    if session:
        return "session:" + session
    if prefix_chars <= 0:
        return None
    text = prompt_text(body, prefix_chars)
    if not text:
        return None
    return "prefix:" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
