"""`migrate`: the prototype's hash_store (its DynamoDB table or an export) into dupcheck.

The engine is dupcheck_tools.migrate; options, progress, errors and the summary line follow the
other batch commands (cli/common.py)."""

from __future__ import annotations

import argparse
from typing import Any

from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import BackfillOptions, Target
from dupcheck_tools.cli.common import add_batch_arguments, run_batch
from dupcheck_tools.migrate import PICTURE_CHANGED_OVER, MigrationSummary, migrate


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate",
        help="move the prototype's hash_store (table or export) into the record store, re-hashing every image",
        description="Reads the prototype's items {entity_id, sku, small_image, phash}, maps small_image to "
        "image_url and re-hashes every image with the current pipeline (an old 64-bit phash cannot be "
        f"upgraded; it only tells which pictures changed since: pHash distance > {PICTURE_CHANGED_OVER}). "
        "Resumable like backfill: re-running skips rows already migrated. "
        "Exit 0: all stored, 1: some failed, 2: usage, 130: interrupted.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-table", metavar="TABLE",
        help="the prototype's DynamoDB table, e.g. hash_store (region, endpoint and credentials from the "
        "standard AWS settings: AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE)",
    )  # fmt: skip
    source.add_argument(
        "--from-file", metavar="EXPORT",
        help='a DynamoDB JSON export of it ({"Item": ...} per line, .json or .json.gz; a path or s3://bucket/key)',
    )  # fmt: skip
    parser.add_argument(
        "--image-base-url", help="the shop's media base URL, for small_image paths without a scheme (/m/h/x.jpg)"
    )
    add_batch_arguments(parser, failures_default="TABLE.failures.csv in the working folder, or next to EXPORT")
    parser.add_argument("--force", action="store_true", help="re-download and re-hash rows already migrated")
    parser.add_argument("--dry-run", action="store_true", help="read and check against the store only")
    parser.set_defaults(run=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    def job(options: BackfillOptions, target: Target, settings: Settings) -> MigrationSummary:
        return migrate(
            from_table=args.from_table, from_file=args.from_file, image_base_url=args.image_base_url,
            target=target, settings=settings, region=args.region, failures=args.failures, options=options,
        )  # fmt: skip

    return run_batch(args, job)
