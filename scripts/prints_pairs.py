#!/usr/bin/env python3
"""A make_prints.py benchmark laid out as a pairs benchmark: each copy and the picture it was
made from, asked both ways round.

    python scripts/prints_pairs.py --prints DIR --out DIR

reads make_prints.py's output (catalog/, queries/, truth.csv) and writes

    out/pictures/<base>__original.<ext>   the picture each copy was made from: the photo, its
                                          first print (<stem>__p1) or cover 1 of a template
    out/pictures/<query>                  each query as make_prints.py wrote it, its kind the
                                          name's last part (p2, p3, c2, c3, sticker, caption,
                                          caption_band, chest_badge, ...)
    out/rounds.csv                        round,role,picture for `python -m dupcheck evaluate-pairs`

Rounds: `pairs-copies`, every original stored and every copy asked (the copy asked with the
picture it was made from stored); `pairs-<kind>` for each kind, that kind's copies stored and
their originals asked (the original asked with its copy stored). Each catalog holds one record of
each pair's photo, so every verdict is the pair's own; evaluate-pairs' "both ways" then reads
each pair in both orders. The files are copied byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

ORIGINAL = "original"


def originals(prints: Path) -> dict[str, tuple[str, Path]]:
    """{query file: (the base it was made from, that picture's file in catalog/)}: the picture an
    overlay copied (`expected`), or for another print or cover, the template's first (`source`)."""
    catalog = {path.stem: path for path in (prints / "catalog").iterdir() if path.is_file()}
    made: dict[str, tuple[str, Path]] = {}
    with (prints / "truth.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            base = row["expected"] or row["source"]
            if base not in catalog:
                raise SystemExit(f"prints_pairs: {row['query']} was made from {base}, which catalog/ lacks")
            made[row["query"]] = (base, catalog[base])
    return made


def kind_of(query: str) -> str:
    """A query's kind as evaluate-pairs reads it: its name's last part."""
    return Path(query).stem.rpartition("__")[2]


def build(prints: Path, out: Path) -> dict[str, int]:
    made = originals(prints)
    pictures = out / "pictures"
    if pictures.exists():
        shutil.rmtree(pictures)
    pictures.mkdir(parents=True)
    stored_originals: dict[str, str] = {}
    plan: list[tuple[str, str, str]] = []
    for query, (base, source) in sorted(made.items()):
        original = f"{base}__{ORIGINAL}{source.suffix}"
        if base not in stored_originals:
            shutil.copyfile(source, pictures / original)
            stored_originals[base] = original
        shutil.copyfile(prints / "queries" / query, pictures / query)
        plan.append(("pairs-copies", "asked", query))
        plan.append((f"pairs-{kind_of(query)}", "stored", query))
        plan.append((f"pairs-{kind_of(query)}", "asked", original))
    plan += [("pairs-copies", "stored", original) for original in sorted(stored_originals.values())]
    plan = sorted(set(plan))
    with (out / "rounds.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("round", "role", "picture"))
        writer.writerows(plan)
    return {"copies": len(made), "originals": len(stored_originals), "rounds": len({name for name, _, _ in plan})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prints", type=Path, required=True, help="make_prints.py's output folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (pictures/ rewritten)")
    args = parser.parse_args(argv)
    try:
        counts = build(args.prints, args.out)
    except OSError as exc:
        print(f"prints_pairs: {exc}", file=sys.stderr)
        return 2
    print(f"prints_pairs: wrote {args.out}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
