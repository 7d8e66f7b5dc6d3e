"""A file of scripts/ imported as the module it is (scripts/ is a package: `scripts.bench.<name>`),
for the tests of its functions."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(relative: str) -> ModuleType:
    """scripts/`relative` (e.g. "bench/rotation_bench.py") as its module, scripts.bench.rotation_bench."""
    return importlib.import_module("scripts." + relative.removesuffix(".py").replace("/", "."))
