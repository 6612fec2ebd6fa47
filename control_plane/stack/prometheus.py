"""Prometheus for the local stack: write its configuration and start the `prometheus` binary from PATH.

Targets come from two places (see docs/observability.md):
- the registry, through `http_sd_configs` on the API's `GET /v1/prometheus/targets` (every replica with an
  endpoint, labelled with deployment, version, arm, cluster, region, accelerator, market);
- a `file_sd_configs` file (`targets/static.json`) for what the registry does not know — agents, gateways,
  the workflow worker — which whoever starts those processes rewrites with `write_static_targets`;
  Prometheus re-reads it on change, no restart.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from control_plane.cli.errors import CliError
from control_plane.stack.processes import Child, free_port, start_child

RULES_DIR = Path(__file__).resolve().parents[1] / "data" / "prometheus" / "rules"


@dataclass(frozen=True, slots=True)
class StaticTarget:
    """A process to scrape at `url` (its /metrics, or the URL's own path if it names one)."""

    url: str
    component: str  # agent, gateway, worker, ...
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PrometheusPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def static_targets(self) -> Path:
        return self.root / "targets" / "static.json"

    @property
    def credentials(self) -> Path:
        return self.root / "api-key"

    @property
    def data(self) -> Path:
        return self.root / "data"


def _host_port(url: str) -> tuple[str, str, str]:
    """(scheme, host:port, path) of an http(s) URL; CliError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"not an http(s) URL to scrape: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, f"{host}:{port}", parts.path.rstrip("/")


def static_target_groups(targets: Iterable[StaticTarget]) -> list[dict[str, Any]]:
    groups = []
    for target in targets:
        scheme, address, path = _host_port(target.url)
        metrics_path = path if path.endswith("/metrics") else f"{path}/metrics"
        labels = {"__scheme__": scheme, "__metrics_path__": metrics_path, "component": target.component,
                  **target.labels}
        groups.append({"targets": [address], "labels": labels})
    return groups


def write_static_targets(path: Path, targets: Iterable[StaticTarget]) -> None:
    """Atomically replace the file_sd file (Prometheus never reads half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(static_target_groups(targets), indent=2) + "\n")
    os.replace(tmp, path)


def render_config(
    *, api_url: str, paths: PrometheusPaths, scrape_interval: str = "5s", sd_refresh: str = "5s",
    rules_dir: Path = RULES_DIR,
) -> dict[str, Any]:
    scheme, address, prefix = _host_port(api_url)
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "rule_files": [str(rules_dir / "*.yml")],
        "scrape_configs": [
            {"job_name": "llmfleet-api", "scheme": scheme, "metrics_path": f"{prefix}/metrics",
             "static_configs": [{"targets": [address], "labels": {"component": "api"}}]},
            {"job_name": "llmfleet-registry",
             "http_sd_configs": [{"url": f"{api_url.rstrip('/')}/v1/prometheus/targets",
                                  "refresh_interval": sd_refresh,
                                  "authorization": {"type": "Bearer",
                                                    "credentials_file": str(paths.credentials)}}]},
            {"job_name": "llmfleet-static",
             "file_sd_configs": [{"files": [str(paths.static_targets)], "refresh_interval": sd_refresh}]},
        ],
    }


def write_config(api_url: str, api_key: str, paths: PrometheusPaths, static: Iterable[StaticTarget] = (),
                 scrape_interval: str = "5s") -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.credentials.write_text(api_key.strip() + "\n")
    os.chmod(paths.credentials, 0o600)
    write_static_targets(paths.static_targets, static)
    config = render_config(api_url=api_url, paths=paths, scrape_interval=scrape_interval,
                           sd_refresh=scrape_interval)
    paths.config.write_text(yaml.safe_dump(config, sort_keys=False))


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")



def start_prometheus(
    api_url: str, api_key: str, state_dir: Path, log_dir: Path, *, host: str = "127.0.0.1", port: int | None = None,
    static: Iterable[StaticTarget] = (), scrape_interval: str = "5s", binary: str | None = None,
) -> tuple[Child, str, PrometheusPaths]:
    """Write the configuration under `state_dir/prometheus` and start Prometheus on a free port.
    Returns the child, its URL and the paths (rewrite `paths.static_targets` as processes come and go)."""
    binary = binary or prometheus_binary()
    if binary is None:
        raise CliError("prometheus is not installed (Debian: apt-get install prometheus)")
    # Absolute: Prometheus resolves relative paths in its config against the config file's folder.
    paths = PrometheusPaths(state_dir.resolve() / "prometheus")
    write_config(api_url, api_key, paths, static, scrape_interval)
    port = port or free_port(host)
    argv = [
        binary, f"--config.file={paths.config}", f"--storage.tsdb.path={paths.data}",
        f"--web.listen-address={host}:{port}", "--web.enable-lifecycle", "--storage.tsdb.retention.time=7d",
        "--log.level=warn",
    ]
    child = start_child("prometheus", argv, env={}, log_dir=log_dir)
    return child, f"http://{host}:{port}", paths


def wait_for_prometheus(url: str, child: Child, timeout: float = 30.0) -> None:
    """Until `/-/ready` answers 200; CliError if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise CliError(f"prometheus exited with code {child.popen.returncode} while starting")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise CliError(f"prometheus did not become ready at {url} within {timeout:.0f} s")
