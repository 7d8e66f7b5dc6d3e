"""Lambda package size and cold import time of each handler module.

Size: the unzipped code asset `make synth` bundled (one asset shared by both functions),
against Lambda's 250 MB limit. Cold import: a fresh interpreter importing the handler module
with deployment-like settings, against a fresh interpreter importing nothing (the baseline in
the same run), median of several runs.

    make synth && .venv/bin/python scripts/bench/package_bench.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_LIMIT_MB = 250
RUNS = 7
# What the functions see: AWS adapters (built lazily, so no network at import) and no X-Ray daemon.
ENV = {
    "DUPCHECK_STORE": "dynamodb",
    "DUPCHECK_INDEX": "opensearch",
    "DUPCHECK_TABLE_NAME": "dupcheck-hashes",
    "DUPCHECK_OPENSEARCH_ENDPOINT": "search-dupcheck.us-east-1.es.amazonaws.com",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def asset_size_mb() -> tuple[str, float] | None:
    template = ROOT / "cdk.out" / "Dupcheck.template.json"
    if not template.exists():
        return None
    resources = json.loads(template.read_text())["Resources"].values()
    keys = {r["Properties"]["Code"]["S3Key"] for r in resources if r["Type"] == "AWS::Lambda::Function"}
    sizes = {}
    for key in keys:
        folder = ROOT / "cdk.out" / f"asset.{key.removesuffix('.zip')}"
        sizes[key] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    key, size = max(sizes.items(), key=lambda item: item[1])
    return f"{len(keys)} asset(s), largest {key[:12]}", size


def cold_import_s(module: str | None) -> float:
    code = f"import {module}" if module else "pass"
    env = {**os.environ, **ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
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
svc.find_similar_bytes(data, 5)
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
    results: dict[str, object] = {}
    size = asset_size_mb()
    if size:
        label, mb = size
        results["asset"] = {
            "what": label,
            "unzipped_mb": round(mb, 1),
            "share_of_limit": round(mb / LAMBDA_LIMIT_MB, 2),
        }
    else:
        results["asset"] = "no cdk.out: run `make synth` first"
    baseline = cold_import_s(None)
    results["interpreter_start_s"] = round(baseline, 3)
    for module in ("dupcheck.handlers.find_similar", "dupcheck.handlers.stream_sync"):
        total = cold_import_s(module)
        results[module] = {
            "cold_import_s": round(total - baseline, 3),
            "ratio_to_interpreter_start": round(total / baseline, 1),
        }
    for label, (width, height, fmt) in {"jpeg_12mp": (4000, 3000, "JPEG"), "png_40mp": (8000, 5000, "PNG")}.items():
        ready, peak = peak_rss_mb(width, height, fmt)
        results[f"find_peak_rss_{label}"] = {"ready_mb": round(ready), "peak_mb": round(peak)}
    for name, figure in results.items():
        print(f"{name}: {figure}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
