"""What dupcheck costs on AWS: docs/deploy.md's arithmetic ("Cost", "Cost per million rows") on
list prices and the sizes and CPU that scripts/bench/cost_inputs.py measures, into the totals
docs/results.md gives (docs/results/cost.json).

The prices are on-demand us-east-1 list prices as of writing (each service's pricing page);
a month is 730 hours; taxes, data transfer and free tiers are left out. The nodes are the stack's
profile defaults (infra/stack.py); a catalog whose HNSW graph does not fit the k-NN memory of a
profile's node (half its RAM, OpenSearch's circuit breaker) is priced on the next memory-optimised
node that holds it, as docs/deploy.md's "On paper" does.

    .venv/bin/python scripts/bench/cost.py [--images ../shared/bench/images] [--inputs measured.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashPart
from dupcheck.core.settings import Settings
from infra.components.api import MEMORY_MB as FIND_SIMILAR_MB
from infra.stack import PROFILE_DEFAULTS
from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]

HOURS_A_MONTH = 730
GB = 1e9
GIB = 2**30


class Node(NamedTuple):
    hourly_usd: float
    ram_gib: int


NODES = {
    "t3.small.search": Node(0.036, 2),
    "m6g.large.search": Node(0.128, 8),
    "r7g.large.search": Node(0.178, 16),
    "r7g.xlarge.search": Node(0.356, 32),
    "r7g.2xlarge.search": Node(0.712, 64),
}
MEMORY_OPTIMISED = ["r7g.large.search", "r7g.xlarge.search", "r7g.2xlarge.search"]
GP3_GB_MONTH = 0.122
DYNAMODB_GB_MONTH, PITR_GB_MONTH = 0.25, 0.20
S3_GB_MONTH = 0.023
ALARM_METRIC_MONTH = 0.10
ALARM_METRICS = 14  # the metrics the stack's alarms watch (tests/infra/test_deploy_doc.py counts them)
EMPTY_RECEIVES_A_MONTH = 1.95e6  # the three queues functions poll: imports' starts and rows, scans
SQS_PER_MILLION = 0.40
SNAPSTART_CACHE_GB_S = 0.0000015046
SNAPSTART_RESTORE = 0.0001398
RESTORES_A_CHECK = 0.01  # AWS's figure for the share of invocations that start an environment
LAMBDA_REQUEST_PER_MILLION = 0.20
LAMBDA_GB_S_ARM64 = 0.0000133334
API_GATEWAY_REST_PER_MILLION = 3.50
DYNAMODB_READ_PER_MILLION, DYNAMODB_WRITE_PER_MILLION = 0.125, 0.625
S3_GET_PER_MILLION, S3_PUT_PER_MILLION = 0.40, 5.00
XRAY_TRACE_PER_MILLION = 5.00
LOGS_GB = 0.50

FIND_SIMILAR_GB = FIND_SIMILAR_MB / 1024
VCPU_SHARE = FIND_SIMILAR_MB / 1769  # Lambda gives a function a vCPU's share of its memory over 1,769 MB
# Waits of one check in the region: the picture from the shop's CDN, _msearch, BatchGetItem, a
# kept picture from S3 (docs/deploy.md "Cost"; the function's Duration metric replaces them).
WAITS_MS = 100 + 15 + 10 + 20
CANDIDATES_READ = 40  # the records a check reads, whatever the catalog holds
KEPT_PICTURE_READS = 1  # those the same-photograph test looks at, about one a check
LOG_KB_A_CHECK = 1.5

# One import of a million new rows (docs/deploy.md "Cost per million rows"), batches of 10.
BATCHES = 100_000
WORKER_S_A_BATCH = 1.5  # 8 downloads at once from a host answering in ~200 ms, the hashing: an estimate
DISPATCHER_S = 1800
SQS_REQUESTS_A_ROW = 0.3
JOB_WRITE_UNITS_A_ROW, JOB_READ_UNITS_A_ROW = 2.2, 0.2
CATALOG_AND_LOGS = 0.06
STREAM_SYNC_INVOCATIONS, STREAM_SYNC_GB_S = 10_000, 0.5


def hnsw_bytes_a_record(settings: Settings, index_bits: int, parts: Sequence[HashPart]) -> float:
    """OpenSearch's estimate for a binary vector's HNSW graph, 1.1 x (dimension / 8 + 8 m), for the
    hash and each of its parts (a vector of its own)."""
    dimensions = (index_bits, *(part.bits for part in parts))
    return sum(1.1 * (bits / 8 + 8 * settings.opensearch_m) for bits in dimensions)


def node_for(profile: dict[str, Any], graph_bytes_a_node: float) -> str:
    """The profile's node, or the smallest memory-optimised one whose k-NN memory holds the graph."""
    default = profile["searchInstanceType"]
    for name in [default, *MEMORY_OPTIMISED]:
        if graph_bytes_a_node <= NODES[name].ram_gib * GIB / 2:
            return name
    raise ValueError(f"{graph_bytes_a_node / GIB:.1f} GiB of graph a node: more nodes, not a bigger one")


