"""Model catalog, spec resolution with the performance model, fault specs and the `llmfleet sim` command."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from agents.sim.catalog import CatalogError, resolve_arch, resolve_variant
from agents.sim.faults import CrashScope, FaultError, FaultMode, FaultSpec
from agents.sim.spec import ReplicaSpec, SpecError, perf_model_resolver
from control_plane.cli.sim_cmd import sim, sim_argv


def test_known_families_match_by_prefix_and_org() -> None:
    arch = resolve_arch("meta-llama/Llama-3.1-8B-Instruct")
    assert (arch.layers, arch.hidden, arch.kv_heads) == (32, 4096, 8)
    assert resolve_arch("llama-3.3-70b").layers == 80


def test_unknown_models_are_sized_by_params() -> None:
    small, big = resolve_arch("custom", 7.0), resolve_arch("custom", 70.0)
    assert small.layers < big.layers and small.hidden < big.hidden
    assert resolve_arch("acme-13b").params_b == 13.0
    assert resolve_arch("Llama-3.1-8B", 70.0).params_b == 70.0  # a size far from the family's wins
    with pytest.raises(CatalogError, match="--params-b"):
        resolve_arch("mystery")
    with pytest.raises(CatalogError):
        resolve_variant("int3")


def test_resolver_picks_smallest_tp_that_fits() -> None:
    resolve = perf_model_resolver()
    assert resolve(ReplicaSpec("Llama-3.1-8B", "H100")).tp == 1
    assert resolve(ReplicaSpec("Llama-3.1-70B", "H100")).tp >= 2
    with pytest.raises(SpecError, match="unknown accelerator"):
        resolve(ReplicaSpec("Llama-3.1-8B", "H1000"))
    with pytest.raises(SpecError, match="does not fit"):
        resolve(ReplicaSpec("Llama-3.1-405B", "A10", tp=1))


def test_spec_json_round_trip() -> None:
    spec = ReplicaSpec("m", "H100", params_b=3, port=9000, faults=(FaultSpec(FaultMode.SLOW, slowdown=2.0),))
    assert ReplicaSpec.from_json(spec.to_json()) == spec
    with pytest.raises(SpecError, match="unknown replica spec fields"):
        ReplicaSpec.from_json({"model": "m", "accelerator": "H100", "colour": "red"})


def test_fault_spec_parsing() -> None:
    spec = FaultSpec.from_json({"mode": "crash", "scope": "process", "after_s": 2})
    assert spec.mode is FaultMode.CRASH and spec.scope is CrashScope.PROCESS and spec.after_s == 2
    for bad in ({}, {"mode": "explode"}, {"mode": "error", "probability": 2}, {"mode": "error", "status": 404},
                {"mode": "slow", "bogus": 1}):
        with pytest.raises(FaultError):
            FaultSpec.from_json(bad)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(sim)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the `sim` subcommand name
    return app


def test_cli_rejects_unknown_accelerator_with_exit_2() -> None:
    result = CliRunner().invoke(_app(), ["sim", "--model", "Llama-3.1-8B", "--accelerator", "H1000"])
    assert result.exit_code == 2
    assert "unknown accelerator 'H1000'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_builds_the_simulator_command_line() -> None:
    argv = sim_argv("m", "H100", 7.0, 8001, 10.0, "fp8", None, "127.0.0.1", None, None, None, 0.0)
    assert argv[1:3] == ["-m", "agents.sim"]
    assert argv[argv.index("--params-b") + 1] == "7.0" and argv[argv.index("--speedup") + 1] == "10.0"
    assert "--tp" not in argv and "--fault" not in argv
