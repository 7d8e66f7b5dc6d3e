"""`evaluate` and `evaluate-duplicates`: detection quality on a labelled image set, per query and
catalog-wide (dupcheck_tools.evaluation)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dupcheck.core.models import DEFAULT_MARKS, Marks, policies_meaning
from dupcheck_tools.cli.common import print_json, usage_error
from dupcheck_tools.duplicates import DEFAULT_RADIUS
from dupcheck_tools.evaluation import UsageError, run_evaluation
from dupcheck_tools.evaluation.all_pairs import all_pairs_evaluation
from dupcheck_tools.evaluation.duplicates import run_duplicate_evaluation
from dupcheck_tools.exit_codes import ExitCode


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="measure detection quality on a labelled image set: recall, ranking, false duplicates per kind",
        description="Indexes every image in --catalog (entity_id = file stem) on a throw-away store, runs "
        "every query of --truth (CSV query,expected,kind; expected empty: no duplicate exists) and writes "
        "report.json, report.md and plots to --out. The last stdout line is the summary as JSON.",
    )
    _benchmark_arguments(
        parser, truth="CSV query,expected,kind[,source]", out="folder for report.json, report.md and plots",
        required=False,
    )  # fmt: skip
    parser.add_argument("--top", type=int, default=5, help="matches per query (default 5)")
    parser.add_argument(
        "--edits", type=Path, default=None,
        help="JSON Lines of every query's known edits, to score the edits matches name (default: edits.jsonl "
        "beside --truth, if there)",
    )  # fmt: skip
    parser.add_argument(
        "--relatives", type=Path, default=None,
        help="CSV query,relatives: catalog ids of the same product as a held-out picture (default: relatives.csv "
        "beside --truth, if there)",
    )  # fmt: skip
    parser.add_argument(
        "--all-pairs",
        action="store_true",
        help="precision at catalog scale instead: query every catalog picture against the catalog and count "
        "the other items called duplicate (with --queries and --truth, the catalog grows with every query file)",
    )
    parser.add_argument("--same", type=Path, help="with --all-pairs: CSV a,b of items known to be the same picture")
    parser.add_argument(
        "--marks", choices=[m.value for m in Marks], default=DEFAULT_MARKS.value,
        help=f"what a mark on the product means: {policies_meaning(Marks)} (default {DEFAULT_MARKS.value})",
    )  # fmt: skip
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="with --all-pairs: query each picture without its own record in the catalog, as a new product's "
        "picture is asked about (its own record otherwise passes at once, and the query is never turned)",
    )
    parser.set_defaults(run=run)

    catalog_wide = commands.add_parser(
        "evaluate-duplicates",
        help="measure the catalog-wide duplicate report on a labelled image set: pair precision and recall",
        description="Makes one catalog of the benchmark's catalog pictures, up to --copies edited copies of each "
        "(kinds balanced) and every negative query (held-out pictures, colour variants), runs `duplicates` on "
        "it, and scores its groups against the truth's `source` column (scripts/make_benchmark.py). Writes "
        "duplicates-evaluation.json and .md (and the report under report/) to --out; the last stdout line is "
        "the summary as JSON.",
    )
    _benchmark_arguments(catalog_wide, truth="CSV query,expected,kind,source", out="folder for the results and report")
    catalog_wide.add_argument("--copies", type=int, default=None, help="copies per catalog picture (default: all)")
    catalog_wide.add_argument(
        "--radius", type=int, default=DEFAULT_RADIUS, help=f"as duplicates --radius (default {DEFAULT_RADIUS})"
    )
    catalog_wide.add_argument(
        "--far-radius", type=int, default=None, help="as duplicates --far-radius (default: as duplicates)"
    )
    catalog_wide.add_argument(
        "--siblings", type=Path, default=None, help="CSV variant,sibling (default: the one beside --truth)"
    )
    catalog_wide.add_argument(
        "--same", type=Path, default=None,
        help="CSV a,b of pictures known to be the same one: scored as labelled and with each listed pair one picture",
    )  # fmt: skip
    catalog_wide.add_argument("--workers", type=int, default=0, help="verification processes (default: per CPU)")
    catalog_wide.add_argument(
        "--copies-first", action="store_true",
        help="register the copies before their originals (a shop whose supplier's edit came first): which "
        "record is the original is then the pictures' to tell alone",
    )  # fmt: skip
    catalog_wide.set_defaults(run=run_duplicates)

    pairs = commands.add_parser(
        "evaluate-pairs",
        help="measure one pair, one judgement: a photograph's pictures stored and asked in every order",
        description="Runs every round of a benchmark scripts/make_pairs.py wrote (--pairs: its pictures/ and "
        "rounds.csv), each on a throw-away store: the original asked after its copy, copy against copy, both ways, "
        "two crops from different sides, a catalog holding a photograph three times. Writes pairs.json and "
        "pairs.md to --out; the last stdout line is the summary as JSON.",
    )
    pairs.add_argument("--pairs", type=Path, required=True, help="the folder make_pairs.py wrote")
    pairs.add_argument("--out", type=Path, required=True, help="folder for pairs.json and pairs.md")
    pairs.add_argument("--top", type=int, default=5, help="matches per query (default 5)")
    pairs.add_argument("--algo", default=None, help="hash pipeline (default: the service's default)")
    pairs.set_defaults(run=run_pairs)

    products = commands.add_parser(
        "evaluate-products",
        help="measure similar products on a labelled image set: recall@5 and median rank, against pHash",
        description="Embeds every picture of --catalog and --variants as /similar_products does and ranks the "
        "catalog for each colour variant (is its --siblings sibling in the top 5?) and for each catalog picture "
        "whose SKU (--skus, CSV name,sku) has another picture (is one of those in the top 5?), by similarity and, "
        "as the baseline, by pHash distance. Writes products-evaluation.json and .md to --out; the last stdout "
        "line is the summary as JSON.",
    )
    products.add_argument("--catalog", type=Path, required=True, help="folder of catalog pictures")
    products.add_argument("--variants", type=Path, required=True, help="folder of colour variants (not in the catalog)")
    products.add_argument("--siblings", type=Path, required=True, help="CSV variant,sibling")
    products.add_argument("--skus", type=Path, required=True, help="CSV name,sku of the catalog pictures")
    products.add_argument("--out", type=Path, required=True, help="folder for the results")
    products.set_defaults(run=run_products)


def _benchmark_arguments(parser: argparse.ArgumentParser, *, truth: str, out: str, required: bool = True) -> None:
    """The benchmark folders make_benchmark.py writes, and the pipeline to measure."""
    parser.add_argument("--catalog", type=Path, required=True, help="folder of catalog images (entity_id = stem)")
    parser.add_argument("--queries", type=Path, required=required, help="folder holding the files named in --truth")
    parser.add_argument("--truth", type=Path, required=required, help=truth)
    parser.add_argument("--out", type=Path, required=True, help=out)
    parser.add_argument("--algo", default=None, help="hash pipeline (default: the service's default)")


def run(args: argparse.Namespace) -> int:
    if args.all_pairs:
        return run_all_pairs(args)
    if args.queries is None or args.truth is None or args.same is not None or args.leave_one_out:
        return usage_error(
            "--queries and --truth are required (--same and --leave-one-out only with --all-pairs)",
            code="invalid_request",
        )
    try:
        summary = run_evaluation(
            args.catalog, args.queries, args.truth, args.out, algo=args.algo, top=args.top,
            edits=args.edits, relatives=args.relatives, marks=args.marks,
        )  # fmt: skip
    except UsageError as exc:
        return usage_error(str(exc), code="invalid_request")
    for label, key in (("catalog", "catalog_failed_files"), ("query", "query_failed_files")):
        for entry in summary[key]:
            print(f"warning: {label} file {entry['file']} failed: {entry['error']}", file=sys.stderr)
    if summary["expected_not_in_catalog"]:
        print(f"warning: expected ids not in the catalog: {summary['expected_not_in_catalog']}", file=sys.stderr)
    print(f"wrote {args.out / 'report.json'}, report.md, distances.png, threshold.png")
    print_json(summary, indent=None)
    return ExitCode.OK


def run_duplicates(args: argparse.Namespace) -> int:
    try:
        result = run_duplicate_evaluation(
            args.catalog, args.queries, args.truth, args.out, copies=args.copies, radius=args.radius,
            far_radius=args.far_radius, siblings=args.siblings, same=args.same, algo=args.algo,
            workers=args.workers, copies_before=args.copies_first,
        )  # fmt: skip
    except (UsageError, ValueError) as exc:
        return usage_error(str(exc), code="invalid_request")
    return _reported(result, args.out / "duplicates-evaluation.json", "duplicates-evaluation.md, report/",
                     shown={k: v for k, v in result.items() if k != "per_kind"})  # fmt: skip


def run_pairs(args: argparse.Namespace) -> int:
    from dupcheck_tools.evaluation.pairs import run_pairs_evaluation

    if not 1 <= args.top <= 100:
        return usage_error("--top must be between 1 and 100", code="invalid_request")
    try:
        summary = run_pairs_evaluation(args.pairs, args.out, top=args.top, algo=args.algo)
    except UsageError as exc:
        return usage_error(str(exc), code="invalid_request")
    return _reported(summary, args.out / "pairs.json", "pairs.md")


def run_all_pairs(args: argparse.Namespace) -> int:
    if (args.queries is None) != (args.truth is None):
        return usage_error("--all-pairs grows the catalog with --queries and --truth together", code="invalid_request")
    try:
        summary = all_pairs_evaluation(args.catalog, args.out, queries=args.queries, truth=args.truth,
                                       same=args.same, algo=args.algo, leave_one_out=args.leave_one_out)  # fmt: skip
    except UsageError as exc:
        return usage_error(str(exc), code="invalid_request")
    return _reported(summary, args.out / "all_pairs.json", "all_pairs.md")


def run_products(args: argparse.Namespace) -> int:
    from dupcheck.bootstrap import build_embedder
    from dupcheck.core.settings import Settings
    from dupcheck_tools.evaluation.products import run_products_evaluation

    embedder = build_embedder(Settings.from_env(products="on"))  # refuses to start without the model
    assert embedder is not None
    try:
        summary = run_products_evaluation(args.catalog, args.variants, args.siblings, args.skus, args.out,
                                          embedder=embedder)  # fmt: skip
    except UsageError as exc:
        return usage_error(str(exc), code="invalid_request")
    return _reported(summary, args.out / "products-evaluation.json", "products-evaluation.md")


def _reported(summary: dict[str, Any], written: Path, beside: str, shown: dict[str, Any] | None = None) -> int:
    """An evaluation's end: each file that failed as a warning, what was written, the summary
    (or `shown` of it) as one JSON line."""
    for entry in summary["failed_files"]:
        print(f"warning: file {entry['file']} failed: {entry['error']}", file=sys.stderr)
    print(f"wrote {written}, {beside}")
    print_json(summary if shown is None else shown, indent=None)
    return ExitCode.OK