def fixed_per_month(inputs: dict[str, Any], records: int, profile_name: str) -> tuple[str, dict[str, float]]:
    """The search node priced and the fixed items of a month, for a catalog of `records`."""
    profile = PROFILE_DEFAULTS[profile_name]
    nodes = profile["searchNodeCount"]
    copies = min(nodes, 2)  # a primary and, on two nodes or more, one replica
    pipeline = get_pipeline(inputs["pipeline"])
    graph = records * hnsw_bytes_a_record(Settings(), pipeline.index_bits, pipeline.index_parts) * copies / nodes
    node = node_for(profile, graph)
    table_gb = records * inputs["dynamodb_item_bytes"]["median"] / GB
    return node, {
        "opensearch_nodes": nodes * NODES[node].hourly_usd * HOURS_A_MONTH,
        "opensearch_storage": nodes * profile["searchVolumeGiB"] * GP3_GB_MONTH,
        "dynamodb_storage": table_gb * DYNAMODB_GB_MONTH,
        "dynamodb_pitr": table_gb * PITR_GB_MONTH,
        "kept_pictures": records * inputs["thumbnail_bytes"]["mean"] / GB * S3_GB_MONTH,
        "alarms": ALARM_METRICS * ALARM_METRIC_MONTH,
        "queue_polling": EMPTY_RECEIVES_A_MONTH * SQS_PER_MILLION / 1e6,
        "snapstart_cache": FIND_SIMILAR_GB * HOURS_A_MONTH * 3600 * SNAPSTART_CACHE_GB_S,
    }


def per_million_checks(inputs: dict[str, Any]) -> dict[str, float]:
    seconds = (inputs["find_cpu_ms"]["copy"]["median"] / VCPU_SHARE + WAITS_MS) / 1000
    million = 1e6
    return {
        "api_gateway": API_GATEWAY_REST_PER_MILLION,
        "lambda_requests": LAMBDA_REQUEST_PER_MILLION,
        "lambda_duration": FIND_SIMILAR_GB * seconds * LAMBDA_GB_S_ARM64 * million,
        "snapstart_restores": RESTORES_A_CHECK * SNAPSTART_RESTORE * million,
        "dynamodb_reads": CANDIDATES_READ * inputs["eventually_consistent_read_units"] * DYNAMODB_READ_PER_MILLION,
        "s3_kept_picture_reads": KEPT_PICTURE_READS * S3_GET_PER_MILLION,
        "xray": XRAY_TRACE_PER_MILLION,
        "logs": LOG_KB_A_CHECK * 1e3 * million / GB * LOGS_GB,
    }


def per_million_rows(inputs: dict[str, Any]) -> dict[str, float]:
    gated = inputs["gated_write"]
    write_units = gated["write_units"]["median"]
    read_units = 1 + gated["strongly_consistent_read_units"]  # the row's BatchGetItem read, the live partitions
    job_units = JOB_WRITE_UNITS_A_ROW * DYNAMODB_WRITE_PER_MILLION + JOB_READ_UNITS_A_ROW * DYNAMODB_READ_PER_MILLION
    stream_sync = STREAM_SYNC_INVOCATIONS * (LAMBDA_REQUEST_PER_MILLION / 1e6 + STREAM_SYNC_GB_S * LAMBDA_GB_S_ARM64)
    return {
        "worker": BATCHES * LAMBDA_REQUEST_PER_MILLION / 1e6 + BATCHES * WORKER_S_A_BATCH * LAMBDA_GB_S_ARM64,
        "dispatcher": DISPATCHER_S * LAMBDA_GB_S_ARM64,
        "sqs": SQS_REQUESTS_A_ROW * SQS_PER_MILLION,
        "dynamodb_records": write_units * DYNAMODB_WRITE_PER_MILLION + read_units * DYNAMODB_READ_PER_MILLION,
        "dynamodb_jobs": job_units,
        "s3_thumbnails": S3_PUT_PER_MILLION,
        "catalog_and_logs": CATALOG_AND_LOGS,
        "stream_sync": stream_sync,
    }


def money(items: dict[str, float]) -> float:
    return sum(items.values())


def totals(inputs: dict[str, Any], sizes: tuple[int, ...] = (100_000, 1_000_000, 10_000_000)) -> dict[str, Any]:
    checks = per_million_checks(inputs)
    catalogs = []
    for records in sizes:
        node, fixed = fixed_per_month(inputs, records, "prod")
        catalogs.append({
            "records": records,
            "node": node,
            "fixed_per_month_usd": round(money(fixed)),
            "per_million_checks_usd": round(money(checks)),
        })  # fmt: skip
    return {
        "region": "us-east-1",
        "profile": "prod",
        "catalogs": catalogs,
        "dev_profile_per_month_usd": round(money(fixed_per_month(inputs, sizes[0], "dev")[1])),
        "import_per_million_rows_usd": round(money(per_million_rows(inputs))),
        "per_million_checks": {name: round(value, 2) for name, value in checks.items()},
        "inputs": inputs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=BENCH_IMAGES)
    parser.add_argument("--inputs", type=Path, help="cost_inputs.py's output, instead of measuring again")
    args = parser.parse_args()
    if args.inputs:
        inputs = json.loads(args.inputs.read_text())
    else:
        from scripts.bench.cost_inputs import measure

        inputs = measure(args.images)
    print(json.dumps(totals(inputs), indent=1))


if __name__ == "__main__":
    main()
