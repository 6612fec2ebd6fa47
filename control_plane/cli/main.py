"""The `llmfleet` command: one entry point for the API, the local stack and the registry."""

from __future__ import annotations

import typer

from control_plane.cli import (
    agent_cmd,
    audit,
    catalog_cmd,
    clusters,
    dashboard_cmd,
    deployments,
    eval_cmd,
    gateway_cmd,
    keys,
    models,
    plan_cmd,
    replay_cmd,
    sim_cmd,
    simulate_cmd,
    skypilot_cmd,
    stack,
    worker_cmd,
)

app = typer.Typer(
    name="llmfleet",
    help="llmfleet: serve LLMs on fleets of GPUs across clusters, regions and clouds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(stack.serve)
app.command("up")(stack.up)
app.command("down")(stack.down)
app.add_typer(keys.app, name="keys")
app.add_typer(models.app, name="models")
app.add_typer(clusters.app, name="clusters")
app.add_typer(deployments.app, name="deployments")
app.command("audit")(audit.audit)
app.command("agent")(agent_cmd.agent)
app.command("plan")(plan_cmd.plan)
app.command("sim")(sim_cmd.sim)
app.command("simulate")(simulate_cmd.simulate)
app.command("replay")(replay_cmd.replay_trace)
app.add_typer(skypilot_cmd.app, name="skypilot")
app.add_typer(catalog_cmd.app, name="catalog")
app.command("worker")(worker_cmd.worker)
app.command("gateway")(gateway_cmd.gateway)
app.command("eval")(eval_cmd.eval_)
app.command("dashboard")(dashboard_cmd.dashboard)

if __name__ == "__main__":
    app()
