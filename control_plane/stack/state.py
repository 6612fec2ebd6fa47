"""The state file of a running local stack: which processes it started, so `down` stops exactly those."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(slots=True)
class StackProcess:
    name: str
    pid: int
    argv: list[str]


@dataclass(slots=True)
class StackState:
    supervisor_pid: int
    processes: list[StackProcess] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)  # atomic: `down` never reads half a file

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(
            supervisor_pid=data["supervisor_pid"],
            processes=[StackProcess(**p) for p in data.get("processes", [])],
            urls=data.get("urls", {}),
        )


def state_path(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def is_our_process(pid: int, argv: list[str] | None = None) -> bool:
    """True if `pid` is alive and still the process we started (guards against PID reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    if _is_zombie(pid):
        return False  # exited, waiting for its parent to reap it: it runs nothing any more
    if argv is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the live pid
    return [part.decode(errors="replace") for part in cmdline if part] == argv


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False  # no /proc (macOS): trust the signal probe
