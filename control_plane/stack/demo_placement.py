"""A fixed small placement for the demo deployment: one replica per cluster on the cheapest on-demand pool
whose GPU the performance model says can load an allowed variant. The DeployWorkflow's optimizer replaces
this once it exists; until then it gives `llmfleet up` something real to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control_plane.cli.api_client import ApiClient
from scheduler.model_spec import ModelArch, Variant
from scheduler.perf_model import VALID_TP, PerfModel


@dataclass(frozen=True, slots=True)
class DemoChoice:
    cluster: str
    pool: str
    variant: str
    tensor_parallel: int
    price_per_replica_hour: float

    def entry(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "pool": self.pool, "variant": self.variant,
                "tensor_parallel": self.tensor_parallel, "count": 1}


def cheapest_fit(
    cluster: str, pools: list[dict[str, Any]], arch: ModelArch, variants: list[Variant], perf: PerfModel
) -> DemoChoice | None:
    """Pure: the cheapest (pool, variant, tp) per replica among on-demand pools that fit, or None.
    Ties go to fewer GPUs, then the better quality, then the pool name (so the choice is stable)."""
    candidates: list[tuple[tuple[float, int, float, str, str], DemoChoice]] = []
    for pool in pools:
        if pool["market"] != "on-demand" or pool["accelerator"] not in perf.gpus:
            continue
        gpus = int(pool["gpus_per_instance"])
        for variant in variants:
            tp = next((t for t in VALID_TP if t <= gpus
                       and perf.fit_problem(arch, variant, pool["accelerator"], t) is None), None)
            if tp is None:
                continue
            # Replicas are packed into instances: one replica pays for tp of the instance's GPUs.
            price = float(pool["price_per_hour"]) * tp / gpus
            key = (price, tp, variant.quality_delta, pool["name"], variant.name)
            candidates.append((key, DemoChoice(cluster, pool["name"], variant.name, tp, price)))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def place_demo(api: ApiClient, deployment: str, clusters: list[str], perf: PerfModel | None = None) -> list[DemoChoice]:
    """Choose and PUT the demo placement through the REST API (idempotent: the same placement twice is a no-op)."""
    perf = perf if perf is not None else PerfModel()
    spec = api.get(f"/v1/deployments/{deployment}")
    version = api.get(f"/v1/models/{spec['model']}/versions/{spec['version']}")
    a = version["architecture"]
    arch = ModelArch(name=spec["model"], params_b=a["params_b"], layers=a["layers"], hidden=a["hidden"],
                     kv_heads=a["kv_heads"], head_dim=a["head_dim"], context=a["context"])
    allowed = set(spec["variants"]) or {v["name"] for v in version["variants"]}
    budget = spec["constraints"]["max_quality_drop"]
    variants = [
        Variant(name=v["name"], bytes_per_param=v["bytes_per_param"], quality_delta=v["quality_delta"],
                kv_bytes_per_elem=v["kv_bytes_per_elem"])
        for v in version["variants"] if v["name"] in allowed and v["quality_delta"] <= budget
    ]
    choices = []
    for cluster in clusters:
        choice = cheapest_fit(cluster, api.get(f"/v1/clusters/{cluster}/pools"), arch, variants, perf)
        if choice is not None:
            choices.append(choice)
    api.request("PUT", f"/v1/deployments/{deployment}/placement", json={"replicas": [c.entry() for c in choices]})
    return choices
