"""One pair, one judgement: a photograph's pictures stored and asked in every order.

    python -m dupcheck evaluate-pairs --pairs DIR --out DIR [--top 5]

Reads a benchmark scripts/make_pairs.py wrote (`pictures/<photo>__<kind>.<ext>`, `rounds.csv`).
Each round is a catalog of its own (a throw-away store, every stored picture registered under
its file stem), asked every picture the round lists, through the service find_similar runs on.
A record of the asked picture's photograph (the stem before `__`) is judged where the answer's
top `--top` lists it; one it does not list counts as not found. Writes pairs.json (the summary
and one row per record judged) and pairs.md; the last stdout line is the summary as JSON:

  original after its copy   the original asked, the catalog holding one copy of it: the share
                            called `duplicate`, in all and by the copy's kind
  copy after its original   a copy asked, the catalog holding its original: the same
  copy against copy         a copy asked, the catalog holding another kind's copy
  both ways                 each photo's pair of kinds stored and asked in both orders
                            (pairs-a, pairs-b): the share of pairs with one verdict both ways,
                            in all and by the pair of kinds
  two crops                 a crop of one side asked, the catalog holding a crop of another
                            (crops-a, crops-b): called `duplicate`, and one verdict both ways
  thrice                    the catalog holding each photo three times: of the photograph's
                            records, the share listed in the top and called `duplicate`
  named the right way       an original found after its copy: the share whose answer says the
                            catalog picture is the edited one, for the kinds that lose or add
                            what the original does not (a crop, padding, text, a badge, grey)
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dupcheck.core.errors import DupcheckError
from dupcheck_tools.evaluation import UsageError, close_service, progress

ROUNDS_FILE = "rounds.csv"
PICTURES = "pictures"
ORIGINAL = "original"
CUTS = ("cut_side", "cut_end")
# Kinds whose copy lost or gained what the original shows: the catalog picture is the edited one.
ONE_WAY_KINDS = ("crop_small", "crop_large", "pad_square", "watermark", "badge", "grayscale", "cut_side", "cut_end")


def photo_and_kind(stem: str) -> tuple[str, str]:
    photo, _, kind = stem.rpartition("__")
    if not photo:
        raise UsageError(f"{stem!r} is not <photo>__<kind>")
    return photo, kind


def read_rounds(folder: Path) -> dict[str, dict[str, list[str]]]:
    """{round: {"stored": [file], "asked": [file]}} from rounds.csv, every file checked to exist."""
    path = folder / ROUNDS_FILE
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    rounds: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        name, role, picture = (row.get(key) or "" for key in ("round", "role", "picture"))
        if role not in ("stored", "asked") or not name or not picture:
            raise UsageError(f"{path}: a row needs round, role (stored or asked) and picture: {row}")
        if not (folder / PICTURES / picture).is_file():
            raise UsageError(f"{path}: {picture} is not in {folder / PICTURES}")
        photo_and_kind(Path(picture).stem)
        rounds.setdefault(name, {"stored": [], "asked": []})[role].append(picture)
    if not rounds:
        raise UsageError(f"{path}: no rounds")
    return rounds


def run_pairs_evaluation(folder: Path, out: Path, *, top: int = 5, algo: str | None = None) -> dict[str, Any]:
    """Every round of the benchmark in `folder` asked; the summary (also in out/pairs.json)."""
    from dupcheck.bootstrap import build_service
    from dupcheck.core.fingerprint.hashing import DEFAULT_ALGO, get_pipeline
    from dupcheck.core.settings import Settings

    rounds = read_rounds(folder)
    pipeline = get_pipeline(algo or DEFAULT_ALGO)
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    started = time.perf_counter()
    for name, plan in rounds.items():
        with tempfile.TemporaryDirectory(prefix="dupcheck-eval-pairs-") as data_dir:
            service = build_service(Settings.from_env({}, data_dir=Path(data_dir)), pipeline=pipeline)
            try:
                stored = _register(service, folder / PICTURES, plan["stored"], failed)
                for picture in progress(plan["asked"], name):
                    rows.extend(_asked(service, folder / PICTURES / picture, name, stored, top, failed))
            finally:
                close_service(service)
    summary = {"algo": pipeline.algo, "top": top, **summarise(rows), "failed_files": failed,
               "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairs.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    (out / "pairs.md").write_text(render_markdown(summary))
    return summary


def _register(service: Any, pictures: Path, files: Sequence[str], failed: list[dict[str, str]]) -> dict[str, set[str]]:
    """Register a round's catalog; {photo: its records' ids}."""
    stored: dict[str, set[str]] = {}
    for name in files:
        path = pictures / name
        try:
            service.registrar.register_bytes(entity_id=path.stem, sku=path.stem, image_url=path.resolve().as_uri(),
                                             data=path.read_bytes())  # fmt: skip
        except (OSError, DupcheckError) as exc:
            failed.append({"file": name, "error": str(exc)})
            continue
        stored.setdefault(photo_and_kind(path.stem)[0], set()).add(path.stem)
    return stored


def _asked(
    service: Any, path: Path, round_name: str, stored: Mapping[str, set[str]], top: int, failed: list[dict[str, str]]
) -> Iterable[dict[str, Any]]:
    """One row per record of the asked picture's photograph: how the answer judged it."""
    photo, kind = photo_and_kind(path.stem)
    try:
        result = service.lookups.find_similar_bytes(path.read_bytes(), top)
    except (OSError, DupcheckError) as exc:
        failed.append({"file": path.name, "error": str(exc)})
        return []
    listed = {match.entity_id: match for match in result.matches}
    rows = []
    for record in sorted(stored.get(photo, ())):
        match = listed.get(record)
        rows.append({
            "round": round_name, "asked": path.stem, "photo": photo, "asked_kind": kind,
            "stored": record, "stored_kind": photo_and_kind(record)[1],
            "verdict": None if match is None else match.verdict.value,
            "match_percent": None if match is None else match.match_percent,
            "edited": None if match is None or getattr(match, "edited", None) is None else str(match.edited),
            "edit_summary": None if match is None else match.edit_summary,
        })  # fmt: skip
    return rows


