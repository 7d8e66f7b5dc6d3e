#!/usr/bin/env python3
"""Ask the prototype and dupcheck the same questions, and report where they agree (the cut-over
check of docs/migration.md).

    python scripts/compare_answers.py --old http://prototype.example \
        --new https://abc123.execute-api.eu-west-1.amazonaws.com/v1 --api-key "$API_KEY" \
        --urls urls.txt [--top 3] [--out answers.csv] [--min-agreement 0.9]

For every image URL in `--urls` (one per line; `#` comments and blank lines skipped) it calls
`GET {old}/find_similar/?image_url=URL&top=N` (the prototype's call, no key) and
`GET {new}/find_similar/?image_url=URL&top=N` with `x-api-key`, and compares the entity ids
answered first. The prototype's answer shape is not dupcheck's: its ids are read from the
first list of objects with an `entity_id` anywhere in its JSON. Each URL is one row of `--out`
(CSV: url, old_first, new_first, same_first, new_verdict, old_error, new_error); the last stdout
line is the summary as JSON. Exit 0 when the share of URLs both answered with the same first id
is at least `--min-agreement` (default 0: report only), else 1.

A disagreement is a question to look at, not a dupcheck error by itself: the prototype's plain
pHash misses mirrored, cropped and padded copies and confuses products on white backgrounds
(docs/lab/evaluation.md), so some answers change on purpose.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from dupcheck_tools.spreadsheet import safe_row

REQUEST_TIMEOUT = 30.0  # API Gateway's own limit is 29 s
FIELDS = ("url", "old_first", "new_first", "same_first", "new_verdict", "old_error", "new_error")


def entity_ids(answer: Any) -> list[str]:
    """The entity ids of the first list of objects with an `entity_id`, searched depth first
    (dupcheck's `matches`, or whatever list the prototype answered with)."""
    if isinstance(answer, list) and any(isinstance(x, dict) and "entity_id" in x for x in answer):
        return [str(x["entity_id"]) for x in answer if isinstance(x, dict) and "entity_id" in x]
    children = answer.values() if isinstance(answer, dict) else answer if isinstance(answer, list) else []
    for child in children:
        if found := entity_ids(child):
            return found
    return []


def ask(session: requests.Session, base: str, image_url: str, top: int) -> tuple[Any, str]:
    """(JSON answer, "") or (None, what went wrong)."""
    try:
        response = session.get(
            f"{base.rstrip('/')}/find_similar/", params={"image_url": image_url, "top": top}, timeout=REQUEST_TIMEOUT
        )
    except requests.RequestException as exc:
        return None, type(exc).__name__
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        return response.json(), ""
    except ValueError:
        return None, "not JSON"


def read_urls(path: Path) -> Iterator[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def compare(args: argparse.Namespace) -> dict[str, Any]:
    old, new = requests.Session(), requests.Session()
    new.headers["x-api-key"] = args.api_key
    counts = {"urls": 0, "both_answered": 0, "same_first": 0, "old_errors": 0, "new_errors": 0}
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for url in read_urls(args.urls):
            (old_answer, old_error), (new_answer, new_error) = (
                ask(old, args.old, url, args.top),
                ask(new, args.new, url, args.top),
            )
            old_first = next(iter(entity_ids(old_answer)), "")
            new_ids = entity_ids(new_answer)
            new_first = new_ids[0] if new_ids else ""
            verdict = new_answer["matches"][0].get("verdict", "") if new_ids and isinstance(new_answer, dict) else ""
            both = not old_error and not new_error
            same = both and old_first == new_first
            counts["urls"] += 1
            counts["both_answered"] += both
            counts["same_first"] += same
            counts["old_errors"] += bool(old_error)
            counts["new_errors"] += bool(new_error)
            writer.writerow(dict(zip(FIELDS, safe_row((url, old_first, new_first, same, verdict, old_error,
                                                         new_error)), strict=True)))  # fmt: skip
    agreement = counts["same_first"] / counts["both_answered"] if counts["both_answered"] else 0.0
    return {**counts, "agreement": round(agreement, 4), "out": str(args.out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the prototype's base URL (its /find_similar/ is called)")
    parser.add_argument("--new", required=True, help="dupcheck's base URL with the stage, e.g. .../v1 (ApiUrl)")
    parser.add_argument("--api-key", required=True, help="dupcheck's x-api-key value")
    parser.add_argument("--urls", type=Path, required=True, help="image URLs to ask about, one per line")
    parser.add_argument("--top", type=int, default=3, help="matches asked for (default 3, the prototype's calls)")
    parser.add_argument("--out", type=Path, default=Path("answers.csv"), help="one row per URL (default answers.csv)")
    parser.add_argument("--min-agreement", type=float, default=0.0, help="exit 1 below this share (default 0)")
    args = parser.parse_args(argv)
    if not args.urls.is_file():
        print(json.dumps({"error": {"code": "usage", "message": f"no such file: {args.urls}"}}), file=sys.stderr)
        return 2
    summary = compare(args)
    print(json.dumps(summary), flush=True)
    return 0 if summary["agreement"] >= args.min_agreement else 1


if __name__ == "__main__":
    sys.exit(main())
