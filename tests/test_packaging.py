"""The distribution: built from a copy of the source, checked, installed in a fresh venv, serving its own files.

The build runs without isolation (the test extra brings setuptools and
build), and the wheel is installed with ``--no-index --no-deps``: nothing
here needs the network.  The server runs from the venv with the working
directory outside the source tree, so it can only find the installed copy.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest
from support.demo import DemoServer

import evloop

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parent.parent
DEMO_ROOT = ROOT / "evloop" / "demo_root"
BUNDLED = sorted(p.name for p in DEMO_ROOT.iterdir())


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=80)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist of a copy of the source tree (the tree itself is not written to)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "evloop", source / "evloop", ignore=shutil.ignore_patterns("__pycache__"))
    out = work / "dist"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # its warning is the caller's
    log = _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source, cwd=source, env=env)
    warnings = [line for line in log.splitlines() if "warn" in line.lower()]
    assert warnings == [], "the build warns:\n" + "\n".join(warnings)
    return out


def test_the_build_passes_twine_check_with_full_metadata(dist: Path) -> None:
    wheel, = dist.glob("*.whl")
    sdist, = dist.glob("*.tar.gz")
    assert wheel.name == f"evloop_server-{evloop.__version__}-py3-none-any.whl"
    _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist, cwd=dist)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = email.message_from_bytes(zf.read(f"evloop_server-{evloop.__version__}.dist-info/METADATA"))
    assert {f"evloop/demo_root/{name}" for name in BUNDLED} <= set(names)
    assert "evloop/py.typed" in names
    assert metadata["Name"] == "evloop-server"
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Author-email"] and metadata.get_all("Project-URL")
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Topic :: Internet :: WWW/HTTP :: WSGI :: Server" in classifiers
    assert metadata["Requires-Python"] == ">=3.11"
    with tarfile.open(sdist) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    assert {"LICENSE", "README.md", "pyproject.toml", "evloop/demo_root/favicon.ico"} <= members


def test_the_version_is_the_package_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"]  # one source: evloop.__version__


def test_the_installed_wheel_serves_its_bundled_files(dist: Path, tmp_path: Path) -> None:
    wheel, = dist.glob("*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = _run(venv / "bin" / "python", "-c", "import evloop; print(evloop.__file__)", cwd=elsewhere, env=env)
    assert where.strip().startswith(str(venv)), where
    assert _run(venv / "bin" / "evloop-demo", "--version", cwd=elsewhere, env=env).strip() == \
        f"evloop-demo {evloop.__version__}"

    server = DemoServer(["--no-access-log"], tmp_path / "installed.log", env=env, cwd=elsewhere,
                        command=[str(venv / "bin" / "evloop-demo"), "--port", "0"])
    try:
        for url_path, name in (("/static/", "index.html"), ("/static/style.css", "style.css"),
                               ("/favicon.ico", "favicon.ico")):
            with urllib.request.urlopen(server.url + url_path, timeout=10) as response:
                assert response.status == 200
                assert response.read() == (DEMO_ROOT / name).read_bytes()
    finally:
        assert server.stop() == 0
