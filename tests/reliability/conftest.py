"""Fixtures for the reliability suite: the real ``evloop-demo`` in a subprocess.

``DemoServer`` comes from ``tests/e2e/conftest.py`` (loaded by path, so there
is one definition); these tests also need the child's pid for ``/proc``
figures and signals, and ``popen_kwargs`` for resource limits.
"""

from __future__ import annotations

import importlib.util
import resource
import sys
from pathlib import Path

import pytest

_E2E_CONFTEST = Path(__file__).resolve().parent.parent / "e2e" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_evloop_e2e_conftest", _E2E_CONFTEST)
_e2e = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _e2e
_spec.loader.exec_module(_e2e)
DemoServer = _e2e.DemoServer


@pytest.fixture
def start_demo(tmp_path):
    """Start ``evloop-demo`` with extra arguments (and Popen keywords); stopped at teardown."""
    servers: list[DemoServer] = []

    def start(*args: str, **popen_kwargs) -> DemoServer:
        server = DemoServer(list(args), tmp_path / f"demo-{len(servers)}.log", **popen_kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def start_module_demo(tmp_path_factory):
    """Like ``start_demo``, for servers shared by a whole test module."""
    servers: list[DemoServer] = []
    path = tmp_path_factory.mktemp("demo-logs")

    def start(*args: str, **popen_kwargs) -> DemoServer:
        server = DemoServer(list(args), path / f"demo-{len(servers)}.log", **popen_kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def nofile(request):
    """Make sure this test process may open ``n`` descriptors (soft limit raised, restored after)."""
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)

    def ensure(n: int) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < n:
            if hard != resource.RLIM_INFINITY and hard < n:
                pytest.skip(f"needs {n} descriptors, hard RLIMIT_NOFILE is {hard}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))

    yield ensure
    resource.setrlimit(resource.RLIMIT_NOFILE, saved)
