"""A real fleet for gateway tests: the control plane under uvicorn (SQLite), simulated replicas as their own
processes (so a test can kill one), replicas reported ready through the agent API, and gateways either in
a thread (same process) or as `python -m agents.gateway` processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from agents.gateway.build import build_gateway
from agents.gateway.config import GatewayConfig
from agents.gateway.limits import LimitConfig
from agents.gateway.serve import serve
from control_plane.app import create_app
from control_plane.settings import Settings
from registry.api_keys import Scope, issue_key
from registry.base import utcnow
from registry.clusters import Cluster
from registry.db import make_engine, session_factory, transaction
from registry.deployments import Deployment
from registry.model_versions import ModelVersion
from registry.replicas import DesiredState, Replica
from tests.support.fleet import deployment_body, ok, populate, version_body
from tests.support.live_server import live_server
from tests.support.ports import free_port

L4 = "g6.xlarge/on-demand"
ROOT = Path(__file__).resolve().parents[3]


def wait_until(condition: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (httpx.HTTPError, KeyError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@dataclass(slots=True)
class SimProcess:
    process: subprocess.Popen[str]
    url: str

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def start_sim(served_name: str, speedup: float = 5.0, extra: list[str] | None = None) -> SimProcess:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.sim", "--model", "Llama-3.1-8B", "--accelerator", "H100", "--port", str(port),
         "--speedup", str(speedup), "--served-model-name", served_name, "--default-max-tokens", "16",
         *(extra or [])],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "the simulator did not start"
    return SimProcess(process, json.loads(line)["replicas"][0]["url"].rstrip("/"))


class GatewayThread:
    """A gateway on its production server (`agents.gateway.serve`) in a daemon thread with its own loop."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.parts = build_gateway(config)
        self.url = f"http://{config.host}:{config.port}"
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(serve(self.parts, stop=self._stop, started=self._started))
        self._loop.close()

    def start(self) -> GatewayThread:
        self._thread.start()
        wait_until(self._started.is_set, "the gateway to start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@dataclass(slots=True)
class Fleet:
    api_url: str
    engine: Engine
    admin: dict[str, str]
    team: dict[str, str]
    team_key: str
    agent_keys: dict[str, str] = field(default_factory=dict)
    sims: list[SimProcess] = field(default_factory=list)
    gateways: list[GatewayThread] = field(default_factory=list)
    stack: ExitStack = field(default_factory=ExitStack)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30)

    def agent_key(self, cluster: str) -> str:
        if cluster not in self.agent_keys:
            with transaction(session_factory(self.engine)) as session:
                self.agent_keys[cluster] = issue_key(session, team="platform", scopes=[Scope.AGENT],
                                                     name=f"agent {cluster}", actor="test", cluster=cluster).plaintext
        return self.agent_keys[cluster]

    def key(self, team: str = "search", *scopes: Scope) -> str:
        """A new client key, returned once every in-process gateway's table knows it."""
        with transaction(session_factory(self.engine)) as session:
            issued = issue_key(session, team=team, scopes=list(scopes) or [Scope.READ], name="client", actor="test")
            plaintext, digest = issued.plaintext, issued.row.key_hash
        for gateway in self.gateways:
            wait_until(lambda g=gateway: digest in (g.parts.gateway.source.snapshot.keys or {}), "the key to reach "
                       "the gateway")
        return plaintext

    def serve(self, cluster: str, count: int, deployment: str = "chat", speedup: float = 5.0) -> list[SimProcess]:
        """Place `count` replicas in `cluster`, start a simulator for each and report them ready."""
        with self.http() as client:
            current = ok(client.get(f"/v1/deployments/{deployment}/placement", headers=self.team))
            items = [i for i in current["replicas"] if i["cluster"] != cluster]
            items.append({"cluster": cluster, "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": count})
            ok(client.put(f"/v1/deployments/{deployment}/placement", json={"replicas": items}, headers=self.team))
            agent = {"Authorization": f"Bearer {self.agent_key(cluster)}"}
            desired = ok(client.get(f"/v1/agent/clusters/{cluster}/desired", headers=agent))["replicas"]
            names = [r["name"] for r in desired if r["deployment"] == deployment and r["desired_state"] == "running"]
            started = [start_sim(deployment, speedup) for _ in names]
            self.sims += started
            reports = [{"name": n, "state": "ready", "endpoint": s.url} for n, s in zip(names, started, strict=True)]
            ok(client.post(f"/v1/agent/clusters/{cluster}/heartbeat",
                           json={"agent_version": "t", "applied_generation": None, "replicas": reports},
                           headers=agent))
        return started

    def add_version_replica(self, version: str, cluster: str, deployment: str = "chat", speedup: float = 5.0
                            ) -> SimProcess:
        """A ready replica of another version (as a canary rollout would create), written straight to the
        registry: placement only creates replicas of the deployment's own version."""
        sim = start_sim(deployment, speedup)
        self.sims.append(sim)
        now = utcnow()
        with transaction(session_factory(self.engine)) as session:
            dep = session.scalars(select(Deployment).where(Deployment.name == deployment)).one()
            ver = session.scalars(select(ModelVersion).where(ModelVersion.model_id == dep.model_id,
                                                             ModelVersion.version == version)).one()
            cl = session.scalars(select(Cluster).where(Cluster.name == cluster)).one()
            pool = next(p for p in cl.pools if p.name == L4)
            session.add(Replica(name=f"{deployment}-{cluster}-{version}-{len(self.sims)}", deployment_id=dep.id,
                                version_id=ver.id, variant="fp8", cluster_id=cl.id, pool_id=pool.id,
                                tensor_parallel=1, desired_state=DesiredState.RUNNING, restarts=0, created_at=now,
                                started_at=now, ready_at=now, endpoint=sim.url))
        return sim

    def register_version(self, version: str) -> None:
        with self.http() as client:
            ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body(version), headers=self.team), 201)

    def gateway(self, region: str = "us-east-1", *, limits: LimitConfig | None = None, redis_url: str | None = None,
                **overrides: Any) -> GatewayThread:
        config = GatewayConfig(region=region, api_url=self.api_url, api_key=self.agent_key("aws-use1"),
                               port=free_port(), poll_interval_s=0.2, limits=limits or LimitConfig(),
                               redis_url=redis_url, **overrides)
        gateway = GatewayThread(config).start()
        self.stack.callback(gateway.stop)
        self.gateways.append(gateway)
        wait_until(lambda: gateway.parts.gateway.source.snapshot is not None, "the first routing table")
        return gateway

    def gateway_process(self, region: str = "us-east-1", *args: str) -> str:
        port = free_port()
        env = {**os.environ, "LLMFLEET_GATEWAY_KEY": self.agent_key("aws-use1")}
        process = subprocess.Popen(
            [sys.executable, "-m", "agents.gateway", "--region", region, "--api-url", self.api_url,
             "--port", str(port), "--poll-interval", "0.2", *args],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )

        def stop() -> None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()

        self.stack.callback(stop)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, "the gateway process")
        return url

    def wait_for_replicas(self, gateway: GatewayThread, count: int, deployment: str = "chat") -> None:
        def seen() -> bool:
            snapshot = gateway.parts.gateway.source.snapshot
            return snapshot is not None and deployment in snapshot.routes and \
                len(snapshot.routes[deployment].replicas) == count

        wait_until(seen, f"{count} replicas in the gateway's table")

    def close(self) -> None:
        self.stack.close()
        for sim in self.sims:
            if sim.process.poll() is None:
                sim.process.terminate()
        for sim in self.sims:
            try:
                sim.process.wait(10)
            except subprocess.TimeoutExpired:
                sim.process.kill()


@contextmanager
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    url = f"sqlite:///{tmp_path}/registry.db"
    engine = make_engine(url)
    app = create_app(Settings(database_url=url, state_dir=tmp_path / "state", mutation_rate_limit_per_minute=0),
                     engine=engine)
    with live_server(app) as api_url:
        with transaction(session_factory(engine)) as session:
            admin = issue_key(session, team="platform", scopes=[Scope.ADMIN], name="admin", actor="test").plaintext
            team_key = issue_key(session, team="search", scopes=[Scope.DEPLOY], name="team", actor="test").plaintext
        admin_h = {"Authorization": f"Bearer {admin}"}
        team_h = {"Authorization": f"Bearer {team_key}"}
        with httpx.Client(base_url=api_url, timeout=30) as client:
            populate(client, admin_h, team_h)  # type: ignore[arg-type]
            ok(client.post("/v1/deployments", json=deployment_body(), headers=team_h), 201)
        result = Fleet(api_url=api_url, engine=engine, admin=admin_h, team=team_h, team_key=team_key)
        try:
            yield result
        finally:
            result.close()
    engine.dispose()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
