"""The Lambda bundle: its size, what it holds, and the handlers' cold import from it.

Size: the unzipped code asset `make synth` bundled (one asset shared by both functions),
against Lambda's 250 MB limit. Contents: no operator-tool module may be in it. Cold import: a
fresh CPython 3.12 (Lambda's version) importing each handler module *from the bundle itself*,
with boto3/botocore at the version uv.lock pins standing in for the Lambda runtime's, against
the same interpreter importing nothing (the baseline in the same run), median of several runs.

    make synth && .venv/bin/python scripts/bench/package_bench.py [--python python3.12] [--products]
    .venv/bin/python scripts/bench/package_bench.py --build x86_64 [--sources-only] [--products]

`--build MACHINE` builds a bundle for that architecture into a temporary folder instead of
measuring cdk.out's (the handlers' cold import runs only where MACHINE is this machine's);
`--sources-only` builds it without bytecode, to measure what bytecode saves. SnapStart's hooks
are timed in the same fresh interpreter: what `before_snapshot` adds to the snapshotted init and
what `after_restore` adds to a restored start. `--products`: the similar-products functions' asset
instead (the shared one plus onnxruntime and the product model) and their handlers' cold start,
which loads the model. `--against REV` (with `--build` of this machine): the same bundle built
from the sources of git revision REV by the same bundler, its size, and the handlers' cold import
from both bundles taken in turn, run by run (a shared machine's load falls on both alike).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_LIMIT_MB = 250
RUNS = 7
HANDLERS = ("dupcheck.handlers.find_similar", "dupcheck.handlers.stream_sync")
PRODUCTS_HANDLERS = ("dupcheck.handlers.similar_products", "dupcheck.handlers.product_sync")
# What the find_similar function sees: every AWS adapter (their clients are built, but nothing is
# sent at import) and no X-Ray daemon.
ENV = {
    "DUPCHECK_STORE": "dynamodb",
    "DUPCHECK_INDEX": "opensearch",
    "DUPCHECK_TABLE_NAME": "dupcheck-hashes",
    "DUPCHECK_OPENSEARCH_ENDPOINT": "search-dupcheck.us-east-1.es.amazonaws.com",
    "DUPCHECK_THUMBNAIL_BUCKET": "dupcheck-thumbnails",
    "DUPCHECK_IMPORTS_TABLE": "dupcheck-imports",
    "DUPCHECK_IMPORTS_BUCKET": "dupcheck-imports",
    "DUPCHECK_IMPORT_STARTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/starts",
    "DUPCHECK_IMPORT_ROWS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/rows",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def bundle_dir(cdk_out: Path, handlers: tuple[str, ...] = HANDLERS) -> Path:
    """The asset the functions of `handlers` share (the find_similar one, or the products one)."""
    template = cdk_out / "Dupcheck.template.json"
    if not template.exists():
        raise SystemExit("no cdk.out: run `make synth` first")
    resources = json.loads(template.read_text())["Resources"].values()
    keys = {r["Properties"]["Code"]["S3Key"] for r in resources if r["Type"] == "AWS::Lambda::Function"
            and r["Properties"]["Handler"].rsplit(".", 1)[0] in handlers}  # fmt: skip
    if len(keys) != 1:
        raise SystemExit(f"expected one code asset shared by {', '.join(handlers)}, found {sorted(keys)}")
    return cdk_out / f"asset.{keys.pop().removesuffix('.zip')}"


def contents(bundle: Path) -> dict[str, object]:
    files = [p for p in bundle.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    relative = [p.relative_to(bundle) for p in files]
    tools = sorted(str(p) for p in relative if p.parts[0] == "dupcheck_tools" or p.as_posix() == "dupcheck/__main__.py")
    modules = sorted(str(p.relative_to(bundle / "dupcheck")) for p in (bundle / "dupcheck").rglob("*.py"))
    return {
        "unzipped_mb": round(size / 1e6, 1),
        "unzipped_mib": round(size / 2**20, 1),
        "share_of_limit": round(size / 1e6 / LAMBDA_LIMIT_MB, 2),
        "tool_modules": tools,
        "dupcheck_modules": len(modules),
    }


RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "snapshot-restore-py")


def runtime_boto3(python: str, target: Path) -> None:
    """boto3, botocore and the SnapStart hooks' library at their uv.lock versions: what the
    Lambda runtime provides."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    pins = [f"{p['name']}=={p['version']}" for p in lock["package"] if p["name"] in RUNTIME_PACKAGES]
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", python, "--target", str(target), *pins],
        check=True,
    )


