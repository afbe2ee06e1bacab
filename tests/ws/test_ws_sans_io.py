"""evloop.ws is sans-I/O: no sockets, selectors, TLS or clocks, and nothing from the server side."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "evloop" / "ws"
FORBIDDEN = ("socket", "selectors", "ssl", "time", "asyncio", "threading")
ALLOWED_EVLOOP = ("evloop.http.fields", "evloop.ws")  # relative imports resolved below


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module or "")
            elif node.level == 1:
                names.add(f"evloop.ws.{node.module}" if node.module else "evloop.ws")
            else:
                names.add(f"evloop.{node.module}")
    return names


def test_no_io_imports():
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        for name in imports(path):
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{path.name} imports {name}"
            if root == "evloop":
                assert name.startswith(ALLOWED_EVLOOP), f"{path.name} imports {name}"
