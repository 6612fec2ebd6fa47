"""Process-group and host helpers for backends that run replicas as local processes (Linux first)."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path


def live_group_members(pgid: int) -> list[int]:
    """PIDs in process group ``pgid`` that are still running (zombies excluded: they hold no resources,
    and in a container whose PID 1 does not reap they would otherwise look alive forever)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: fall back to signal 0, which counts zombies too
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # Fields after the parenthesised command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: Path, max_lines: int = 20, max_bytes: int = 8192) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-max_lines:])


def kill_group(pgid: int) -> None:
    """SIGKILL every process in the group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
