"""Fixtures that run the real ``evloop-demo`` as a subprocess on port 0."""

from __future__ import annotations

import pytest
from support.demo import DemoServer
from support.fixtures import start_demo, start_module_demo  # noqa: F401


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo server (access log off) shared by a test module."""
    path = tmp_path_factory.mktemp("demo")
    server = DemoServer(["--no-access-log"], path / "demo.log")
    yield server
    server.stop()
