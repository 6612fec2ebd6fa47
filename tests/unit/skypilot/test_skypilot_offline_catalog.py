"""SkyPilot on the shipped catalog snapshot: where the files go and what SkyPilot then reads."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from agents.backends.skypilot import offline_catalog
from tests.fixtures.skypilot.sky_offline import CATALOG_SNAPSHOT


def test_snapshot_files_leave_out_gcp() -> None:
    files = offline_catalog.snapshot_files(CATALOG_SNAPSHOT)
    assert {"aws", "lambda", "nebius", "runpod"} <= set(files)
    assert "gcp" not in files  # accelerator-only price rows cannot validate GCP instance types


def test_no_snapshot_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(offline_catalog.OfflineCatalogError, match="no \\*_vms_gpu_rows.csv"):
        offline_catalog.snapshot_files(tmp_path)


def test_skypilot_reads_the_snapshot(sky: ModuleType) -> None:
    from sky.catalog import common

    runtime = Path(os.environ[offline_catalog.RUNTIME_DIR_ENV])
    for cloud in ("aws", "lambda", "nebius", "runpod"):
        path = Path(common.get_catalog_path(f"{cloud}/vms.csv"))
        assert path.is_relative_to(runtime)
        assert path.read_text() == (CATALOG_SNAPSHOT / f"{cloud}_vms_gpu_rows.csv").read_text()
    # SkyPilot's own catalog query answers from it, offline.
    assert sky.catalog.instance_type_exists("p5.48xlarge", clouds="aws")


def test_accelerator_names_canonicalise(sky: ModuleType) -> None:
    from sky.utils import accelerator_registry

    assert accelerator_registry.canonicalize_accelerator_name("h100", None) == "H100"
    assert accelerator_registry.canonicalize_accelerator_name("a10g", None) == "A10G"


def test_accelerators_csv_is_derived_from_the_rows(sky: ModuleType) -> None:
    text = offline_catalog.accelerators_csv(offline_catalog.snapshot_files(CATALOG_SNAPSHOT).items())
    lines = text.splitlines()
    assert lines[0] == "AcceleratorName,Clouds"
    h100 = next(line for line in lines if line.startswith("H100,"))
    for display in ("AWS", "Lambda", "Nebius"):  # RunPod names its H100s H100-SXM etc.
        assert display in h100
    assert next(line for line in lines if line.startswith("A10G,")) == 'A10G,"AWS"'


def test_activation_is_idempotent_and_refuses_a_second_dir(sky: ModuleType, tmp_path: Path) -> None:
    current = Path(os.environ[offline_catalog.RUNTIME_DIR_ENV])
    assert "aws" in offline_catalog.activate(current, CATALOG_SNAPSHOT)
    with pytest.raises(offline_catalog.OfflineCatalogError, match="imported before"):
        offline_catalog.activate(tmp_path, CATALOG_SNAPSHOT)
