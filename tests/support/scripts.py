"""A file of scripts/ loaded as a module, for the tests of its functions (the scripts are not a
package: they run as `python scripts/...`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(relative: str) -> ModuleType:
    """scripts/`relative` (e.g. "bench/rotation_bench.py") as a module named after its file."""
    path = SCRIPTS / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    # Importable by its name while it runs, as a module run by Python is: a dataclass of the
    # script looks its module up there (sys.modules), and is made as it runs.
    added = sys.modules.setdefault(path.stem, module) is module
    try:
        spec.loader.exec_module(module)
    finally:
        if added:
            del sys.modules[path.stem]
    return module
