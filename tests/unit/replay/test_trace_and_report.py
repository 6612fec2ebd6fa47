"""The trace reader (columns, order, speed, window, line-numbered errors) and the replay report, with the
HTTP side served by httpx.MockTransport (an OpenAI-style SSE stream)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from control_plane.replay.runner import ReplayOptions, percentiles, replay
from control_plane.replay.trace import Arrival, TraceError, read_arrivals


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_azure_columns_are_read_in_time_order_relative_to_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                           "2023-11-16 18:15:50.0,396,109\n2023-11-16 18:15:46.0,374,44\n"
                           "2023-11-16 18:15:56.0,10,1\n")
    assert read_arrivals(path) == [Arrival(0.0, 374, 44), Arrival(4.0, 396, 109), Arrival(10.0, 10, 1)]
    assert [a.at_s for a in read_arrivals(path, speed=2.0)] == [0.0, 2.0, 5.0]
    assert read_arrivals(path, skip_s=1.0) == [Arrival(3.0, 396, 109), Arrival(9.0, 10, 1)]
    assert len(read_arrivals(path, duration_s=5.0)) == 2 and len(read_arrivals(path, limit=1)) == 1


def test_generic_columns_in_seconds(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,prompt_tokens,output_tokens\n0.5,8,4\n1.5,16,2\n")
    assert read_arrivals(path) == [Arrival(0.0, 8, 4), Arrival(1.0, 16, 2)]


@pytest.mark.parametrize(("text", "message"), [
    ("when,a,b\n1,2,3\n", "no column named any of TIMESTAMP"),
    ("timestamp,prompt_tokens,output_tokens\n1,2,3\nsoon,2,3\n1,x,3\n", "line 3: expected a timestamp"),
    ("timestamp,prompt_tokens,output_tokens\n1,-2,3\n", "line 2: token counts must not be negative"),
    ("timestamp,prompt_tokens,output_tokens\n", "no requests in the trace"),
])
def test_bad_traces_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        read_arrivals(write(tmp_path, text))


def test_every_bad_line_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,prompt_tokens,output_tokens\nx,1,1\n1,1,1\ny,1,1\n")
    with pytest.raises(TraceError) as error:
        read_arrivals(path)
    assert "line 2" in str(error.value) and "line 4" in str(error.value)


def test_percentiles_are_nearest_rank_in_ms() -> None:
    assert percentiles([0.001 * i for i in range(1, 101)]) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def sse_server(seen: list[dict[str, object]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({**body, "auth": request.headers.get("authorization"),
                     "region": request.headers.get("x-llmfleet-client-region")})
        if body["model"] != "demo":
            return httpx.Response(404, json={"error": {"message": "no such model"}})
        n = int(body["max_tokens"])
        chunks = [{"choices": [{"index": 0, "text": " tok"}]} for _ in range(n)]
        chunks.append({"choices": [], "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": n}})
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handle)


def test_replay_sends_exact_lengths_and_counts_what_came_back() -> None:
    seen: list[dict[str, object]] = []
    arrivals = [Arrival(0.0, 30, 5), Arrival(0.01, 5000, 900), Arrival(0.02, 1, 1)]
    options = ReplayOptions(base_url="http://gw", model="demo", api_key="lf_x", client_region="eu-central-1",
                            max_prompt_tokens=100, max_output_tokens=50)
    report = asyncio.run(replay(arrivals, options, transport=sse_server(seen)))
    assert report.sent == 3 and report.ok == 3 and report.by_status == {"ok": 3}
    assert sorted(len(s["prompt"]) for s in seen) == [1, 30, 100]  # capped at --max-prompt-tokens
    assert sorted(s["max_tokens"] for s in seen) == [1, 5, 50]
    assert report.prompt_tokens == 131 and report.output_tokens == 56
    assert all(s["auth"] == "Bearer lf_x" and s["region"] == "eu-central-1" and s["stream"] for s in seen)
    assert report.ttft_ms["p50"] is not None and report.tpot_ms["p50"] is not None


def test_errors_are_counted_by_status_not_hidden() -> None:
    options = ReplayOptions(base_url="http://gw", model="other")
    report = asyncio.run(replay([Arrival(0.0, 3, 3)] * 2, options, transport=sse_server([])))
    assert report.ok == 0 and report.by_status == {"404": 2}
    assert report.errors and "no such model" in report.errors[0]
    assert report.ttft_ms == {"p50": None, "p95": None, "p99": None}