# Run from the bundle: the API answers through the handler (OpenAPI needs Powertools and pydantic),
# and the pipeline hashes and verifies an image (numpy, Pillow): the shipped bytecode works.
SMOKE_SCRIPT = """
import io, json
from PIL import Image
from dupcheck.handlers import find_similar
from dupcheck.core.fingerprint.hashing import get_pipeline
event = {"resource": "/openapi.json", "path": "/openapi.json", "httpMethod": "GET", "headers": {},
         "requestContext": {"requestId": "smoke", "stage": "v1"}, "body": None, "isBase64Encoded": False}
answer = find_similar.app.resolve(event, None)
assert answer["statusCode"] == 200 and "/find_similar" in json.loads(answer["body"])["paths"], answer
image = io.BytesIO()
Image.linear_gradient("L").convert("RGB").save(image, "JPEG")
pipeline = get_pipeline()
query = pipeline.fingerprint_bytes(image.getvalue(), max_pixels=10**7)
print("smoke ok", pipeline.algo, query.hash.hex)
"""


def smoke(python: str, path: str) -> str:
    env = {**os.environ, **ENV, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path}
    result = subprocess.run(
        [python, "-c", SMOKE_SCRIPT], check=False, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"the smoke run from the bundle failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


# SnapStart: the hooks' cost, and the resident memory the snapshot holds, after the handler's import.
HOOKS_SCRIPT = """
import re, statistics, time
from pathlib import Path
from dupcheck.handlers import find_similar
started = time.perf_counter()
find_similar.before_snapshot()
before = time.perf_counter() - started
rss = int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
samples = []
for _ in range(7):
    started = time.perf_counter()
    find_similar.after_restore()
    samples.append(time.perf_counter() - started)
print(round(before * 1000, 1), round(statistics.median(samples) * 1000, 1), round(rss))
"""


def snapstart_hooks(python: str, path: str) -> dict[str, float]:
    env = {**os.environ, **ENV, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path}
    out = (
        subprocess.run(
            [python, "-c", HOOKS_SCRIPT], check=True, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True
        )
        .stdout.splitlines()[-1]
        .split()
    )  # after the adapters' log lines
    before, after, rss = map(float, out)
    return {"before_snapshot_ms": before, "after_restore_ms": after, "rss_after_import_mb": rss}


def build(machine: str, out: Path, *, sources_only: bool, python: str, products: bool = False) -> Path:
    """A bundle for `machine` built by the same bundler `make synth` uses (`products`: theirs)."""
    from dupcheck.core.catalog.products import default_model_path
    from infra import bundling

    if sources_only:  # for the measurement only: the bundler itself always compiles
        bundling.compile_bytecode = lambda root, keep_sources, python: None  # type: ignore[assignment]
    bundling.lambda_python = lambda: python  # type: ignore[assignment]
    if products:
        bundling.LocalBundler(machine=machine, requirements=(bundling.REQUIREMENTS, bundling.PRODUCTS_REQUIREMENTS),
                              model=default_model_path()).try_bundle(str(out), None)  # fmt: skip
    else:
        bundling.LocalBundler(machine=machine).try_bundle(str(out), None)
    return out


def cold_imports_in_turn(python: str, module: str, paths: dict[str, str]) -> dict[str, float]:
    """Median cold import of `module` from each bundle, the bundles taken in turn every run."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(RUNS):
        for name, path in paths.items():
            samples[name].append(
                cold_import_s(python, module, path, runs=1) - cold_import_s(python, None, path, runs=1)
            )
    return {name: round(statistics.median(values), 3) for name, values in samples.items()}


def source_tree(revision: str, out: Path) -> Path:
    """The repository at `revision`, unpacked into `out`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def cold_import_s(python: str, module: str | None, path: str, runs: int = RUNS) -> float:
    code = f"import {module}" if module else "pass"
    products = module in PRODUCTS_HANDLERS  # they load the model at import (DUPCHECK_PRODUCTS=on, as deployed)
    env = {**os.environ, **ENV, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path,
           **({"DUPCHECK_PRODUCTS": "on"} if products else {})}  # fmt: skip
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([python, "-c", code], check=True, env=env, cwd=tempfile.gettempdir())
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


# Peak memory of one find on the largest images a request may carry: a 12 MP camera JPEG
# (decoded at reduced DCT scale) and a PNG at the 40 MP pixel limit (no reduced decode).
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
PEAK_SCRIPT = """
import re, sys, tempfile
from pathlib import Path
from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
data = Path(sys.argv[1]).read_bytes()
svc = build_service(Settings.from_env({}, data_dir=tempfile.mkdtemp()))
before = hwm()
svc.lookups.find_similar_bytes(data, 5)
print(before, hwm())
"""


def peak_rss_mb(width: int, height: int, fmt: str) -> tuple[float, float]:
    """(RSS once ready, peak RSS after one find) of a fresh process, in MB."""
    from dupcheck_tools.samples import product_image

    with tempfile.NamedTemporaryFile(suffix=f".{fmt.lower()}") as image:
        product_image(1, (width, height)).save(image.name, fmt)
        out = subprocess.run(
            [sys.executable, "-c", PEAK_SCRIPT, image.name], check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="a CPython 3.12 (default: the one the bundler finds)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory figures")
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out", help="a synth's output (default cdk.out)")
    parser.add_argument("--build", metavar="MACHINE", help="build a bundle for x86_64 or aarch64 instead")
    parser.add_argument("--sources-only", action="store_true", help="with --build: no bytecode")
    parser.add_argument("--products", action="store_true", help="the similar-products functions' asset instead")
    parser.add_argument("--against", metavar="REV", help="with --build: compare with the bundle of git revision REV")
    args = parser.parse_args()
    if not args.python:
        from infra.bundling import lambda_python

        args.python = lambda_python()
    with tempfile.TemporaryDirectory() as runtime, tempfile.TemporaryDirectory() as built:
        handlers = PRODUCTS_HANDLERS if args.products else HANDLERS
        if args.build:
            bundle = build(args.build, Path(built), sources_only=args.sources_only, python=args.python,
                           products=args.products)  # fmt: skip
        else:
            bundle = bundle_dir(args.cdk_out, handlers)
        results: dict[str, object] = {"asset": {"path": bundle.name[:20], **contents(bundle)}}
        if args.build and args.build != platform.machine():
            print(json.dumps(results))
            return  # its libraries cannot load here
        runtime_boto3(args.python, Path(runtime))
        path = f"{bundle}{os.pathsep}{runtime}"
        if args.against:
            with tempfile.TemporaryDirectory() as tree, tempfile.TemporaryDirectory() as other:
                from infra import bundling

                source = source_tree(args.against, Path(tree))
                bundling.LocalBundler(package_dir=source / "lambdas" / "dupcheck", requirements=(
                    source / "requirements.txt",), machine=args.build).try_bundle(other, None)  # fmt: skip
                results[f"asset_at_{args.against}"] = contents(Path(other))
                paths = {"this": path, args.against: f"{other}{os.pathsep}{runtime}"}
                for module in handlers:
                    results[f"{module} cold_import_s"] = cold_imports_in_turn(args.python, module, paths)
            print(json.dumps(results))
            return
        if not args.products:
            results["smoke"] = smoke(args.python, path)
            results["snapstart_hooks"] = snapstart_hooks(args.python, path)
        baseline = cold_import_s(args.python, None, path)
        results["interpreter_start_s"] = round(baseline, 3)
        for module in handlers:
            total = cold_import_s(args.python, module, path)
            results[module] = {
                "cold_import_s": round(total - baseline, 3),
                "ratio_to_interpreter_start": round(total / baseline, 1),
            }
    if not args.no_memory and not args.products:
        for label, (width, height, fmt) in {"jpeg_12mp": (4000, 3000, "JPEG"), "png_40mp": (8000, 5000, "PNG")}.items():
            ready, peak = peak_rss_mb(width, height, fmt)
            results[f"find_peak_rss_{label}"] = {"ready_mb": round(ready), "peak_mb": round(peak)}
    for name, figure in results.items():
        print(f"{name}: {figure}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
