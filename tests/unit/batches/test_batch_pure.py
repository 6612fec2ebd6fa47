"""Pure parts of the Batch API and of offline evaluation: input validation by line, replica choice,
output lines, problem → OpenAI error translation, metrics."""

from __future__ import annotations

import json

import orjson
import pytest
from pydantic import ValidationError

from agents.gateway.api_forward import _problem_to_openai
from control_plane.evaluation import metrics
from control_plane.schemas.batches import BatchCreate, parse_batch_file
from workflows.batch_activities import Candidate, choose, is_busy, requests_of


def line(custom_id: str, url: str = "/v1/chat/completions", **body: object) -> str:
    payload = {"model": "chat", **({"messages": [{"role": "user", "content": "hi"}]} if "chat" in url else
                                   {"prompt": "hi"}), **body}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": payload})


def test_a_valid_file_parses_and_blank_lines_keep_numbering() -> None:
    content = f"{line('a')}\n\n{line('b', '/v1/completions', max_tokens=3)}\n".encode()
    parsed = parse_batch_file(content)
    assert parsed.ok and [(n, r.custom_id) for n, r in parsed.records] == [(1, "a"), (3, "b")]
    assert parsed.records[1][1].body.model_extra == {"max_tokens": 3}  # other parameters pass through


@pytest.mark.parametrize(("bad", "field"), [
    ('{"custom_id": "x", "method": "GET", "url": "/v1/completions", "body": {"model": "m", "prompt": "p"}}',
     "method"),
    ('{"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "input": "p"}}', "url"),
    ('{"custom_id": "x", "method": "POST", "url": "/v1/completions", "body": {"prompt": "p"}}', "body.model"),
    ('{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}', ""),
    ('{"custom_id": "", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "p"}}',
     "custom_id"),
    ('{"custom_id": "x", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "p", '
     '"stream": true}}', "body.stream"),
    ('{"custom_id": "x", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "p"}, '
     '"extra": 1}', "extra"),
    ("[1, 2]", ""),
    ("{not json", ""),
])
def test_every_bad_record_is_named_by_its_line(bad: str, field: str) -> None:
    parsed = parse_batch_file(f"{line('ok')}\n{bad}\n{line('ok2')}\n".encode())
    assert not parsed.ok and {e.line for e in parsed.errors} == {2}
    assert parsed.errors[0].field == field, parsed.errors
    assert "line 2" in parsed.summary()


def test_duplicate_custom_ids_and_empty_files_are_errors() -> None:
    parsed = parse_batch_file(f"{line('a')}\n{line('b')}\n{line('a')}\n".encode())
    assert [(e.line, e.field) for e in parsed.errors] == [(3, "custom_id")]
    assert "first on line 1" in parsed.errors[0].message
    assert parse_batch_file(b"\n \n").errors[0].message == "the file has no records"


def test_batch_create_accepts_what_the_official_client_sends_and_nothing_else() -> None:
    body = {"input_file_id": "file-abc", "endpoint": "/v1/completions", "completion_window": "24h",
            "metadata": {"k": "v"}, "output_expires_after": {"anchor": "created_at", "seconds": 7200}}
    assert BatchCreate.model_validate(body).endpoint == "/v1/completions"
    for change in ({"completion_window": "48h"}, {"endpoint": "/v1/embeddings"}, {"surprise": 1},
                   {"metadata": {str(i): "v" for i in range(17)}}):
        with pytest.raises(ValidationError):
            BatchCreate.model_validate({**body, **change})


def cand(name: str, *, spot: bool = False, price: float = 1.0, busy: bool = False) -> Candidate:
    return Candidate(name, f"http://{name}", spot, price, busy)


def test_choose_prefers_calm_spot_then_cheap_and_fills_each_replica_up_to_its_share() -> None:
    demand, spot, cheap = cand("od", price=4.0), cand("spot", spot=True, price=2.0), cand("cheap", price=1.0)
    pool = [demand, spot, cheap]
    assert choose(pool, {}, 2) == spot
    assert choose(pool, {"http://spot": 2}, 2) == cheap  # spot is full: the next cheapest
    assert choose(pool, {"http://spot": 2, "http://cheap": 2}, 2) == demand  # on-demand only when needed
    assert choose(pool, {"http://spot": 2, "http://cheap": 2, "http://od": 2}, 2) == spot  # all full: cheapest
    assert choose([cand("s", spot=True, busy=True), demand], {}, 2) == demand  # real-time traffic comes first
    assert choose(pool, {}, 2, exclude={"http://spot", "http://cheap", "http://od"}) is None
    assert is_busy(2.0, 0.1) and is_busy(None, 0.95) and not is_busy(0.0, 0.5) and not is_busy(None, None)


def test_requests_of_keeps_input_line_numbers() -> None:
    out = requests_of(f"{line('a')}\n\n{line('b')}\n".encode())
    assert [(r.line, r.custom_id, r.body["model"]) for r in out] == [(1, "a", "chat"), (3, "b", "chat")]


def test_problem_details_become_openai_errors_with_their_lines() -> None:
    problem = {"type": "https://llmfleet.dev/problems/validation-error", "title": "Unprocessable content",
               "status": 422, "detail": "2 bad records", "errors": [{"line": 2, "field": "url", "message": "m"}]}
    response = _problem_to_openai(422, orjson.dumps(problem), {})
    error = orjson.loads(response.body)["error"]
    assert response.status_code == 422 and error["message"] == "2 bad records"
    assert error["code"] == "validation-error" and error["param"] == "url" and error["errors"][0]["line"] == 2
    assert error["type"] == "invalid_request_error"
    plain = orjson.loads(_problem_to_openai(503, b"not json", {}).body)["error"]
    assert plain["type"] == "server_error" and "503" in plain["message"]


def test_metrics() -> None:
    assert metrics.resolve("exact_match")(" 42\n", "42") == 1.0
    assert metrics.resolve("exact_match")("4 2", "42") == 0.0
    assert metrics.resolve("contains")("the answer is 42.", "42") == 1.0
    assert metrics.resolve("control_plane.evaluation.metrics:exact_match") is metrics.exact_match
    for unknown in ("nope", "no.such.module:f", "control_plane.evaluation.metrics:nothing_here",
                    "control_plane.evaluation.metrics:ENTRY_POINT_GROUP"):
        with pytest.raises(metrics.UnknownMetric):
            metrics.resolve(unknown)
    assert metrics.score_all(metrics.exact_match, ["a", None, "b"], ["a", "a", "c"]) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="outside"):
        metrics.score_all(lambda p, r: 2.0, ["a"], ["a"])
    assert metrics.label("pkg.mod:my_metric") == "my_metric" and metrics.label("exact_match") == "exact_match"
    assert metrics.label("a b/c") == "a-b-c"
