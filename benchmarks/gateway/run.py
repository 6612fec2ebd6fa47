"""Gateway overhead in one run: direct to a simulated replica (zero-latency: --speedup 1e6), through
llmfleet's gateway, and through `vllm-router` (PyPI) when it is installed in a throwaway venv.

    python -m benchmarks.gateway.run [--seconds 5] [--concurrency 64 256] [--vllm-router PATH]
                                     [--speedup 1] [--pin]

Closed loop: C concurrent streams each send streaming completions back to back over keep-alive
connections. Added latency = the proxy's percentile minus the direct percentile at the same concurrency;
requests/s at the highest concurrency is the throughput. The routing table the gateway polls is a static
JSON served by this process (one replica, one key), so no database runs during the measurement.

In the zero-latency mode on a 2-core machine the closed loop saturates the replica, and the load generator,
the replica and the proxy share the CPUs: any CPU the proxy takes is taken from the replica and shows up as
latency of every stream. `--pin` separates them (load generator and replica on one CPU, the proxy on the
other) as separate machines would; `--speedup 1` streams at a real replica's pace, where C streams are
C requests in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks.gateway.client import Run, closed_loop, percentile, request_bytes

ROOT = Path(__file__).resolve().parents[2]
KEY = "lf_bench000_" + "s" * 43
AGENT_KEY = "lf_agent000_" + "a" * 43
BODY = json.dumps({"model": "chat", "prompt": "hello", "max_tokens": 8, "stream": True}).encode()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def routing_table(replica_url: str) -> dict[str, Any]:
    return {
        "generation": 1,
        "deployments": [{
            "name": "chat", "team": "bench", "model": "llama", "version": "v1", "aliases": {}, "generation": 1,
            "version_weights": {"v1": 100.0}, "experiment": None, "shares": {"us-east-1": {"local": 1.0}},
            "shares_published": True,
            "replicas": [{"name": "chat-local-1", "endpoint": replica_url, "cluster": "local", "region": "us-east-1",
                          "version": "v1", "variant": "bf16", "capacity_weight": 1.0}],
        }],
        "keys": [{"key_id": "bench000", "key_hash": hashlib.sha256(KEY.encode()).hexdigest(), "team": "bench",
                  "scopes": ["read"]}],
    }


@contextmanager
def static_api(table: dict[str, Any]) -> Iterator[str]:
    body = json.dumps(table).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            if self.headers.get("If-None-Match") == '"1"':
                self.send_response(304)
                self.send_header("ETag", '"1"')
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", '"1"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def spawn(stack: ExitStack, args: list[str], env: dict[str, str] | None = None,
          cpus: set[int] | None = None) -> subprocess.Popen[bytes]:
    """Start a process for the run (stopped with it), on `cpus` only when given (taskset pins it before it
    starts any thread; a preexec_fn is unsafe here, the routing-table server already runs a thread)."""
    if cpus:
        args = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *args]
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    return process


@dataclass(slots=True)
class Result:
    target: str
    concurrency: int
    run: Run

    def stat(self, what: str, q: float) -> float:
        values = [getattr(s, what) for s in self.run.samples if s.ok]
        return percentile(values, q) * 1000

    @property
    def rps(self) -> float:
        return sum(1 for s in self.run.samples if s.ok) / self.run.seconds

    @property
    def errors(self) -> int:
        return sum(1 for s in self.run.samples if not s.ok)


def measure(port: int, key: str | None, concurrency: int, warmup: float, seconds: float) -> Run:
    payload = request_bytes("127.0.0.1", port, "/v1/completions", BODY, key)
    try:
        import uvloop

        return uvloop.run(closed_loop("127.0.0.1", port, payload, concurrency, warmup, seconds))
    except ImportError:
        return asyncio.run(closed_loop("127.0.0.1", port, payload, concurrency, warmup, seconds))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    p.add_argument("--vllm-router", default=shutil.which("vllm-router") or "/tmp/vr-venv/bin/vllm-router")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--speedup", type=float, default=1_000_000.0,
                   help="the simulated replica's time compression: the default is its zero-latency mode (the "
                        "most requests/s); 1 streams tokens at the performance model's real pace")
    p.add_argument("--pin", action="store_true",
                   help="load generator and replica on CPU 0, each proxy on CPU 1: the proxy's CPU is not taken "
                        "from the replica, as when they run on separate machines")
    args = p.parse_args(argv)
    replica_cpus = proxy_cpus = None
    if args.pin:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            p.error("--pin needs at least two CPUs")
        replica_cpus, proxy_cpus = {available[0]}, {available[1]}
        os.sched_setaffinity(0, replica_cpus)  # this process is the load generator

    results: list[Result] = []
    with ExitStack() as stack:
        sim_port, gw_port, vr_port = free_port(), free_port(), free_port()
        spawn(stack, [sys.executable, "-m", "agents.sim", "--model", "Llama-3.1-8B", "--accelerator", "H100",
                      "--port", str(sim_port), "--speedup", str(args.speedup), "--served-model-name", "chat",
                      "--max-num-seqs", "1024"], cpus=replica_cpus)
        wait_http(f"http://127.0.0.1:{sim_port}/health")
        api_url = stack.enter_context(static_api(routing_table(f"http://127.0.0.1:{sim_port}")))
        spawn(stack, [sys.executable, "-m", "agents.gateway", "--region", "us-east-1", "--api-url", api_url,
                      "--port", str(gw_port)], env={"LLMFLEET_GATEWAY_KEY": AGENT_KEY}, cpus=proxy_cpus)
        wait_http(f"http://127.0.0.1:{gw_port}/healthz")
        targets: list[tuple[str, int, str | None]] = [("direct", sim_port, None), ("llmfleet-gateway", gw_port, KEY)]
        if Path(args.vllm_router).exists():
            spawn(stack, [args.vllm_router, "--worker-urls", f"http://127.0.0.1:{sim_port}", "--host", "127.0.0.1",
                          "--port", str(vr_port), "--policy", "round_robin"], cpus=proxy_cpus)
            try:
                wait_http(f"http://127.0.0.1:{vr_port}/health", timeout=30)
                targets.append(("vllm-router", vr_port, None))
            except RuntimeError:
                print("vllm-router did not start; skipped", file=sys.stderr)
        else:
            print(f"vllm-router not found at {args.vllm_router}; skipped", file=sys.stderr)
        for concurrency in args.concurrency:
            for name, port, key in targets:
                results.append(Result(name, concurrency, measure(port, key, concurrency, args.warmup, args.seconds)))
                time.sleep(0.5)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps([row(r, results) for r in results], indent=2))
    return 0


def row(r: Result, results: list[Result]) -> dict[str, Any]:
    direct = next(d for d in results if d.target == "direct" and d.concurrency == r.concurrency)
    return {
        "target": r.target, "concurrency": r.concurrency, "requests_per_s": round(r.rps, 1), "errors": r.errors,
        "p50_ms": round(r.stat("e2e", 0.5), 2), "p99_ms": round(r.stat("e2e", 0.99), 2),
        "added_p50_ms": round(r.stat("e2e", 0.5) - direct.stat("e2e", 0.5), 2),
        "added_p99_ms": round(r.stat("e2e", 0.99) - direct.stat("e2e", 0.99), 2),
        "ttft_p50_ms": round(r.stat("ttft", 0.5), 2),
    }


def print_table(results: list[Result]) -> None:
    print("| target | streams | req/s | errors | p50 ms | p99 ms | added p50 ms | added p99 ms | TTFT p50 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        d = row(r, results)
        print(f"| {d['target']} | {d['concurrency']} | {d['requests_per_s']} | {d['errors']} | {d['p50_ms']} | "
              f"{d['p99_ms']} | {d['added_p50_ms']} | {d['added_p99_ms']} | {d['ttft_p50_ms']} |")


if __name__ == "__main__":
    sys.exit(main())
