"""Record what a vLLM-compatible server sends on the wire: raw SSE lines, JSON bodies, /metrics types.

Shared by tests/fixtures/vllm_reference/capture.py (writes the reference JSON from real vLLM) and by the
tests that compare a live server (real or simulated) with that reference. Raw httpx on purpose: the openai
client would parse the stream and hide exactly the framing details the simulator must reproduce.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

# Deterministic, fixed-length generations: greedy, seeded, and EOS ignored so token counts never vary.
SAMPLING: dict[str, Any] = {"temperature": 0.0, "seed": 0, "max_tokens": 8, "ignore_eos": True}
CHAT_MESSAGES = [{"role": "user", "content": "Say hello to the fleet."}]
PROMPT = "The quick brown fox"

REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "completion": ("/v1/completions", {"prompt": PROMPT, **SAMPLING}),
    "chat": ("/v1/chat/completions", {"messages": CHAT_MESSAGES, **SAMPLING}),
    "completion_stream": (
        "/v1/completions",
        {"prompt": PROMPT, "stream": True, "stream_options": {"include_usage": True}, **SAMPLING},
    ),
    "chat_stream": (
        "/v1/chat/completions",
        {"messages": CHAT_MESSAGES, "stream": True, "stream_options": {"include_usage": True}, **SAMPLING},
    ),
}

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s")
_LABEL_KEY = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')


def sse_lines(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a streaming request; return status, content type and every line exactly as received."""
    with client.stream("POST", path, json=body) as response:
        lines = list(response.iter_lines())
        return {
            "status": response.status_code,
            "content_type": response.headers.get("content-type", ""),
            "lines": lines,
        }


def sse_events(lines: list[str]) -> list[str]:
    """The ``data:`` payloads of an SSE stream, in order (``[DONE]`` included)."""
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


def metric_type_lines(metrics_text: str, prefix: str = "vllm:") -> list[str]:
    """The ``# TYPE`` lines of the metric families whose names start with ``prefix``."""
    return [line for line in metrics_text.splitlines() if line.startswith(f"# TYPE {prefix}")]


def metric_label_keys(metrics_text: str, prefix: str = "vllm:") -> dict[str, list[str]]:
    """For each sample name with ``prefix``, the sorted label keys it carries (values vary run to run)."""
    keys: dict[str, set[str]] = {}
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if not match or not match["name"].startswith(prefix):
            continue
        keys.setdefault(match["name"], set()).update(_LABEL_KEY.findall(match["labels"] or ""))
    return {name: sorted(found) for name, found in sorted(keys.items())}


def capture(base_url: str, api_key: str | None, model: str) -> dict[str, Any]:
    """Run the reference requests against a server and return everything worth comparing."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    out: dict[str, Any] = {"served_model_name": model, "requests": {}, "errors": {}}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0, trust_env=False) as client:
        for name, (path, body) in REQUESTS.items():
            request = {"model": model, **body}
            if body.get("stream"):
                result = sse_lines(client, path, request)
            else:
                response = client.post(path, json=request)
                result = {
                    "status": response.status_code,
                    "content_type": response.headers.get("content-type", ""),
                    "body": response.json(),
                }
            out["requests"][name] = {"path": path, "request": request, **result}
        models = client.get("/v1/models")
        out["requests"]["models"] = {
            "path": "/v1/models",
            "status": models.status_code,
            "body": models.json(),
        }
        unknown = client.post(
            "/v1/completions", json={"model": "no-such-model", "prompt": "x", "max_tokens": 1}
        )
        out["errors"]["unknown_model"] = {"status": unknown.status_code, "body": _json_or_text(unknown)}
        health = client.get("/health")
        out["health"] = {"status": health.status_code, "body": health.text}
        metrics = client.get("/metrics").text
    if api_key:
        unauthorized = httpx.post(
            f"{base_url}/v1/completions", json={"model": model, "prompt": "x"}, timeout=30.0, trust_env=False
        )
        out["errors"]["unauthorized"] = {
            "status": unauthorized.status_code,
            "body": _json_or_text(unauthorized),
        }
    out["metrics"] = {"type_lines": metric_type_lines(metrics), "label_keys": metric_label_keys(metrics)}
    return out


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except json.JSONDecodeError:
        return response.text
