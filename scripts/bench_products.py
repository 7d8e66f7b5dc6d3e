#!/usr/bin/env python3
"""Name the product of every development photo, for make_benchmark.py's --products.

    python scripts/bench_products.py --sources ../shared/bench/sources.csv --out products.csv

Reads the development set's provenance (`name,source,origin`, ../shared/bench/README.md) and
writes `file,product`: pictures of one product share a name, so a held-out picture whose
product the catalog holds in another picture (another colour, the back, a close-up) is known to
have a relative there (docs/lab/evaluation.md, "Verdicts"). The names come from the sample stores'
own file names:

* Magento Luma: `<style>-<colour>_<view>.jpg` (mh01-black_main.jpg, mh01-gray_back.jpg): the
  style is the product; banners (gear-category-bags.jpg) are products of their own;
* Solidus: `solidus_<product>[_<colour>][_<n>].png`;
* UKBench: four consecutive numbers are four photos of one object;
* anything else (COCO scenes, others): a product of its own.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path, PurePosixPath

MAGENTO_STYLE = re.compile(r"^([a-z]{2,3}\d{2})-")
SOLIDUS_COLOURS = {"black", "red", "blue", "white", "green", "gray", "grey"}


def product_of(name: str, source: str, origin: str) -> str:
    """The product a development photo shows (see the module docstring)."""
    original = PurePosixPath(origin.split(":")[-1]).stem
    if source == "magento" and (style := MAGENTO_STYLE.match(original)):
        return f"magento:{style.group(1)}"
    if source == "solidus":
        words = [w for w in original.split("_")[1:] if not w.isdigit() and w not in SOLIDUS_COLOURS]
        return "solidus:" + "_".join(words)
    if source == "ukbench" and (number := re.search(r"(\d+)$", original)):
        return f"ukbench:{int(number.group(1)) // 4}"
    return f"{source}:{Path(name).stem}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=Path, required=True, help="sources.csv: name,source,origin")
    parser.add_argument("--out", type=Path, required=True, help="where to write file,product")
    args = parser.parse_args(argv)
    with args.sources.open(newline="") as fh:
        rows = [(r["name"], product_of(r["name"], r["source"], r["origin"])) for r in csv.DictReader(fh)]
    with args.out.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "product"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} pictures of {len({p for _, p in rows})} products to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
