#!/usr/bin/env python3
"""The dev set's SKUs, for `evaluate-products --skus`: one row per Magento picture of
../shared/bench/sources.csv, named by the SKU its original file name starts with.

    python scripts/bench/product_skus.py ../shared/bench/sources.csv > skus.csv

Magento's sample files are named `<sku>-<colour>_<view>.jpg` (mh02-black_main.jpg, mh02-black_back.jpg,
mh02-purple_main.jpg): the same SKU photographed from another angle or in another colour. Pictures
whose name does not start with a SKU (category banners, `luma-yoga-brick.jpg`) are left out.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

SKU = re.compile(r"^([a-z]{2,3}\d{2,3})[-_.]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("sources", type=Path, help="the dev set's sources.csv")
    args = parser.parse_args()
    with args.sources.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = csv.writer(sys.stdout)
    out.writerow(["name", "sku"])
    for row in rows:
        if row["source"] == "magento" and (found := SKU.match(row["origin"].rsplit("/", 1)[-1])):
            out.writerow([row["name"], found.group(1)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
