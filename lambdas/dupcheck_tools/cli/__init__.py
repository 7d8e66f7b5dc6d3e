"""`python -m dupcheck`: every command of the command line, registered in one place.

Each command module (serve, items, batch, records, duplicates, migrate, evaluate) adds its
subcommands with `register` and runs them; every command builds what it needs through
`dupcheck.bootstrap`, from the same `DUPCHECK_*` settings as the server. Errors print as the
API's JSON error body (argparse's refusals too, with the refusing command's usage); exit codes
come from dupcheck_tools.exit_codes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dupcheck.bootstrap import one_blas_thread
from dupcheck.core.errors import DupcheckError, InvalidRequest
from dupcheck.core.settings import SettingsError
from dupcheck_tools.catalog import CatalogError
from dupcheck_tools.cli import batch, duplicates, evaluate, items, migrate, records, serve
from dupcheck_tools.cli.common import JsonArgumentParser, UsageError, usage_error
from dupcheck_tools.exit_codes import ExitCode


def build_parser() -> argparse.ArgumentParser:
    parser = JsonArgumentParser(
        prog=_prog(), description="dupcheck: near-duplicate image detection for e-commerce catalogs."
    )
    parser.add_argument("--data-dir", help="embedded store folder (default: DUPCHECK_DATA_DIR or ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests and progress")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, items, batch, records, duplicates, migrate, evaluate):
        module.register(commands)
    for command in commands.choices.values():
        command.set_defaults(parser=command)  # whose usage a refusal of its arguments shows
    return parser


def _prog() -> str:
    """How the command line was started: the `dupcheck` console script, or `python -m dupcheck`."""
    return "dupcheck" if Path(sys.argv[0]).name == "dupcheck" else "python -m dupcheck"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    one_blas_thread()  # the server and the batch tools judge small matrices (bootstrap.py)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args))
    except (UsageError, CatalogError) as exc:
        return usage_error(str(exc))
    except SettingsError as exc:
        return usage_error(str(exc), "invalid_settings")
    except InvalidRequest as exc:  # a value the command passed on as given (--max-distance 99)
        return usage_error(exc.message, exc.code)
    except DupcheckError as exc:
        print(json.dumps(exc.to_body()), file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:  # the batch commands summarise first; the others have nothing to keep
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout left (`| head`): stop quietly, and keep the interpreter's final
        # flush from raising again (the recipe of Python's signal module documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.BROKEN_PIPE
