"""Agent keys of the local stack: one per cluster, kept in the state directory (dev only) and reused."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

from control_plane.stack.local_key import LOCAL_TEAM
from registry import api_keys
from registry.api_keys import Scope
from registry.db import session_factory, transaction


def ensure_agent_keys(engine: Engine, state_dir: Path, clusters: list[str]) -> dict[str, str]:
    """{cluster: plaintext agent key}; a stored key is reused while it is valid and bound to its cluster."""
    sessions = session_factory(engine)
    directory = state_dir / "agent-keys"
    directory.mkdir(parents=True, exist_ok=True)
    keys: dict[str, str] = {}
    for cluster in clusters:
        path = directory / f"{cluster}.key"
        if path.exists():
            plaintext = path.read_text().strip()
            with transaction(sessions) as session:
                row = api_keys.authenticate(session, plaintext)
                if row is not None and row.cluster == cluster and Scope.AGENT.value in row.scopes:
                    keys[cluster] = plaintext
                    continue
        with transaction(sessions) as session:
            plaintext = api_keys.issue_key(
                session, team=LOCAL_TEAM, scopes=[Scope.AGENT], name=f"llmfleet up: agent {cluster}",
                actor="system:llmfleet-up", cluster=cluster,
            ).plaintext
        path.write_text(plaintext + "\n")
        os.chmod(path, 0o600)
        keys[cluster] = plaintext
    return keys
