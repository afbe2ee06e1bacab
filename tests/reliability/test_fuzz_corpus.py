"""Smoke test of the atheris fuzz target without atheris: every corpus seed passes ``TestOneInput``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent.parent / "fuzz"


def _target():
    spec = importlib.util.spec_from_file_location("fuzz_parser", FUZZ_DIR / "fuzz_parser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzz_target_accepts_every_corpus_seed():
    target = _target()
    seeds = sorted((FUZZ_DIR / "corpus").iterdir())
    assert len(seeds) >= 100
    for path in seeds:
        data = path.read_bytes()
        target.TestOneInput(data)
        # And with every split point byte, so the split path is exercised too.
        for first in (0, 85, 170, 255):
            target.TestOneInput(bytes([first]) + data[1:])
