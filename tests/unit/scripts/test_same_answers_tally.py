"""scripts/same_answers.py's comparison of two evaluation reports: what moved, counted by kind."""

from __future__ import annotations

import json
from pathlib import Path

from support.scripts import load_script

same_answers = load_script("same_answers.py")


def report(*rows: tuple[str, list]) -> dict:
    return {"summary": {}, "rows": [{"query": q, "top": top, "error": None} for q, top in rows]}


def test_reports_are_compared_as_answers_and_each_kind_of_move_is_counted_once(tmp_path: Path) -> None:
    """A moved verdict (or order) counts only as such; edits that differ with the verdicts the
    same count as edits; percentages count per match, with the largest gap."""
    dup = ["a", 2, "duplicate", 99.5, [{"edit": "rotated", "degrees": 1.1}]]
    other = ["b", 12, "different", 40.5, None]
    first = report(("q1", [dup, other]), ("q2", [dup, other]), ("q3", [dup, other]))
    second = report(
        ("q1", [other, dup]),  # order
        ("q2", [dup[:4] + [[{"edit": "rotated", "degrees": 1.2}]], other[:3] + [40.1, None]]),
        ("q3", [dup, other]),
    )
    assert same_answers.tally(same_answers.answers_of(first), same_answers.answers_of(second)) == {
        "verdicts_or_order": 1, "edits": 1, "percentages_moved": 1, "largest_percentage_gap": 0.4,
    }  # fmt: skip
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(first))
    b.write_text(json.dumps(second))
    assert same_answers.compare(a, b) == 1
    a.write_text(json.dumps(second))
    assert same_answers.compare(a, b) == 0
