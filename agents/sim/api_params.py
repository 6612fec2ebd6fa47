"""Reading /v1/completions and /v1/chat/completions bodies into what the engine needs, with vLLM's errors.

Sampling parameters (temperature, top_p, stop, seed, ...) are accepted and ignored: the simulator always
generates exactly max_tokens tokens (as with vLLM's ignore_eos). n > 1 and batched prompts are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.sim.kv_cache import chain_hashes
from agents.sim.text import CHARS_PER_TOKEN, count_text_tokens, text_seed, token_ids_seed

# Chat template overhead per message (role markers, separators) and for the assistant turn's header,
# roughly what Llama-3's template adds.
_TOKENS_PER_MESSAGE = 4
_TOKENS_FOR_REPLY = 3


class ApiError(Exception):
    def __init__(self, status: int, message: str, err_type: str = "BadRequestError", param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param


@dataclass(frozen=True, slots=True)
class GenerationParams:
    chat: bool
    model: str | None
    prompt_tokens: int
    max_tokens: int | None  # as requested; None = the replica's default
    stream: bool
    include_usage: bool
    continuous_usage: bool
    text_seed: int  # seeds the pseudo-text, so equal prompts give equal completions
    block_hashes: tuple[int, ...]  # for prefix caching


def _validation_error(loc: str, msg: str) -> ApiError:
    # vLLM reports request-validation failures with type "Bad Request" and the field location as param.
    return ApiError(400, f"1 validation error:\n  {{'loc': '{loc}', 'msg': '{msg}'}}", "Bad Request", loc)


def _text_hashes(text: str, block_size: int, prompt_tokens: int) -> tuple[int, ...]:
    chars = block_size * CHARS_PER_TOKEN
    blocks = min(len(text) // chars, prompt_tokens // block_size)
    return tuple(chain_hashes([text[i * chars:(i + 1) * chars] for i in range(blocks)]))


def _id_hashes(ids: list[int], block_size: int) -> tuple[int, ...]:
    blocks = len(ids) // block_size
    return tuple(chain_hashes([tuple(ids[i * block_size:(i + 1) * block_size]) for i in range(blocks)]))


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, int) and not isinstance(t, bool)
                                                            for t in value)


def _common(body: dict[str, Any], chat: bool) -> tuple[str | None, int | None, bool, bool, bool]:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _validation_error("body.model", "Input should be a valid string")
    raw_max = body.get("max_completion_tokens") if chat else None
    if raw_max is None:
        raw_max = body.get("max_tokens")
    if raw_max is not None and (not isinstance(raw_max, int) or isinstance(raw_max, bool)):
        raise _validation_error("body.max_tokens", "Input should be a valid integer")
    if raw_max is not None and raw_max < 1:
        raise ApiError(400, f"max_tokens must be at least 1, got {raw_max}.", param="max_tokens")
    n = body.get("n", 1)
    if n not in (None, 1):
        raise ApiError(400, "n > 1 is not supported by the simulator.", param="n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise _validation_error("body.stream", "Input should be a valid boolean")
    stream = bool(stream)
    options = body.get("stream_options")
    include_usage = continuous = False
    if options is not None:
        if not stream:
            raise ApiError(400, "Stream options can only be defined when `stream=True`.", param="stream_options")
        if not isinstance(options, dict):
            raise _validation_error("body.stream_options", "Input should be a valid dictionary")
        include_usage = bool(options.get("include_usage"))
        continuous = include_usage and bool(options.get("continuous_usage_stats"))
    return model, raw_max, stream, include_usage, continuous


def parse_completion(body: Any, block_size: int) -> GenerationParams:
    if not isinstance(body, dict):
        raise _validation_error("body", "Input should be a valid dictionary")
    if "prompt" not in body:
        raise _validation_error("body.prompt", "Field required")
    model, max_tokens, stream, include_usage, continuous = _common(body, chat=False)
    prompt = body["prompt"]
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        tokens = max(1, count_text_tokens(prompt))
        seed, hashes = text_seed(prompt), _text_hashes(prompt, block_size, tokens)
    elif _is_token_list(prompt):
        tokens = len(prompt)
        seed, hashes = token_ids_seed(prompt), _id_hashes(prompt, block_size)
    elif isinstance(prompt, list) and len(prompt) > 1 and all(isinstance(p, (str, list)) for p in prompt):
        raise ApiError(400, "Batched prompts are not supported by the simulator.", param="prompt")
    else:
        raise _validation_error("body.prompt", "Input should be a string or a list of token ids")
    return GenerationParams(False, model, tokens, max_tokens, stream, include_usage, continuous, seed, hashes)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts count
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise _validation_error("body.messages.content", "Input should be a valid string or list of parts")


def parse_chat(body: Any, block_size: int) -> GenerationParams:
    if not isinstance(body, dict):
        raise _validation_error("body", "Input should be a valid dictionary")
    messages = body.get("messages")
    if messages is None:
        raise _validation_error("body.messages", "Field required")
    if not isinstance(messages, list) or not messages:
        raise _validation_error("body.messages", "Input should be a non-empty list")
    model, max_tokens, stream, include_usage, continuous = _common(body, chat=True)
    parts: list[str] = []
    tokens = _TOKENS_FOR_REPLY
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _validation_error("body.messages", "Each message needs a string role")
        text = _content_text(message.get("content"))
        tokens += _TOKENS_PER_MESSAGE + count_text_tokens(text)
        parts.append(f"{message['role']}: {text}\n")
    rendered = "".join(parts)
    hashes = _text_hashes(rendered, block_size, tokens)
    return GenerationParams(True, model, tokens, max_tokens, stream, include_usage, continuous,
                            text_seed(rendered), hashes)


def resolve_max_tokens(params: GenerationParams, max_model_len: int, default_max_tokens: int) -> int:
    """vLLM's rule: reject what can never fit, otherwise clip max_tokens to the room left in the context."""
    if params.max_tokens is not None and params.max_tokens > max_model_len:
        raise ApiError(
            400,
            f"max_tokens={params.max_tokens} cannot be greater than max_model_len={max_model_len}. "
            "Please request fewer output tokens.",
            param="max_tokens",
        )
    if params.prompt_tokens >= max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, your prompt contains "
            f"{params.prompt_tokens} input tokens, which exceeds this limit even without any output tokens. "
            "Please reduce the length of the input prompt.",
            param="input_tokens",
        )
    wanted = params.max_tokens if params.max_tokens is not None else default_max_tokens
    return min(wanted, max_model_len - params.prompt_tokens)
