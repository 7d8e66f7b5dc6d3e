"""What every command shares: JSON output, usage errors, SIGTERM, and the batch commands' options."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, Protocol

from dupcheck.core.errors import error_body
from dupcheck.core.models import DEFAULT_MARKS, Marks, policies_meaning
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import BackfillOptions, Target, target_settings
from dupcheck_tools.catalog import CatalogError
from dupcheck_tools.exit_codes import ExitCode


def settings_for(args: argparse.Namespace, **overrides: Any) -> Settings:
    """DUPCHECK_* settings, with the global --data-dir, a command's --marks and any overrides."""
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "marks", None):
        overrides["marks"] = args.marks
    return Settings.from_env(**overrides)


def add_marks_argument(parser: argparse.ArgumentParser) -> None:
    """--marks: what a mark on the product means for this command (DUPCHECK_MARKS otherwise)."""
    parser.add_argument(
        "--marks", choices=[m.value for m in Marks], default=None,
        help=f"what a mark that lies on the product means: {policies_meaning(Marks)}; default DUPCHECK_MARKS, "
        f"{DEFAULT_MARKS.value}",
    )  # fmt: skip


def print_json(data: Any, *, indent: int | None = 2) -> None:
    sys.stdout.flush()
    print(json.dumps(data, indent=indent), flush=True)


class JsonArgumentParser(argparse.ArgumentParser):
    """argparse, with its refusals as the command line's JSON error line (exit 2) and the usage of
    the command that refused them, not a paragraph of plain text."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split())  # one line
        usage_error(f"{message} ({usage}; {self.prog} --help says more)")
        self.exit(ExitCode.USAGE)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # refused by the command they were given to, with its usage
            command = getattr(parsed, "parser", self)
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, not {text!r}")
        return value

    return parse


class UsageError(Exception):
    """Raised by a command for a user's mistake (a missing file or folder, a bad argument):
    `main` prints it as one JSON error line and exits 2, never with a traceback."""


def usage_error(message: str, code: str = "usage") -> ExitCode:
    print(json.dumps(error_body(code, message)), file=sys.stderr)
    return ExitCode.USAGE


class sigterm_as_interrupt:  # noqa: N801 - used as a context manager, like contextlib's
    """SIGTERM (docker stop, a stopped SageMaker job) is handled like Ctrl-C: flush and summarise."""

    def __enter__(self) -> None:
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


# -- batch commands (backfill, reindex, migrate) -----------------------------------------------


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """--target, --table, --region: which record store a command reads or writes."""
    parser.add_argument(
        "--target", choices=("local", "dynamodb"), default=None,
        help="record store: local SQLite (default unless DUPCHECK_STORE=dynamodb) or DynamoDB",
    )  # fmt: skip
    parser.add_argument("--table", help="DynamoDB table (default DUPCHECK_TABLE_NAME)")
    parser.add_argument("--region", help="AWS region (default DUPCHECK_AWS_REGION / AWS_REGION)")


def add_batch_arguments(parser: argparse.ArgumentParser, *, failures_default: str) -> None:
    add_target_arguments(parser)
    parser.add_argument("--workers", type=int, default=32, help="concurrent downloads (default 32)")
    parser.add_argument(
        "--hash-workers", type=int, default=0,
        help="hashing processes (default: one per CPU; -1 hashes in the download threads)",
    )  # fmt: skip
    parser.add_argument("--per-host", type=int, default=16, help="concurrent downloads per image host (default 16)")
    parser.add_argument("--retries", type=int, default=3, help="retries on 429/5xx/connection errors (default 3)")
    parser.add_argument("--batch-size", type=int, default=100, help="store reads/writes per call (default 100)")
    parser.add_argument("--failures", help=f"failures file, .csv or .jsonl (default: {failures_default})")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar on stderr (there is none when it is not a terminal)"
    )


def batch_options(args: argparse.Namespace) -> BackfillOptions:
    if args.workers < 1 or args.per_host < 1 or args.batch_size < 1 or args.retries < 0:
        raise CatalogError("--workers, --per-host and --batch-size must be >= 1 and --retries >= 0")
    return BackfillOptions(
        workers=args.workers, hash_workers=args.hash_workers, per_host=args.per_host, retries=args.retries,
        batch_size=min(args.batch_size, 100), force=getattr(args, "force", False),
        dry_run=getattr(args, "dry_run", False), progress=show_progress(args),
    )  # fmt: skip


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars go to stderr, and only when it is a terminal: a log file or a pipe gets the
    summary line alone. Every command that can take more than a few seconds shows one."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def batch_target(args: argparse.Namespace) -> tuple[Target, Settings]:
    """The target store (--target, else DUPCHECK_STORE) and its settings."""
    target: Target = args.target or ("dynamodb" if Settings.from_env().store == "dynamodb" else "local")
    settings = target_settings(target, table=args.table, region=args.region, data_dir=args.data_dir)
    if getattr(args, "marks", None):  # (a choice argparse checked)
        settings = settings.model_copy(update={"marks": args.marks})
    return target, settings


class Summary(Protocol):
    """What a batch run reports: its JSON summary line and the exit code it implies."""

    @property
    def exit_code(self) -> ExitCode: ...

    def to_dict(self) -> dict[str, Any]: ...


def run_job(args: argparse.Namespace, job: Callable[[Target, Settings], Summary]) -> int:
    """The shape of every command that works through a store: the target from --target/--table/
    --region, SIGTERM handled as Ctrl-C, and the summary as the last stdout line (exit 0, 1 or
    130 from the summary). A usage problem (CatalogError, SettingsError, UsageError) is left to
    `main`: one JSON line, exit 2."""
    target, settings = batch_target(args)
    with sigterm_as_interrupt():
        summary = job(target, settings)
    print_json(summary.to_dict(), indent=None)
    return summary.exit_code


def run_batch(args: argparse.Namespace, job: Callable[[BackfillOptions, Target, Settings], Summary]) -> int:
    """run_job for the commands that download (backfill, reindex, migrate): their options too."""
    options = batch_options(args)
    return run_job(args, lambda target, settings: job(options, target, settings))
