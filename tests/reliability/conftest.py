"""Fixtures for the reliability suite: the real ``evloop-demo`` in a subprocess.

``DemoServer`` is the one in ``tests/support/demo.py``; these tests also need
the child's pid for ``/proc`` figures and signals, and Popen keywords for
resource limits, which ``start_demo`` passes on.
"""

from __future__ import annotations

import resource

import pytest
from support.fixtures import start_demo, start_module_demo  # noqa: F401  (Popen keywords pass through)


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
