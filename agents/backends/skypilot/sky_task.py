"""Task configs as real ``sky.Task`` objects, checked by SkyPilot itself.

``validate_task_config`` runs the checks ``sky launch`` would run before provisioning, all offline when
the catalog is a local snapshot (``offline_catalog.activate``):

1. the task YAML schema (``sky.utils.schemas.get_task_schema`` through ``common_utils.validate_schema``);
2. building the ``sky.Task`` and its ``sky.Resources`` (cloud, region and zone must exist in the catalog);
3. ``Task.validate`` (resources, accelerator names);
4. the cloud's feasibility check, as SkyPilot's optimizer does it: the instance type exists, carries the
   requested accelerators, and the cloud supports the features (spot, open ports).

``sky`` is imported inside the functions: importing it costs over a second and fixes where SkyPilot
looks for catalogs, so modules that only build configs must not pay for it or fix it too early.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sky


class TaskInvalid(ValueError):
    """SkyPilot rejects the task; the message is SkyPilot's reason on one line."""


class CatalogUnavailable(RuntimeError):
    """SkyPilot needed a catalog it does not have locally and could not download it."""


def one_line(text: str) -> str:
    """SkyPilot's messages span lines (tables, hints); the CLI shows one line."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def to_sky_task(config: Mapping[str, Any], secrets: Mapping[str, str] | None = None) -> sky.Task:
    """A ``sky.Task`` from a task config, with secret values filled in for a launch.

    Values go in as SkyPilot's secret overrides, exactly what ``sky launch --secret NAME=VALUE`` does: the
    task carries them as secrets (redacted in SkyPilot's logs and its YAML views), the config stays clean.
    """
    import sky

    overrides = list((secrets or {}).items())
    # from_yaml_config consumes the mapping it gets; the caller's config must stay as it was.
    return sky.Task.from_yaml_config(copy.deepcopy(dict(config)), secrets_overrides=overrides or None)


def canonical_config(task: sky.Task) -> dict[str, Any]:
    """SkyPilot's own YAML form of a task, minus its private copy of the text it was read from."""
    config = task.to_yaml_config()
    config.pop("_user_specified_yaml", None)
    return config


def validate_task_config(config: Mapping[str, Any]) -> sky.Task:
    """The validated ``sky.Task``; TaskInvalid with SkyPilot's reason, CatalogUnavailable offline."""
    import requests
    import sky
    from sky.utils import common_utils, schemas

    try:
        common_utils.validate_schema(
            copy.deepcopy(dict(config)), schemas.get_task_schema(), "Invalid task YAML: "
        )
        task = to_sky_task(config)
        task.validate(skip_file_mounts=True, skip_workdir=True)
        for resources in task.resources:
            _check_feasible(resources)
    except requests.exceptions.RequestException as exc:
        raise CatalogUnavailable(
            f"SkyPilot tried to download a catalog and could not ({type(exc).__name__}); "
            "validate offline against the shipped snapshot (offline_catalog.activate) or go online"
        ) from exc
    except (
        ValueError,
        TypeError,
        sky.exceptions.ResourcesMismatchError,
        sky.exceptions.NotSupportedError,
    ) as exc:
        raise TaskInvalid(one_line(str(exc))) from exc
    return task


def _check_feasible(resources: sky.Resources) -> None:
    cloud = resources.cloud
    if cloud is None:  # a task without a cloud is for SkyPilot's optimizer to place; ours always has one
        raise TaskInvalid("the task's resources name no cloud")
    feasible = cloud.get_feasible_launchable_resources(resources, num_nodes=1)
    if not feasible.resources_list:
        reason = one_line(feasible.hint or "") or "no offering in the catalog matches"
        raise TaskInvalid(f"{cloud} cannot launch {resources}: {reason}")
