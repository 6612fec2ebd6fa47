"""Starting and stopping the stack's child processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from control_plane.stack.state import StackProcess, is_our_process


def free_port(host: str, preferred: int | None = None) -> int:
    """`preferred` when it is free on `host` (the port people expect to type), else one the OS picks; the
    child binds it moments later."""
    if preferred is not None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, preferred))
            except OSError:
                pass
            else:
                return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    argv: list[str]

    def record(self) -> StackProcess:
        return StackProcess(name=self.name, pid=self.popen.pid, argv=self.argv)


def start_child(name: str, argv: list[str], *, env: Mapping[str, str], log_dir: Path) -> Child:
    """Start a process in its own session (so a terminal Ctrl-C reaches only the supervisor, which then stops
    children in order) with output in `log_dir/<name>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it for its lifetime
    popen = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()  # the child has its own copy of the descriptor
    return Child(name=name, popen=popen, argv=argv)


def stop_pid(pid: int, argv: list[str] | None = None, grace_seconds: float = 10.0) -> None:
    """SIGTERM, wait up to the grace period, then SIGKILL. Does nothing if the pid is no longer ours."""
    if not is_our_process(pid, argv):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if finished == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall back to a signal-0 probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop_together(children: list[Child], grace_seconds: float) -> None:
    """SIGTERM every child at once (agents drain their replicas in parallel), wait up to the grace period,
    then SIGKILL whatever is left. Only processes that are still ours are signalled."""
    ours = [c for c in children if is_our_process(c.popen.pid, c.argv)]
    for child in ours:
        try:
            os.kill(child.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(_alive(c.popen.pid) for c in ours):
        time.sleep(0.05)
    for child in ours:
        if _alive(child.popen.pid):
            try:
                os.kill(child.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            child.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
