"""Fixtures for the application-fault suite: real ``evloop-demo`` processes on port 0.

Each test in ``tests/faults/`` is a regression test for one defect of issue 15 and runs
against the real server in a subprocess (with an app of the test's own where the demo's
endpoints cannot show the fault).
"""

from __future__ import annotations

import pytest
from support.demo import DemoStarter


@pytest.fixture
def start_demo(tmp_path):
    """Start a demo server with extra arguments; all are stopped at teardown."""
    starter = DemoStarter(tmp_path)
    yield starter
    starter.stop_all()
