"""Evaluate similar products on a labelled image set: is another picture of the same product among
the most similar, against pHash's distance as the baseline.

    python -m dupcheck evaluate-products --catalog DIR --variants DIR --siblings CSV --skus CSV --out DIR

Every catalog picture and every colour variant is embedded as `/similar_products` embeds an upload
(core/catalog/products.py: the same decode, the same model, the same int8 vectors) and hashed with the
plain 64-bit pHash. Two tasks, each ranked by similarity (pHash: by Hamming distance; ties by name):

* colour variants: each picture of `--variants` against the whole catalog; where does its sibling
  (`--siblings`, CSV `variant,sibling`: the same product in another colour) rank;
* other angles: each catalog picture whose product (`--skus`, CSV `name,sku`) has another picture
  in the catalog, against the catalog without itself; where does the best-ranked other picture of
  its product rank (another view, or another colour, of the same SKU).

Reported per task and method: recall@5 (the share ranked in the top 5), the median rank, and the
similarity the true pictures get beside that of the 5th unrelated one (what a similarity means).
Writes products-evaluation.json and .md to --out; the last stdout line is the summary as JSON.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dupcheck.core.catalog.products import Embedder
from dupcheck.core.errors import DupcheckError
from dupcheck.core.fingerprint.hashing import PHash64
from dupcheck_tools.evaluation import UsageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
TOP = 5
MAX_PIXELS = 40_000_000


def _pictures(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _pairs(path: Path, columns: tuple[str, str]) -> list[tuple[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    if rows and not set(columns) <= set(rows[0]):
        raise UsageError(f"{path} needs the columns {', '.join(columns)}")
    return [(r[columns[0]], r[columns[1]]) for r in rows if r[columns[0]] and r[columns[1]]]


def rank_of(scores: np.ndarray, names: Sequence[str], targets: set[int]) -> int:
    """1-based rank of the best-scored of `targets` when sorted by score, highest first, ties by name."""
    order = sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))
    return next(r for r, i in enumerate(order, start=1) if i in targets)


def _summary(ranks: list[int]) -> dict[str, Any]:
    values = np.array(ranks)
    return {
        "queries": len(ranks),
        "recall_at_5": round(float((values <= TOP).mean()), 4) if ranks else None,
        "median_rank": float(np.median(values)) if ranks else None,
    }


def run_products_evaluation(
    catalog: Path, variants: Path, siblings: Path, skus: Path, out: Path, *, embedder: Embedder
) -> dict[str, Any]:
    catalog_files, variant_files = _pictures(catalog), _pictures(variants)
    names = list(catalog_files)
    index = {name: i for i, name in enumerate(names)}
    sibling_pairs = [(v, s) for v, s in _pairs(siblings, ("variant", "sibling")) if v in variant_files and s in index]
    sku_of = {name: sku for name, sku in _pairs(skus, ("name", "sku")) if name in index}
    if not names or not sibling_pairs:
        raise UsageError("no catalog picture, or no variant whose sibling is in the catalog")

    failed: list[dict[str, str]] = []
    phash = PHash64()
    started = time.perf_counter()

    def read(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        data = path.read_bytes()
        try:
            vector = embedder.embed_bytes(data, max_pixels=MAX_PIXELS).values()
            bits = np.unpackbits(
                np.frombuffer(phash.fingerprint_bytes(data, max_pixels=MAX_PIXELS).hash.data, np.uint8)
            )
        except DupcheckError as exc:
            failed.append({"file": path.name, "error": exc.message})
            return None
        return vector, bits

    catalog_read = [read(catalog_files[n]) for n in names]
    ok = [i for i, found in enumerate(catalog_read) if found is not None]
    vectors = np.zeros((len(names), 256), dtype=np.int32)
    hashes = np.zeros((len(names), 64), dtype=np.uint8)
    for i in ok:
        vectors[i], hashes[i] = catalog_read[i]  # type: ignore[misc]
    seconds = time.perf_counter() - started

    def scores_of(vector: np.ndarray, bits: np.ndarray) -> dict[str, np.ndarray]:
        """Each method's score of every catalog picture, higher is closer: the int8 dot product,
        minus pHash's Hamming distance."""
        return {"embedding": (vectors @ vector.astype(np.int32)).astype(np.float64),
                "phash": -(hashes != bits).sum(axis=1).astype(np.float64)}  # fmt: skip

    missing = np.ones(len(names), dtype=bool)
    missing[ok] = False
    tasks = ("colour_variants", "other_angles")
    results: dict[str, dict[str, list[int]]] = {task: {"embedding": [], "phash": []} for task in tasks}
    similarities: dict[str, list[float]] = {"true": [], "fifth_unrelated": []}

    def judge(task: str, query: tuple[np.ndarray, np.ndarray], targets: set[int], exclude: int | None) -> None:
        for method, scores in scores_of(*query).items():
            scores[missing] = -np.inf
            if exclude is not None:
                scores[exclude] = -np.inf
            results[task][method].append(rank_of(scores, names, targets))
            if method == "embedding" and task == "other_angles":
                unrelated = np.delete(scores, [*targets, *([exclude] if exclude is not None else [])])
                similarities["true"].append(float(max(scores[t] for t in targets)) / 254**2)
                similarities["fifth_unrelated"].append(float(np.sort(unrelated)[-TOP]) / 254**2)

    for variant, sibling in sibling_pairs:
        query = read(variant_files[variant])
        if query is not None and index[sibling] in ok:
            judge("colour_variants", query, {index[sibling]}, None)
    groups: dict[str, list[int]] = {}
    for name, sku in sku_of.items():
        groups.setdefault(sku, []).append(index[name])
    for members in groups.values():
        for i in members:
            others = {j for j in members if j != i and j in ok}
            if i in ok and others:
                judge("other_angles", catalog_read[i], others, i)  # type: ignore[arg-type]

    summary: dict[str, Any] = {
        "catalog": len(names),
        "variants": len(sibling_pairs),
        "products_with_several_pictures": sum(1 for m in groups.values() if len(m) > 1),
        "model": embedder.name,
        "failed_files": failed,
        "embedding_ms_per_picture": round(1000 * seconds / max(1, len(names)), 1),
    }
    for task, by_method in results.items():
        summary[task] = {method: _summary(ranks) for method, ranks in by_method.items()}
    summary["similarity"] = {key: round(float(np.median(v)), 3) if v else None for key, v in similarities.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "products-evaluation.json").write_text(json.dumps({"summary": summary, "ranks": results}, indent=1) + "\n")
    (out / "products-evaluation.md").write_text(markdown(summary))
    return summary


def markdown(summary: Mapping[str, Any]) -> str:
    rows = ["| task | queries | method | recall@5 | median rank |", "|---|---|---|---|---|"]
    for task, label in (("colour_variants", "colour-variant sibling"), ("other_angles", "another picture of the SKU")):
        for method, label_m in (("embedding", f"product embedding ({summary['model']})"), ("phash", "pHash distance")):
            r = summary[task][method]
            recall = f"{100 * r['recall_at_5']:.1f}%" if r["recall_at_5"] is not None else "-"
            rows.append(f"| {label} | {r['queries']} | {label_m} | {recall} | {r['median_rank']} |")
    similarity = summary["similarity"]
    return (
        "# Similar products\n\n" + "\n".join(rows) + "\n\n"
        f"Median similarity of the other picture of the SKU: {similarity['true']}; of the 5th most similar "
        f"unrelated picture: {similarity['fifth_unrelated']}.\n"
    )