def _share(rows: Sequence[Mapping[str, Any]], test: Any = None) -> dict[str, Any]:
    hits = sum(1 for row in rows if (row["verdict"] == "duplicate" if test is None else test(row)))
    return {"n": len(rows), "duplicate": hits / len(rows) if rows else None}


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    pairs = [r for r in rows if r["round"].startswith("pairs-")]
    after = [r for r in pairs if r["asked_kind"] == ORIGINAL]
    before = [r for r in pairs if r["stored_kind"] == ORIGINAL]
    copies = [r for r in pairs if ORIGINAL not in (r["asked_kind"], r["stored_kind"])]
    crops = [r for r in rows if r["round"].startswith("crops-")]
    thrice = [r for r in rows if r["round"] == "thrice"]
    right_way = [r for r in after if r["stored_kind"] in ONE_WAY_KINDS and r["verdict"] == "duplicate"]
    # The same pairs the other way: the copy asked with its original stored names itself the copy.
    copy_named = [r for r in before if r["asked_kind"] in ONE_WAY_KINDS and r["verdict"] == "duplicate"]
    return {
        "original_after_copy": {**_share(after), "by_kind": _by(after, "stored_kind")},
        "copy_after_original": {**_share(before), "by_kind": _by(before, "asked_kind")},
        "copy_against_copy": {**_share(copies), "by_pair": _by_pair(copies)},
        "both_ways": _both_ways(pairs),
        "two_crops": {**_share(crops), "agree": _both_ways(crops)["agree"]},
        "thrice": _share(thrice),
        "named_right_way": {
            **_named(right_way),
            "by_kind": {
                kind: _named([r for r in right_way if r["stored_kind"] == kind])
                for kind in sorted({r["stored_kind"] for r in right_way})
            },
        },  # fmt: skip
        "copy_named": _named(copy_named, edited="query"),
        "records_judged": len(rows),
    }


