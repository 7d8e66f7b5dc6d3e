"""The one Lambda code asset: `lambdas/dupcheck` plus `requirements.txt`, built without Docker.

Both functions share this asset, so it is built once per synth (and not at all when
`cdk.out` already holds a bundle with the same hash). The bundle is built by `pip` on the
machine running `cdk synth`, for the Lambda platform (`manylinux2014_x86_64`, CPython 3.12,
binary wheels only), so no Docker daemon is needed. CDK still requires a Docker image in
`BundlingOptions`; it is only used if local bundling reports that it could not run.

Bundling is skipped (source copied, no pip, no network) when the context
`aws:cdk:bundling-stacks` is `[]`; `infra/app.py` sets it for `-c dupcheck:skipBundling=true`,
and the infra tests set it directly.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, FileSystem, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
PACKAGE_NAME = "dupcheck"
REQUIREMENTS = REPO_ROOT / "requirements.txt"

# Must match the functions' runtime and architecture (see infra/components/*.py).
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
PIP_PLATFORM = "manylinux2014_x86_64"
PIP_PYTHON_VERSION = "3.12"

# Files in lambdas/ that are not part of the deployed code.
EXCLUDE = ["**/__pycache__", "**/*.pyc", "*.egg-info", "**/.pytest_cache", "**/.mypy_cache"]

# boto3/botocore ship with the Lambda Python runtime; bundling them again costs ~90 MB of the
# 250 MB unzipped limit. They stay in requirements.txt for the local mode and the tests.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")

# imagehash (with scipy and PyWavelets: ~100 MB) is a requirement for the baseline benchmarks and
# tests; the deployed code computes the same pHash without them (core/hashing.py).
NOT_DEPLOYED = ("imagehash", "ImageHash-*.dist-info", "scipy", "scipy.libs", "scipy-*.dist-info",
                "pywt", "pywavelets-*.dist-info", "PyWavelets-*.dist-info")  # fmt: skip

# Lambda's limit for a function's unzipped code (functions + layers).
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024

# Bump when the bundling procedure changes, so an old bundle in cdk.out is not reused.
BUNDLER_VERSION = "3"


class BundlingError(RuntimeError):
    """Raised when the local bundle cannot be built or is too large for Lambda."""


@jsii.implements(ILocalBundling)
class LocalPipBundler:
    """Builds the bundle with pip on the host. jsii calls `try_bundle(output_dir, options)`."""

    def __init__(self, *, lambdas_dir: Path = LAMBDAS_DIR, requirements: Path = REQUIREMENTS) -> None:
        self._lambdas_dir = lambdas_dir
        self._requirements = requirements

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:  # noqa: ARG002 - jsii signature
        out = Path(output_dir)
        cmd = [
            sys.executable, "-m", "pip", "install",
            "--quiet", "--disable-pip-version-check", "--no-compile",
            "-r", str(self._requirements),
            "--platform", PIP_PLATFORM,
            "--only-binary=:all:",
            "--python-version", PIP_PYTHON_VERSION,
            "--implementation", "cp",
            "-t", str(out),
        ]  # fmt: skip
        print(f"dupcheck bundling: {' '.join(cmd)}", file=sys.stderr)
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0:
            # Returning False would fall back to Docker, which this project does not use:
            # fail loudly with pip's own message above instead.
            raise BundlingError(f"pip install for the Lambda bundle failed (exit {result.returncode})")
        self._drop_runtime_provided(out)
        self._drop_not_deployed(out)
        self._drop_test_suites(out)
        shutil.copytree(
            self._lambdas_dir / PACKAGE_NAME,
            out / PACKAGE_NAME,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"dupcheck bundling: {size / 1024 / 1024:.1f} MiB unzipped", file=sys.stderr)
        if size > LAMBDA_UNZIPPED_LIMIT_BYTES:
            raise BundlingError(f"Lambda bundle is {size} bytes, over the 250 MiB unzipped limit")
        return True

    @staticmethod
    def _drop_runtime_provided(out: Path) -> None:
        for name in PROVIDED_BY_RUNTIME:
            for path in out.glob(f"{name}"):
                shutil.rmtree(path, ignore_errors=True)
            for path in out.glob(f"{name}-*.dist-info"):
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _drop_not_deployed(out: Path) -> None:
        for pattern in NOT_DEPLOYED:
            for path in out.glob(pattern):
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _drop_test_suites(out: Path) -> None:
        # Third-party test suites (scipy, numpy, pywt: ~67 MB) are never imported at run time.
        for path in sorted(out.glob("*/**/tests"), reverse=True):
            if path.is_dir() and not path.relative_to(out).parts[0].endswith(".dist-info"):
                shutil.rmtree(path, ignore_errors=True)


def asset_hash() -> str:
    """Hash of everything that goes into the bundle: package source, requirements, bundler."""
    digest = hashlib.sha256()
    digest.update(FileSystem.fingerprint(str(LAMBDAS_DIR / PACKAGE_NAME), exclude=EXCLUDE).encode())
    digest.update(REQUIREMENTS.read_bytes())
    digest.update(f"{PIP_PLATFORM}/{PIP_PYTHON_VERSION}/{BUNDLER_VERSION}".encode())
    return digest.hexdigest()


def dupcheck_code() -> lambda_.Code:
    """The single code asset both functions use (bind the same object to both)."""
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        exclude=EXCLUDE,
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash(),
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,  # required by CDK; unused while local bundling succeeds
            # LocalPipBundler either succeeds or raises, so this never runs; it says so if it does.
            command=["bash", "-c", "echo 'dupcheck bundles locally: see infra/bundling.py' >&2; exit 1"],
            local=LocalPipBundler(),
        ),
    )
