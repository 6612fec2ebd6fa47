"""Ports for the replicas an agent starts on its host."""

from __future__ import annotations

import socket


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(host: str, preferred: int | None = None) -> int:
    """`preferred` if it is free (a restarted replica keeps its endpoint), else one the OS reports free.

    Racy by nature (another process may take it before the replica binds); a replica that cannot bind
    fails to launch and the agent reports it.
    """
    if preferred is not None and port_is_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
