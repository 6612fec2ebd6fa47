"""Point SkyPilot at a shipped catalog snapshot so tasks validate offline, without any download.

SkyPilot reads its price catalogs from ``<runtime dir>/.sky/catalogs/<schema>/<cloud>/vms.csv`` and
downloads a missing file on first use (which fails offline). A file it did not download itself (no md5
beside it) counts as user-modified and is never re-fetched. So an offline runtime dir holds:

- ``<cloud>/vms.csv`` for each cloud in the snapshot (``<cloud>_vms_gpu_rows.csv`` files in SkyPilot's
  own format, e.g. control_plane/data/catalog/), and
- ``common/accelerators.csv`` (accelerator name -> clouds), which SkyPilot uses to canonicalise
  accelerator names; we derive it from the same rows.

The runtime dir comes from ``$SKY_RUNTIME_DIR``, read once when ``sky`` is imported: ``activate`` must run
before anything imports ``sky`` in the process (it refuses otherwise). It also moves SkyPilot's local
state (cluster table, locks) there, which keeps validation away from a user's real ``~/.sky``.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable
from pathlib import Path

RUNTIME_DIR_ENV = "SKY_RUNTIME_DIR"  # sky.skylet.constants.SKY_RUNTIME_DIR_ENV_VAR_KEY
SNAPSHOT_SUFFIX = "_vms_gpu_rows.csv"
# GCP's public catalog prices accelerators apart from their host VMs; the snapshot keeps only those
# rows, which cannot validate a GCP instance type, so offline validation leaves GCP out.
_UNUSABLE_OFFLINE = frozenset({"gcp"})


class OfflineCatalogError(RuntimeError):
    """The offline catalog cannot be set up (sky imported too early, or no snapshot)."""


def snapshot_files(snapshot_dir: Path) -> dict[str, Path]:
    """Cloud name -> its ``<cloud>_vms_gpu_rows.csv`` in ``snapshot_dir``."""
    found = {
        path.name[: -len(SNAPSHOT_SUFFIX)]: path
        for path in sorted(snapshot_dir.glob(f"*{SNAPSHOT_SUFFIX}"))
        if path.name[: -len(SNAPSHOT_SUFFIX)] not in _UNUSABLE_OFFLINE
    }
    if not found:
        raise OfflineCatalogError(f"no *{SNAPSHOT_SUFFIX} catalog snapshot in {snapshot_dir}")
    return found


def activate(runtime_dir: Path, snapshot_dir: Path) -> tuple[str, ...]:
    """Make this process's SkyPilot read the snapshot in ``snapshot_dir``; returns the clouds it covers.

    Idempotent for the same ``runtime_dir``.
    """
    runtime_dir = runtime_dir.resolve()
    files = snapshot_files(snapshot_dir)
    if "sky" in sys.modules:
        current = os.environ.get(RUNTIME_DIR_ENV)
        if current is None or Path(current).resolve() != runtime_dir:
            raise OfflineCatalogError(
                "sky was imported before the offline catalog was activated; activate it first"
            )
    os.environ[RUNTIME_DIR_ENV] = str(runtime_dir)
    # A validation run is not usage worth reporting, and offline the report would only time out.
    os.environ.setdefault("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    from sky.catalog import common as sky_catalog  # only now: it reads SKY_RUNTIME_DIR on import

    for cloud, source in files.items():
        target = Path(sky_catalog.get_catalog_path(f"{cloud}/vms.csv"))
        if not target.is_relative_to(runtime_dir):
            raise OfflineCatalogError(f"SkyPilot reads catalogs from {target}, not from {runtime_dir}")
        _write_if_changed(target, source.read_text(encoding="utf-8"))
    accelerators = Path(sky_catalog.get_catalog_path("common/accelerators.csv"))
    _write_if_changed(accelerators, accelerators_csv(files.items()))
    return tuple(files)


def accelerators_csv(files: Iterable[tuple[str, Path]]) -> str:
    """SkyPilot's ``common/accelerators.csv`` (AcceleratorName, Clouds) for the snapshot's rows."""
    from sky.utils import registry  # the display names ("AWS", "Lambda") SkyPilot matches against

    clouds_of: dict[str, set[str]] = {}
    for cloud, path in files:
        display = str(registry.CLOUD_REGISTRY.from_str(cloud))
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                name = (row.get("AcceleratorName") or "").strip()
                if name:
                    clouds_of.setdefault(name, set()).add(display)
    lines = ["AcceleratorName,Clouds"]
    lines += [f'{name},"{", ".join(sorted(clouds))}"' for name, clouds in sorted(clouds_of.items())]
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    # Rewriting an identical file would only bump its mtime; several processes may share the dir.
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
