"""Reading completion and chat request bodies, and vLLM's max_tokens / context-length rules."""

from __future__ import annotations

import pytest

from agents.sim.api_params import ApiError, parse_chat, parse_completion, resolve_max_tokens


def test_prompt_forms_and_token_counts() -> None:
    assert parse_completion({"prompt": "abcdefgh"}, 16).prompt_tokens == 2
    assert parse_completion({"prompt": "abcdefghi"}, 16).prompt_tokens == 3
    assert parse_completion({"prompt": [1, 2, 3, 4, 5]}, 16).prompt_tokens == 5
    assert parse_completion({"prompt": ["abcdefgh"]}, 16).prompt_tokens == 2  # a batch of one
    assert parse_completion({"prompt": [[1, 2, 3]]}, 16).prompt_tokens == 3
    assert parse_completion({"prompt": ""}, 16).prompt_tokens == 1


def test_equal_prompts_give_equal_seeds_and_prefix_hashes() -> None:
    long = "x" * 1000
    a, b = parse_completion({"prompt": long}, 16), parse_completion({"prompt": long + "tail"}, 16)
    assert a.text_seed != b.text_seed
    assert a.block_hashes and a.block_hashes == b.block_hashes[: len(a.block_hashes)]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({}, 400, "body.prompt"),
        ({"prompt": ["a", "b"]}, 400, "prompt"),
        ({"prompt": {"x": 1}}, 400, "body.prompt"),
        ({"prompt": "x", "n": 2}, 400, "n"),
        ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ({"prompt": "x", "max_tokens": "5"}, 400, "body.max_tokens"),
        ({"prompt": "x", "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ],
)
def test_completion_errors(body: dict[str, object], status: int, param: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_completion(body, 16)
    assert err.value.status == status and err.value.param == param


def test_stream_options() -> None:
    p = parse_completion({"prompt": "x", "stream": True, "stream_options": {"include_usage": True}}, 16)
    assert p.stream and p.include_usage and not p.continuous_usage
    p = parse_completion({"prompt": "x", "stream": True,
                          "stream_options": {"include_usage": True, "continuous_usage_stats": True}}, 16)
    assert p.continuous_usage


def test_chat_counts_messages_and_template_overhead() -> None:
    one = parse_chat({"messages": [{"role": "user", "content": "abcdefgh"}]}, 16)
    two = parse_chat({"messages": [{"role": "system", "content": "abcdefgh"},
                                   {"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]}]}, 16)
    assert one.chat and one.prompt_tokens > 2
    assert two.prompt_tokens - one.prompt_tokens == one.prompt_tokens - 3  # one more message, same size
    assert parse_chat({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 7}, 16).max_tokens == 7


def test_chat_needs_messages() -> None:
    with pytest.raises(ApiError) as err:
        parse_chat({"model": "m"}, 16)
    assert err.value.param == "body.messages" and err.value.err_type == "Bad Request"


def test_max_tokens_rules() -> None:
    p = parse_completion({"prompt": "x" * 400, "max_tokens": 200}, 16)  # 100 prompt tokens
    assert resolve_max_tokens(p, 256, 16) == 156  # clipped to the room left, as vLLM does
    assert resolve_max_tokens(parse_completion({"prompt": "x"}, 16), 256, 16) == 16
    with pytest.raises(ApiError, match="cannot be greater than max_model_len=256"):
        resolve_max_tokens(parse_completion({"prompt": "x", "max_tokens": 1000}, 16), 256, 16)
    with pytest.raises(ApiError, match="maximum context length is 256 tokens"):
        resolve_max_tokens(parse_completion({"prompt": "x" * 2000}, 16), 256, 16)
