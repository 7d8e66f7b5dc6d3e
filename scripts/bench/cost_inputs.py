"""The measured inputs of docs/deploy.md's cost table: what one catalog picture costs in each
store, in DynamoDB capacity units, and the CPU one check takes.

Each picture of a folder is hashed by the default pipeline into the record `POST /items` stores
(core/catalog/records.py `build_entry`), with a shop's fields: an id, a SKU and a 70-character CDN URL.
Sizes follow DynamoDB's item-size rules (attribute names plus values; a map's 3 bytes and 1 a
member); a write costs one unit per started KB, an eventually consistent read half a unit per
started 4 KB (a BatchGetItem counts each item on its own). A write through the duplicate gate
(adapters/dynamodb_claims.py) adds its claim's items: the picture item and the live item put,
the live item and the record in one transaction (twice a write's units), the live item deleted by
the stream sync function, and a strongly consistent query of each live partition (one read unit
each while a few writes are in flight); a write with `allow` puts a committed live item instead.

CPU of a check: half the pictures are registered in an embedded service (SQLite, the in-process
index: no network), then each is checked as a copy (resized to 90% and re-encoded, a duplicate)
and each other picture as a new product; `find_similar_bytes` (fingerprint, search, verify) is
timed with the thread's CPU clock, so a busy machine does not count. On Lambda the same work gets
1024/1769 of a vCPU at 1 GB (docs/deploy.md turns it into a duration).

    .venv/bin/python scripts/bench/cost_inputs.py [--images ../shared/bench/images]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from PIL import Image

from dupcheck.adapters.dynamodb_claims import GATE_CLAIM, SHARDS, live_item, picture_item
from dupcheck.adapters.dynamodb_store import record_to_item
from dupcheck.adapters.opensearch.schema import document
from dupcheck.bootstrap import build_service, one_blas_thread
from dupcheck.core.catalog.gate import new_claim_id
from dupcheck.core.catalog.records import build_entry
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import Claim, ClaimState, Entry
from dupcheck.core.settings import Settings
from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]
MAX_PIXELS = 40_000_000


def value_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one low-level attribute value."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "B":
        return len(inner)
    if kind == "N":
        digits = len(str(Decimal(inner).normalize()).replace("-", "").replace(".", "").lstrip("0"))
        return math.ceil(digits / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    raise ValueError(f"no size rule for {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def units(size: int) -> int:
    return math.ceil(size / 1024)


def write_units(entry: Entry) -> tuple[int, int]:
    """Write units of storing `entry` through the gate, checked (warn, skip, reject) and with `allow`."""
    now = time.time()
    claim = Claim(new_claim_id(), entry.record.entity_id, entry.record.hash, yields=False, lease_until=now + 10)
    live = units(item_size(live_item(claim, now)))
    committed = units(item_size(live_item(replace(claim, state=ClaimState.COMMITTED), now)))
    record = units(item_size({**record_to_item(entry.record), GATE_CLAIM: {"S": claim.claim_id}}))
    checked = units(item_size(picture_item(claim, entry, now))) + live + 2 * (live + record) + live
    return checked, 2 * (committed + record) + committed


def copy_of(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((image.width * 9 // 10, image.height * 9 // 10))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def find_cpu_ms(paths: list[Path]) -> dict[str, dict[str, float]]:
    """CPU milliseconds of one check, for copies and for new products (module doc)."""
    one_blas_thread()
    catalog, others = paths[::2], paths[1::2]
    with tempfile.TemporaryDirectory() as data_dir:
        service = build_service(Settings.from_env({}, data_dir=Path(data_dir)))
        for i, path in enumerate(catalog):
            service.registrar.register_bytes(entity_id=f"c{i}", sku="", image_url=f"https://cdn.example/{i}.jpg",
                                             data=path.read_bytes())  # fmt: skip
        timings: dict[str, list[float]] = {"copy": [], "new_product": []}
        queries = [("copy", copy_of(p.read_bytes())) for p in catalog] + [
            ("new_product", p.read_bytes()) for p in others
        ]
        for kind, data in queries:
            started = time.thread_time()
            service.lookups.find_similar_bytes(data, 5)
            timings[kind].append((time.thread_time() - started) * 1000)
    return {
        kind: {"median": round(statistics.median(t), 1), "p90": round(statistics.quantiles(t, n=10)[-1], 1)}
        for kind, t in timings.items()
    }


def measure(images: Path) -> dict[str, Any]:
    """Each picture of `images` as a stored record (sizes, write units) and the CPU of a check."""
    pipeline = get_pipeline()
    items, sources, thumbnails, checked, allowed = [], [], [], [], []
    for i, path in enumerate(sorted(images.glob("*.jpg"))):
        url = f"https://cdn.shop.example/images/catalog/2026/11/{path.stem:>24}.jpg"[:70]
        entry = build_entry(pipeline, path.read_bytes(), entity_id=f"SKU-{i:06d}-A", sku=f"MH{i:05d}-BLK",
                            image_url=url, max_pixels=MAX_PIXELS)  # fmt: skip
        items.append(item_size(record_to_item(entry.record)))
        source = document(entry.record, pipeline.index_bits, pipeline.index_parts)
        sources.append(len(json.dumps(source, separators=(",", ":"))))
        thumbnails.append(len(entry.thumbnail or b""))
        gated = write_units(entry)
        checked.append(gated[0])
        allowed.append(gated[1])
    cpu = find_cpu_ms(sorted(images.glob("*.jpg")))
    median, largest = statistics.median(items), max(items)
    return {
        "pictures": len(items),
        "pipeline": pipeline.algo,
        "dynamodb_item_bytes": {"median": median, "max": largest},
        "write_units": {"median": math.ceil(median / 1024), "max": math.ceil(largest / 1024)},
        "eventually_consistent_read_units": 0.5 * math.ceil(largest / 4096),
        "opensearch_source_bytes_median": statistics.median(sources),
        "gated_write": {
            "write_units": {"median": statistics.median(checked), "max": max(checked)},
            "allow_write_units": {"median": statistics.median(allowed), "max": max(allowed)},
            "strongly_consistent_read_units": SHARDS,
        },
        "thumbnail_bytes": {"median": statistics.median(thumbnails), "mean": round(statistics.mean(thumbnails))},
        "find_cpu_ms": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=BENCH_IMAGES)
    print(json.dumps(measure(parser.parse_args().images), indent=1))


if __name__ == "__main__":
    main()
