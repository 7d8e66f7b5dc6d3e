"""`duplicates`: every group of duplicates already in the catalog (dupcheck_tools.duplicates)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dupcheck.bootstrap import build_reports, build_store, build_thumbnails
from dupcheck.core.models import Marks
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import Target
from dupcheck_tools.cli.common import UsageError, add_marks_argument, add_target_arguments, run_job, show_progress
from dupcheck_tools.duplicates import DEFAULT_RADIUS, FAR_BAND_UP_TO, FAR_RADIUS, DuplicatesSummary, find_duplicates
from dupcheck_tools.duplicates import UsageError as RunRefused
from dupcheck_tools.duplicates.scan_runs import REPORT_FILES


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "duplicates",
        help="find every group of duplicate pictures already in the catalog: duplicates.json, .csv, report.html",
        description="Reads the store once (a parallel scan on DynamoDB; no query per record to OpenSearch), "
        "pairs records in memory through the in-process index (a self-join at --radius bits), verifies each "
        "candidate pair as find_similar would, and writes duplicates.json (what GET /duplicates and the web "
        "app show), duplicates.csv and report.html to --out. Exit 0: every record compared, 1: some records "
        "could not be (another pipeline: run reindex), 130: interrupted (run again with --resume).",
    )
    parser.add_argument("--out", help="folder for the report files (default: DUPCHECK_DATA_DIR/duplicates, "
                        "where the local server and its web app read the latest report)")  # fmt: skip
    add_target_arguments(parser)
    parser.add_argument("--segments", type=int, default=4, help="DynamoDB parallel scan segments (default 4)")
    parser.add_argument(
        "--radius", type=int, default=DEFAULT_RADIUS,
        help=f"candidates: records whose hashes are within this many bits (default {DEFAULT_RADIUS}, at most 11)",
    )  # fmt: skip
    parser.add_argument(
        "--far-radius", type=int, default=None,
        help=f"the far band: each record's nearest candidate within this many bits of its stored or padded-back "
        f"hash, beyond --radius (large crops, rotations); 0: none (default {FAR_RADIUS} up to {FAR_BAND_UP_TO:,} "
        "records compared, none above: its join grows with the catalog's square)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=0, help="verification processes (default: one per CPU)")
    parser.add_argument(
        "--resume", action="store_true",
        help="go on from an interrupted run's work file in --out instead of starting again",
    )  # fmt: skip
    parser.add_argument(
        "--publish", action="store_true",
        help="also publish the report where GET /duplicates and the web app read it: DATA_DIR/duplicates for the "
        "local store, the imports bucket for --target dynamodb (DUPCHECK_IMPORTS_BUCKET: the stack's "
        "ImportsBucketName output)",
    )  # fmt: skip
    add_marks_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(run=run_duplicates)


def run_duplicates(args: argparse.Namespace) -> int:
    if args.segments < 1 or args.workers < 0 or (args.far_radius is not None and args.far_radius < 0):
        raise UsageError("--segments must be >= 1, --workers and --far-radius >= 0")

    def job(target: Target, settings: Settings) -> DuplicatesSummary:
        if args.publish and target == "dynamodb" and not settings.imports_bucket:
            raise UsageError("--publish to AWS needs the imports bucket: set DUPCHECK_IMPORTS_BUCKET to the stack's "
                             "ImportsBucketName output")  # fmt: skip
        out = Path(args.out) if args.out else settings.data_dir / "duplicates"
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file: the report is a folder (duplicates.json, .csv, report.html)")
        source = f"dynamodb:{settings.table_name}" if target == "dynamodb" else f"sqlite:{settings.sqlite_path}"
        try:
            summary = find_duplicates(
                build_store(settings), out, source=source, radius=args.radius, far_radius=args.far_radius,
                workers=args.workers,
                segments=args.segments, resume=args.resume, progress=show_progress(args),
                thumbnails=build_thumbnails(settings), marks=Marks(settings.marks),
            )  # fmt: skip
        except RunRefused as exc:
            raise UsageError(str(exc)) from exc
        except OSError as exc:  # the folder cannot be written (permissions, a full disk)
            raise UsageError(f"cannot write the report to {out}: {exc}") from exc
        for warning in (summary.skipped.get("message"), summary.not_verified.get("message")):
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
        if args.publish and not summary.interrupted:
            build_reports(settings).publish({name: (out / name).read_bytes() for name in REPORT_FILES})
        return summary

    return run_job(args, job)
