"""`export` and `import`: a store's records as JSON Lines and back (dupcheck_tools.records_file)."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import IO, Any

from dupcheck.bootstrap import build_store, build_thumbnails
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import Target, default_failures_path
from dupcheck_tools.cli.common import UsageError, add_target_arguments, run_job, show_progress
from dupcheck_tools.records_file import ExportSummary, ImportSummary, cyclic_gc_paused, export_records, import_records


def register(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="write every record of the store to a JSON Lines file (.gz compresses)",
        description="One JSON object per record, the fields GET /items/{id}?include=features returns and its "
        "thumbnail: a backup, or a catalog to import into another store. The file appears whole or not at all. "
        "Exit 0: written, 130: interrupted (nothing written).",
    )
    export.add_argument("--out", required=True, help="the file to write, e.g. catalog.jsonl or catalog.jsonl.gz")
    add_target_arguments(export)
    export.add_argument("--segments", type=int, default=4, help="DynamoDB parallel scan segments (default 4)")
    export.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    export.set_defaults(run=run_export)

    imports = commands.add_parser(
        "import",
        help="store the records of an export file (JSON Lines, .gz, or s3://): no download, no re-hash",
        description="Idempotent: a record the store holds with a later updated_at is kept, an identical one is "
        "not rewritten (--overwrite writes every line). Bad lines go to the failures file with their line "
        "number and reason; the import goes on. Exit 0: every line imported, 1: some lines failed, "
        "130: interrupted (re-run to finish).",
    )
    imports.add_argument("file", help="an export file (.jsonl, .jsonl.gz) or s3://bucket/key")
    add_target_arguments(imports)
    imports.add_argument("--overwrite", action="store_true", help="write every record, even over a newer one")
    imports.add_argument("--failures", help="failures file, .csv or .jsonl (default: next to the file)")
    imports.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    imports.set_defaults(run=run_import)


def is_catalog(path: Path) -> bool:
    """Whether a file is a catalog rather than a records export: its first line is a CSV header,
    or a JSON object without the `hash` every exported record has. Unreadable: not a catalog (the
    import says why)."""
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream: IO[bytes] = gzip.open(raw) if gzipped else raw  # type: ignore[assignment]  # noqa: SIM115
            first = next((line.strip() for line in stream if line.strip()), b"")
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    if not first.startswith(b"{"):
        return bool(first)
    try:
        fields = json.loads(first)
    except ValueError:
        return False
    return isinstance(fields, dict) and "hash" not in fields


def run_export(args: argparse.Namespace) -> int:
    def job(target: Target, settings: Settings) -> ExportSummary:
        return export_records(build_store(settings), Path(args.out), segments=args.segments,
                              progress=show_progress(args), thumbnails=build_thumbnails(settings))  # fmt: skip

    return run_job(args, job)


def run_import(args: argparse.Namespace) -> int:
    source = str(args.file)
    if not source.startswith("s3://") and is_catalog(Path(source)):
        raise UsageError(
            f"{source} is a catalog (rows of entity_id, sku and image_url), not an export file: `python -m dupcheck "
            f"backfill --catalog {source}` imports it as the web app's Import does (each picture downloaded, hashed "
            "and checked for duplicates: --on-duplicate), or POST it to /imports"
        )
    name = Path(source.rsplit("/", 1)[-1])
    failures = (
        Path(args.failures)
        if args.failures
        else default_failures_path((Path.cwd() / name) if source.startswith("s3://") else Path(source))
    )

    def job(target: Target, settings: Settings) -> ImportSummary:
        with cyclic_gc_paused():
            return import_records(build_store(settings), source, failures=failures, overwrite=args.overwrite,
                                  progress=show_progress(args), region=args.region,
                                  thumbnails=build_thumbnails(settings))  # fmt: skip

    return run_job(args, job)
