"""`llmfleet keys`: API keys, created locally against the configured database (the bootstrap path)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session, sessionmaker

from control_plane.cli.errors import CliError, cli_errors
from control_plane.cli.output import JsonFlag, emit, emit_json
from control_plane.settings import Settings
from registry.api_keys import KeyLimits, Scope, issue_key, list_keys
from registry.db import make_engine, session_factory, transaction, upgrade_to_head
from registry.errors import Invalid

app = typer.Typer(help="Create and list API keys directly in the configured database.", no_args_is_help=True)

TEAM_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


def _sessions() -> sessionmaker[Session]:
    engine = make_engine(Settings().database_url)
    upgrade_to_head(engine)
    return session_factory(engine)


@app.command("create")
@cli_errors
def create(
    team: Annotated[str, typer.Option("--team", help="team that owns the key")],
    scope: Annotated[
        list[Scope], typer.Option("--scope", help="read, deploy, admin, or agent (with --cluster); repeat for several")
    ],
    cluster: Annotated[
        str | None, typer.Option("--cluster", help="the cluster an agent key speaks for (scope agent only)")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="a label for the key")] = "",
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="requests/min the gateways allow this key")]
    = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="tokens/min the gateways allow this key")]
    = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it once (it is stored only as a hash)."""
    if not re.fullmatch(TEAM_PATTERN, team):
        raise CliError(f"team {team!r} must be lower-case letters, digits and dashes (at most 63)")
    try:
        with transaction(_sessions()) as session:
            issued = issue_key(session, team=team, scopes=scope, name=name, actor="cli:keys-create", cluster=cluster,
                               limits=KeyLimits(rpm, tpm))
            row = issued.row
            info: dict[str, Any] = {"key": issued.plaintext, "key_id": row.key_id, "team": row.team,
                                    "scopes": row.scopes, "cluster": row.cluster,
                                    "requests_per_minute": row.requests_per_minute,
                                    "tokens_per_minute": row.tokens_per_minute}
    except Invalid as error:
        raise CliError(error.detail) from None
    if as_json:
        emit_json(info)
    else:
        bound = f" for cluster {cluster}" if cluster else ""
        print(f"key {info['key_id']} for team {team} with scopes {', '.join(info['scopes'])}{bound}:")
        print(info["key"])
        print("store it now: it is not shown again.")


@app.command("list")
@cli_errors
def list_(as_json: JsonFlag = False) -> None:
    """List keys (never their secrets)."""
    with transaction(_sessions()) as session:
        rows: list[dict[str, Any]] = [
            {"key_id": k.key_id, "team": k.team, "scopes": k.scopes, "cluster": k.cluster, "name": k.name,
             "requests_per_minute": k.requests_per_minute, "tokens_per_minute": k.tokens_per_minute,
             "revoked": k.revoked_at is not None}
            for k in list_keys(session)
        ]
    emit(rows, as_json, "API keys", ["key id", "team", "scopes", "cluster", "name", "req/min", "tok/min", "revoked"],
         [(r["key_id"], r["team"], ",".join(r["scopes"]), r["cluster"], r["name"], r["requests_per_minute"],
           r["tokens_per_minute"], r["revoked"]) for r in rows])
