"""The official `openai` client against the gateway (which forwards files and batches to the control plane):
upload, create, poll to completed, download output and errors, counts; list; cancel; bad input named by line."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import openai
import pytest

from tests.integration.batches.conftest import BatchWorld, wait_until
from tests.integration.batches.jsonl import chat_line, jsonl, parse_output


def wait_status(client: openai.OpenAI, batch_id: str, statuses: set[str], timeout: float = 90.0) -> openai.types.Batch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} stayed {batch.status} (wanted {statuses})")


def test_full_lifecycle_through_the_gateway(world: BatchWorld) -> None:
    client = world.client()
    lines = [chat_line(f"req-{i}", max_tokens=3) for i in range(20)]
    lines.append(chat_line("too-big", max_tokens=10**9))  # the replica refuses it: an error line, not a retry
    lines.append({"custom_id": "pinned", "method": "POST", "url": "/v1/chat/completions",
                  "body": {"model": "chat@v1", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}})
    uploaded = client.files.create(file=("requests.jsonl", jsonl(lines)), purpose="batch")
    assert uploaded.object == "file" and uploaded.purpose == "batch" and uploaded.bytes == len(jsonl(lines))
    assert client.files.retrieve(uploaded.id).filename == "requests.jsonl"
    assert uploaded.id in [f.id for f in client.files.list()]

    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "nightly"})
    assert batch.object == "batch" and batch.status in ("validating", "in_progress")
    assert batch.metadata == {"job": "nightly"} and batch.request_counts.total == len(lines)

    done = wait_status(client, batch.id, {"completed", "failed"})
    assert done.status == "completed", done.errors
    assert done.request_counts.total == 22 and done.request_counts.completed == 21 and done.request_counts.failed == 1
    assert done.in_progress_at and done.finalizing_at and done.completed_at and done.output_file_id
    assert done.usage is not None and done.usage.output_tokens == 20 * 3 + 2

    output = parse_output(client.files.content(done.output_file_id).content)
    assert [o["custom_id"] for o in output] == [f"req-{i}" for i in range(20)] + ["pinned"]
    first = output[0]
    assert first["id"].startswith("batch_req_") and first["error"] is None
    assert first["response"]["status_code"] == 200 and first["response"]["request_id"] == first["id"]
    assert first["response"]["body"]["object"] == "chat.completion"
    assert first["response"]["body"]["usage"]["completion_tokens"] == 3

    assert done.error_file_id is not None
    errors = parse_output(client.files.content(done.error_file_id).content)
    assert [e["custom_id"] for e in errors] == ["too-big"]
    assert errors[0]["response"]["status_code"] == 400 and errors[0]["error"]["code"]

    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)  # a finished batch cannot be cancelled
    assert batch.id in [b.id for b in client.batches.list()]
    # The same objects straight from the control plane (the same client works against either base URL).
    direct = world.client(world.fleet.team_key, base_url=world.fleet.api_url).batches.retrieve(batch.id)
    assert direct.request_counts == done.request_counts

    deleted = client.files.delete(done.output_file_id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(done.output_file_id)


def test_another_team_sees_nothing(world: BatchWorld) -> None:
    mine = world.client()
    uploaded = mine.files.create(file=("a.jsonl", jsonl([chat_line("x")])), purpose="batch")
    other = world.client(world.fleet.key("other-team"))
    with pytest.raises(openai.NotFoundError):
        other.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        other.files.content(uploaded.id)
    # A deployment of another team is no model at all for this team's batch.
    other_file = other.files.create(file=("b.jsonl", jsonl([chat_line("x")])), purpose="batch")
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        other.batches.create(input_file_id=other_file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert refused.value.body["errors"][0]["line"] == 1


def test_bad_lines_are_named_by_line_number(world: BatchWorld) -> None:
    client = world.client()
    content = b"\n".join([
        jsonl([chat_line("ok-1")]).strip(),
        b'{"custom_id": "no-body", "method": "POST", "url": "/v1/chat/completions"}',
        b"not json",
        jsonl([chat_line("ok-1")]).strip(),  # a duplicate custom_id
        b'{"custom_id": "c", "method": "POST", "url": "/v1/completions", "body": {"model": "chat"}}',
    ]) + b"\n"
    with pytest.raises(openai.UnprocessableEntityError) as rejected:
        client.files.create(file=("bad.jsonl", content), purpose="batch")
    error = rejected.value.body
    assert [e["line"] for e in error["errors"]] == [2, 3, 4, 5]
    assert "line 2" in error["message"] and "line 3" in error["message"]
    assert rejected.value.code == "validation-error"

    # Valid records, but aimed at another endpoint and at an unknown deployment: refused at creation.
    mixed = jsonl([chat_line("a"), chat_line("b", model="nope"),
                   {"custom_id": "c", "method": "POST", "url": "/v1/completions",
                    "body": {"model": "chat", "prompt": "x"}}])
    uploaded = client.files.create(file=("mixed.jsonl", mixed), purpose="batch")
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert [(e["line"], e["field"]) for e in refused.value.body["errors"]] == [(2, "body.model"), (3, "url")]

    # The control plane itself answers problem details with the same line list.
    problem = httpx.post(f"{world.fleet.api_url}/v1/files", headers=world.fleet.team,
                         files={"file": ("bad.jsonl", content)}, data={"purpose": "batch"}, timeout=30)
    assert problem.status_code == 422 and problem.headers["content-type"] == "application/problem+json"
    assert [e["line"] for e in problem.json()["errors"]] == [2, 3, 4, 5]


def test_cancel_keeps_what_was_answered(world: BatchWorld) -> None:
    client = world.client()
    lines = [chat_line(f"slow-{i}", max_tokens=200) for i in range(60)]
    uploaded = client.files.create(file=("slow.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    wait_until(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 2, "some answers", 60)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at
    done = wait_status(client, batch.id, {"cancelled"})
    answered = done.request_counts.completed + done.request_counts.failed
    assert 2 <= answered < 60 and done.cancelled_at
    output = parse_output(client.files.content(done.output_file_id).content)
    assert len(output) == answered and len({o["custom_id"] for o in output}) == answered
    assert client.batches.cancel(batch.id).status == "cancelled"  # repeating a cancel changes nothing
    assert Counter(o["response"]["status_code"] for o in output)[200] == done.request_counts.completed
