"""Project-level checks: no threads or asyncio in evloop/, the README example runs, packaging."""

from __future__ import annotations

import ast
import re
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "evloop"
FORBIDDEN = ("threading", "_thread", "asyncio", "concurrent.futures", "multiprocessing.pool")


def _imported_modules(tree: ast.AST, module_path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            # importlib.import_module("x") / __import__("x") with a literal name
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if fname in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
                    names.add(arg.value)
    return names


def _is_forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def test_scanner_catches_forbidden_imports():
    src = "import threading\nfrom concurrent.futures import ThreadPoolExecutor\nfrom multiprocessing import pool\n"
    names = _imported_modules(ast.parse(src), Path("x.py"))
    assert {n for n in names if _is_forbidden(n)} == {"threading", "concurrent.futures", "multiprocessing.pool",
                                                        "concurrent.futures.ThreadPoolExecutor"}


def test_no_threads_or_asyncio_in_package():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in sorted(_imported_modules(tree, path)):
            if _is_forbidden(name):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def _readme_echo_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Embedding the reactor", 1)
    assert len(section) == 2, "README has no 'Embedding the reactor' section"
    match = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert match, "no python block under 'Embedding the reactor'"
    return match.group(1)


def test_readme_echo_example_runs(tmp_path):
    script = tmp_path / "echo.py"
    script.write_text(_readme_echo_example())
    proc = subprocess.Popen(
        [sys.executable, str(script), "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"echo server on (\S+):(\d+)\n", line)
        assert match, (line, proc.poll() is not None and proc.stderr.read())
        host, port = match.group(1), int(match.group(2))
        assert port != 0
        payload = bytes(range(256)) * 2000
        with socket.create_connection((host, port), timeout=5) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            got = bytearray()
            while chunk := client.recv(65536):
                got += chunk
        assert bytes(got) == payload
        # A second client, to show the server keeps serving.
        with socket.create_connection((host, port), timeout=5) as client:
            client.sendall(b"again")
            assert client.recv(100) == b"again"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
    assert "Traceback" not in err, err


def test_readme_example_is_short():
    lines = [line for line in _readme_echo_example().splitlines() if line.strip()]
    assert len(lines) <= 30


def test_no_runtime_dependencies_and_py_typed():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project.get("dependencies", []) == []
    assert "dependencies" not in project.get("dynamic", [])
    assert project["requires-python"].replace(" ", "") == ">=3.11"
    assert "test" in project["optional-dependencies"]
    assert (PACKAGE / "py.typed").is_file()
    package_data = meta.get("tool", {}).get("setuptools", {}).get("package-data", {})
    assert "py.typed" in package_data.get("evloop", [])



def test_public_names_are_visible_to_type_checkers(tmp_path):
    """The lazily imported names (App, Response, serve, ...) are real types to mypy, not Any."""
    import shutil

    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed (it is in the test extra)")
    snippet = tmp_path / "uses_evloop.py"
    snippet.write_text(
        "import evloop\n"
        "reveal_type(evloop.App)\n"
        "reveal_type(evloop.Response)\n"
        "reveal_type(evloop.serve)\n"
        "reveal_type(evloop.ServerConfig)\n"
        "reveal_type(evloop.Reactor().call_every)\n"
    )
    proc = subprocess.run([mypy, "--no-incremental", str(snippet)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    revealed = [line for line in proc.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 5, proc.stdout + proc.stderr
    assert not any('"Any"' in line for line in revealed), revealed


def test_modules_and_functions_stay_small():
    """The connection-core issue's limits: no module in evloop/ over 700 lines, no function of 80 lines or more."""
    too_long: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        if lines > 700:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length >= 80:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert too_long == []
