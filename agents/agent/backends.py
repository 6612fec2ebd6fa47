"""Choosing the replica backend and turning a desired replica into that backend's ReplicaSpec."""

from __future__ import annotations

from agents.agent.config import AgentConfig
from agents.agent.desired import DesiredReplica
from agents.backends.base import ReplicaBackend, ReplicaSpec


def make_backend(config: AgentConfig) -> ReplicaBackend:
    # Imported here: each backend pulls in its own machinery (the simulator, or process management).
    if config.backend == "sim":
        from agents.agent.sim_backend import SimBackend

        return SimBackend(speedup=config.sim_speedup)
    from agents.backends.vllm_process import VllmProcessBackend, find_vllm_python

    python = config.vllm_python or find_vllm_python()
    if python is None:
        raise ValueError("the vllm backend needs the vLLM venv: run .ci/setup-vllm.sh or pass --vllm-python")
    return VllmProcessBackend(python, log_dir=config.log_dir / config.cluster)


def _model_path(artifact_uri: str) -> str:
    """What vLLM loads for an artifact: a hub id for hf://, a path for file://, anything else as is."""
    for scheme in ("hf://", "file://"):
        if artifact_uri.startswith(scheme):
            return artifact_uri.removeprefix(scheme)
    return artifact_uri


def replica_spec(config: AgentConfig, desired: DesiredReplica, port: int) -> ReplicaSpec:
    model, quantization, dtype, max_model_len = desired.model, None, "auto", None
    options: tuple[tuple[str, str], ...] = ()
    if config.backend == "sim":
        # The simulator resolves the architecture by model name, sized by params_b.
        options = (
            ("params_b", repr(desired.architecture.params_b)),
            ("variant", desired.variant.name),
            ("speedup", repr(config.sim_speedup)),
        )
    else:
        from agents.backends.vllm_process import engine_flags_for_variant

        model, max_model_len = config.vllm_model or _model_path(desired.artifact_uri), config.vllm_max_model_len
        if config.vllm_model is None:  # a local stand-in model is served as stored
            try:
                quantization, dtype = engine_flags_for_variant(desired.variant.name)
            except ValueError:
                pass  # an unknown variant: let vLLM read the checkpoint's own config
    return ReplicaSpec(
        replica_id=desired.name,
        model=model,
        served_model_name=desired.deployment,  # clients (and the gateway) ask for the deployment by name
        port=port,
        host=config.host,
        quantization=quantization,
        tensor_parallel_size=desired.tensor_parallel,
        max_model_len=max_model_len,
        dtype=dtype,
        startup_timeout_s=config.ready_timeout_s,
        drain_timeout_s=config.drain_timeout_s,
        accelerator=desired.pool.accelerator,
        options=options,
    )
