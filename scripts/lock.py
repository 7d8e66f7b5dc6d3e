#!/usr/bin/env python3
"""Keep the lock and the Lambda bundle's requirements in step.

    python scripts/lock.py            # uv lock, then write requirements.txt from uv.lock
    python scripts/lock.py --check    # fail when requirements.txt is not what uv.lock says

uv.lock pins every package, for every install: `make venv` syncs the virtualenv from it, and
requirements.txt, the list the Lambda bundle is built from (infra/bundling.py), is exported
from it. What is exported: the package's dependencies minus those `[tool.dupcheck]
not-shipped` names in pyproject.toml (and whatever only they need): the local server's and the
batch tools' packages, and boto3, which the Lambda runtime provides.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
PRODUCTS_REQUIREMENTS = ROOT / "requirements-products.txt"
HEADER = "# What ships to AWS Lambda: exported from uv.lock by scripts/lock.py (do not edit by hand).\n"
PRODUCTS_HEADER = (
    "# What the similar-products function ships on top of requirements.txt: exported from uv.lock by\n"
    "# scripts/lock.py (do not edit by hand).\n"
)


def uv() -> list[str]:
    return [sys.executable, "-m", "uv"]


def _export(*, extra: bool) -> list[str]:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dupcheck"]
    pruned = [*tool["not-shipped"], *(tool["build-only"] if extra else [])]
    command = [
        *uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header",
        "--no-annotate", *(["--extra", "products"] if extra else []), *(a for n in pruned for a in ("--prune", n)),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return result.stdout.splitlines(keepends=True)


def exported() -> str:
    return HEADER + "".join(_export(extra=False))


def exported_products() -> str:
    """The `products` extra's run-time packages (onnxruntime and what it needs) not already in requirements.txt."""
    shipped = set(_export(extra=False))
    return PRODUCTS_HEADER + "".join(line for line in _export(extra=True) if line not in shipped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare requirements.txt with uv.lock")
    args = parser.parse_args()
    files = {REQUIREMENTS: exported, PRODUCTS_REQUIREMENTS: exported_products}
    if args.check:
        stale = [path.name for path, export in files.items() if path.read_text() != export()]
        if stale:
            print(f"{', '.join(stale)} not what uv.lock says: run `python scripts/lock.py`", file=sys.stderr)
            return 1
        return 0
    subprocess.run([*uv(), "lock"], cwd=ROOT, check=True)
    for path, export in files.items():
        path.write_text(export())
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
