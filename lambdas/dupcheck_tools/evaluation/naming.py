"""How often the edits a match names are the edits that were made, where the benchmark knows them.

The benchmark's edits.jsonl (scripts/make_benchmark.py) lists every query's steps with their
parameters. A query counts when its first match is the picture it was made from, called a
duplicate (the edits of a wrong picture say nothing about naming). Per kind:

  queries   such queries
  named     of the steps that can be named, the share whose edit the match names
  right     of those named, the share whose parameters are right too: the turn within 1.5
            degrees, each side's crop within 3 points, the sign of a brightness, contrast or
            saturation change, the corner of a badge
  spurious  the share of queries where an edit is named that was not made

Steps that leave nothing to name (resizing, squashing, recompressing, and a tone or colour step
that changed nothing a viewer sees, which make_benchmark.py marks `"visible": false`: grayscale
of a picture without colour) count only towards `spurious`. Padding and framing are one family:
either name is right for either step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dupcheck.core.matching.edits import FRAMING, KINDS, MARK_KINDS, Carries
from dupcheck_tools.evaluation.metrics import Row, duplicate_hit, top1

# The benchmark's step -> the edit name that says it.
NAMES = {
    "crop": "cropped",
    "pad": "padded",
    "frame": "framed",
    "rotate": "rotated",
    "mirror": "mirrored",
    "brightness": "brightness",
    "contrast": "contrast",
    "saturation": "saturation",
    "grayscale": "grayscale",
    "watermark": "overlay",
    "badge": "overlay",
}
BORDERS = FRAMING - {"cropped"}  # the kinds that add a border
SIDES = ("left", "right", "top", "bottom")
TURN_TOLERANCE = 1.5  # degrees
CROP_TOLERANCE = 0.03  # share of a side


def read_edits(path: Path) -> dict[str, list[dict[str, Any]]]:
    """edits.jsonl: {query: [step, ...]}."""
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                item = json.loads(line)
                out[str(item["query"])] = list(item["edits"])
    return out


def _same(step_name: str, edit_name: str) -> bool:
    want = NAMES[step_name]
    # A mark named either way (`marked`: a print or an overlay, under marks=product) names the mark.
    return edit_name == want or any(want in group and edit_name in group for group in (BORDERS, MARK_KINDS))


def params_right(step: Mapping[str, Any], edit: Mapping[str, Any]) -> bool:
    """Whether a named edit's parameters agree with the step that made it."""
    kind = step["edit"]
    if kind == "rotate":
        return abs(float(edit["degrees"]) - float(step["degrees"])) <= TURN_TOLERANCE
    if kind == "crop":
        return max(abs(float(edit[side]) - float(step[side])) for side in SIDES) <= CROP_TOLERANCE
    if kind in NAMES and KINDS[NAMES[kind]].carries is Carries.CHANGE:
        return (float(edit["change"]) > 0) == (float(step["factor"]) > 1)
    if kind == "badge":
        return edit.get("where") == step["corner"]
    return True


def naming(rows: Sequence[Row], edits: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per kind (and "all"): queries, named, right, spurious (see the module docstring)."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        steps = edits.get(str(row["query"]))
        first = top1(row)
        if steps is None or first is None or not duplicate_hit(row) or len(first) < 5 or first[4] is None:
            continue
        tally(counts, (str(row.get("kind") or ""), "all"), steps, list(first[4]))
    return shares(counts)


def tally(
    counts: dict[str, dict[str, int]], kinds: Sequence[str], steps: Sequence[Mapping[str, Any]],
    named: Sequence[Mapping[str, Any]],
) -> None:  # fmt: skip
    """Count, under each of `kinds`, one copy made by `steps` whose edits were named as `named`
    (each an edit's dict: {"edit": "cropped", ...})."""
    nameable = [step for step in steps if step["edit"] in NAMES and step.get("visible", True)]
    for kind in kinds:
        c = counts.setdefault(kind, {"queries": 0, "steps": 0, "named": 0, "right": 0, "spurious": 0})
        c["queries"] += 1
        for step in nameable:
            c["steps"] += 1
            match = next((e for e in named if _same(step["edit"], e["edit"])), None)
            if match is not None:
                c["named"] += 1
                c["right"] += params_right(step, match)
        c["spurious"] += any(not any(_same(s["edit"], e["edit"]) for s in nameable) for e in named)


def shares(counts: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, Any]]:
    """`tally`'s counts as the shares the module docstring names, by kind."""
    return {
        kind: {
            "queries": c["queries"],
            "named": c["named"] / c["steps"] if c["steps"] else None,
            "right": c["right"] / c["named"] if c["named"] else None,
            "spurious": c["spurious"] / c["queries"],
        }
        for kind, c in sorted(counts.items())
    }
