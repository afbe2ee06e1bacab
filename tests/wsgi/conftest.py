"""Fixtures: ``serve_wsgi`` and ``gunicorn`` start servers in an app's folder (see ``support.wsgi_servers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.demo import DemoServer
from support.wsgi_servers import Gunicorn, app_env


@pytest.fixture
def serve_wsgi(tmp_path):
    """``serve_wsgi(folder, *args, env=None)``: a running ``evloop-demo`` in ``folder``; ``.url`` is its address."""
    servers: list[DemoServer] = []

    def start(folder: Path, *args: str, env: dict[str, str] | None = None) -> DemoServer:
        server = DemoServer(list(args), tmp_path / f"evloop-{len(servers)}.log", env=app_env(**(env or {})),
                            cwd=folder)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gunicorn(tmp_path):
    """``gunicorn(folder, spec, *args)``: a running gunicorn in ``folder``; ``.url`` is its address."""
    servers: list[Gunicorn] = []

    def start(folder: Path, spec: str, *args: str) -> Gunicorn:
        server = Gunicorn(folder, spec, tmp_path / f"gunicorn-{len(servers)}.log", *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