def _named(rows: Sequence[Mapping[str, Any]], edited: str = "catalog") -> dict[str, Any]:
    """How many pairs, and the share whose answer names the copy right: `edited` (the catalog
    picture for an original asked after its copy, the query for a copy asked after its original)."""
    return {"n": len(rows), "share": sum(r["edited"] == edited for r in rows) / len(rows) if rows else None}


def _by(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return {name: _share(groups[name]) for name in sorted(groups)}


def _by_pair(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pair of kinds (stored, asked): called duplicate."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(f"{row['stored_kind']} | {row['asked_kind']}", []).append(row)
    return {name: _share(groups[name]) for name in sorted(groups)}


def _both_ways(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pairs asked both ways (one photo, kinds A and B: A stored and B asked, and the reverse):
    how many, and the share with one verdict both ways (not listed counts as a verdict of its own),
    in all and by the pair of kinds ("A / B", in name order)."""
    verdict = {(r["photo"], r["stored_kind"], r["asked_kind"]): r["verdict"] for r in rows}
    both = [(key, other) for key in verdict if (other := (key[0], key[2], key[1])) in verdict and key < other]
    groups: dict[str, list[bool]] = {}
    for key, other in both:
        groups.setdefault(" / ".join(sorted(key[1:])), []).append(verdict[key] == verdict[other])
    return {**_agreed([same for group in groups.values() for same in group]),
            "by_kind": {name: _agreed(groups[name]) for name in sorted(groups)}}  # fmt: skip


def _agreed(same: Sequence[bool]) -> dict[str, Any]:
    return {"pairs": len(same), "agree": sum(same) / len(same) if same else None}


def render_markdown(summary: Mapping[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.1f}%"

    lines = [f"# dupcheck pairs evaluation: {summary['algo']}", "", "| question | n | result |", "|---|---|---|"]
    after, copies = summary["original_after_copy"], summary["copy_against_copy"]
    lines += [
        f"| the original asked after its copy: duplicate | {after['n']} | {pct(after['duplicate'])} |",
        f"| copy against copy: duplicate | {copies['n']} | {pct(copies['duplicate'])} |",
        f"| both ways: one verdict | {summary['both_ways']['pairs']} | {pct(summary['both_ways']['agree'])} |",
        f"| two crops from different sides: duplicate | {summary['two_crops']['n']} | "
        f"{pct(summary['two_crops']['duplicate'])} |",
        f"| two crops: one verdict both ways | | {pct(summary['two_crops']['agree'])} |",
        f"| a photograph stored three times: its records listed and duplicate | {summary['thrice']['n']} | "
        f"{pct(summary['thrice']['duplicate'])} |",
        f"| the catalog picture named as the edited one | {summary['named_right_way']['n']} | "
        f"{pct(summary['named_right_way']['share'])} |",
        f"| the copy asked after its original: named as the edited one | {summary['copy_named']['n']} | "
        f"{pct(summary['copy_named']['share'])} |",
        "", "## The original after its copy, by the copy's kind", "",
        "| copy stored | n | duplicate |", "|---|---|---|",
    ]  # fmt: skip
    lines += [f"| {kind} | {v['n']} | {pct(v['duplicate'])} |" for kind, v in after["by_kind"].items()]
    lines += ["", "## The catalog picture named as the edited one, by the copy's kind", "",
              "| copy stored | n | named the copy |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {kind} | {v['n']} | {pct(v['share'])} |" for kind, v in summary["named_right_way"]["by_kind"].items()]
    lines += ["", "## Copy against copy", "", "| stored | asked | n | duplicate |", "|---|---|---|---|"]
    for name, v in copies["by_pair"].items():
        stored, asked = name.split(" | ")
        lines.append(f"| {stored} | {asked} | {v['n']} | {pct(v['duplicate'])} |")
    return "\n".join(lines) + "\n"
