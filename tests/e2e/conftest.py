"""Fixtures that run the real ``evloop-demo`` as a subprocess on port 0."""

from __future__ import annotations

import pytest
from support.demo import DemoServer, DemoStarter


@pytest.fixture
def start_demo(tmp_path):
    """Start a demo server with extra arguments; all are stopped at teardown."""
    starter = DemoStarter(tmp_path)
    yield starter
    starter.stop_all()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo server (access log off) shared by a test module."""
    path = tmp_path_factory.mktemp("demo")
    server = DemoServer(["--no-access-log"], path / "demo.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def start_module_demo(tmp_path_factory):
    """Like ``start_demo``, for servers shared by a whole test module."""
    starter = DemoStarter(tmp_path_factory.mktemp("demo-logs"))
    yield starter
    starter.stop_all()
