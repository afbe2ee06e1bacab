"""Pytest fixtures that start the real evloop-demo, for suites to import into their conftest."""

from __future__ import annotations

import pytest

from .demo import DemoStarter

__all__ = ["start_demo", "start_module_demo"]


@pytest.fixture
def start_demo(tmp_path):
    """Start evloop-demo servers with extra arguments; all are stopped at teardown."""
    starter = DemoStarter(tmp_path)
    yield starter
    starter.stop_all()


@pytest.fixture(scope="module")
def start_module_demo(tmp_path_factory):
    """Like ``start_demo``, for servers shared by a whole test module."""
    starter = DemoStarter(tmp_path_factory.mktemp("demo-logs"))
    yield starter
    starter.stop_all()
