"""`backfill` and `reindex`: the batch commands. Their engines live in dupcheck_tools.backfill
and dupcheck_tools.reindex; the last stdout line of each is its summary as JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dupcheck.bootstrap import build_store
from dupcheck.core.models import DEFAULT_POLICY, IMPORT_POLICIES, policies_meaning
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import BackfillOptions, BackfillSummary, Target, backfill_catalog
from dupcheck_tools.catalog import Columns
from dupcheck_tools.cli.common import add_batch_arguments, add_marks_argument, run_batch
from dupcheck_tools.exit_codes import ExitCode
from dupcheck_tools.reindex import ReindexReport, reindex


def register(commands: Any) -> None:
    backfill = commands.add_parser(
        "backfill",
        help="hash every image of a catalog file (CSV / JSON Lines, or s3://) into the record store",
        description="Concurrent, resumable: re-running skips rows the store already holds unchanged; "
        "every failed row lands in the failures file. Exit 0: all stored, 1: some failed, 130: interrupted.",
    )
    backfill.add_argument("--catalog", required=True, help="CSV or JSON Lines file (or s3://bucket/key)")
    add_batch_arguments(backfill, failures_default="next to the catalog")
    backfill.add_argument(
        "--resume", action="store_true", help="skip rows the store already holds unchanged (always on; see --force)"
    )
    backfill.add_argument("--force", action="store_true", help="re-download and re-hash every row")
    backfill.add_argument(
        "--dry-run", action="store_true", help="read and check against the store only: report what would be fetched"
    )
    backfill.add_argument("--id-column", default="entity_id", help="entity id column (default entity_id)")
    backfill.add_argument("--sku-column", default="sku", help="sku column (default sku; optional)")
    backfill.add_argument("--url-column", default=None, help="image URL column (default: image_url, else small_image)")
    backfill.add_argument("--image-base-url", help="base URL for relative image paths (small_image exports)")
    add_gate_argument(backfill)
    backfill.set_defaults(run=run_backfill)

    rebuild = commands.add_parser(
        "reindex",
        help="rebuild the search index from the store, re-hashing records of an older pipeline",
        description="Re-hashes every record whose hash_algo is not the current pipeline's (from its "
        "image_url), rebuilds the index from the store and checks that both agree.",
    )
    add_batch_arguments(rebuild, failures_default="DUPCHECK_DATA_DIR/reindex.failures.csv")
    rebuild.add_argument("--segments", type=int, default=4, help="DynamoDB parallel scan segments (default 4)")
    rebuild.set_defaults(run=run_reindex)


def run_backfill(args: argparse.Namespace) -> int:
    def job(options: BackfillOptions, target: Target, settings: Settings) -> BackfillSummary:
        summary = backfill_catalog(
            args.catalog, target=target, region=args.region, failures=args.failures,
            columns=Columns(args.id_column, args.sku_column, args.url_column),
            image_base_url=args.image_base_url, options=options, settings=settings, on_duplicate=args.on_duplicate,
        )  # fmt: skip
        if summary.failure_report:  # the JSON summary counts failures; this says why, and what to do
            print(summary.failure_report, file=sys.stderr)
        return summary

    return run_batch(args, job)


def add_gate_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--on-duplicate", choices=[p.value for p in IMPORT_POLICIES], default=None,
        help=f"the duplicate gate, for each row: {policies_meaning(IMPORT_POLICIES)}; warn's and skip's duplicates "
        f"are listed in the duplicates file; default DUPCHECK_ON_DUPLICATE, {DEFAULT_POLICY.value}",
    )  # fmt: skip
    add_marks_argument(parser)


def run_reindex(args: argparse.Namespace) -> int:
    def job(options: BackfillOptions, target: Target, settings: Settings) -> ReindexReport:
        failures = Path(args.failures) if args.failures else settings.data_dir / "reindex.failures.csv"
        report = reindex(
            settings, target=target, store=build_store(settings), failures=failures, options=options,
            segments=max(1, args.segments),
        )  # fmt: skip
        if not report.ok and not report.interrupted:
            print(f"reindex FAILED: {report.message}", file=sys.stderr)
        return report

    return run_batch(args, job)


__all__ = ["ExitCode", "register"]
