"""The local stack's admin key: kept in the state directory (dev only) so repeated `up`s reuse it."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

from registry import api_keys
from registry.api_keys import Scope
from registry.db import session_factory, transaction

LOCAL_TEAM = "local"


def ensure_local_key(engine: Engine, state_dir: Path) -> str:
    path = state_dir / "local-admin-key"
    sessions = session_factory(engine)
    if path.exists():
        plaintext = path.read_text().strip()
        with transaction(sessions) as session:
            if api_keys.authenticate(session, plaintext) is not None:
                return plaintext
    with transaction(sessions) as session:
        plaintext = api_keys.issue_key(
            session, team=LOCAL_TEAM, scopes=[Scope.ADMIN], name="llmfleet up", actor="system:llmfleet-up"
        ).plaintext
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(plaintext + "\n")
    os.chmod(path, 0o600)
    return plaintext
