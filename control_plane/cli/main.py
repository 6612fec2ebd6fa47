"""The `llmfleet` command: one entry point for the API, the local stack and the registry."""

from __future__ import annotations

import typer

from control_plane.cli import agent_cmd, audit, clusters, deployments, gateway_cmd, keys, models, stack, worker_cmd

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
app.command("worker")(worker_cmd.worker)
app.command("gateway")(gateway_cmd.gateway)

if __name__ == "__main__":
    app()
