"""CSV cells a spreadsheet would evaluate are written as text (core/spreadsheet.py), after leading
whitespace too (issue 86: `' =2+2'` was written as it was), in the runtime's CSV answers and in
the tools' files alike."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from dupcheck.core.models import CatalogRow
from dupcheck.core.spreadsheet import csv_text, is_formula, safe_cell
from dupcheck_tools.backfill.failures import FailureLog
from dupcheck_tools.spreadsheet import safe_row

FORMULAS = ["=2+2", " =2+2", "   +1", "\t=1", "\r=1", "\n@SUM(A1)", "\u00a0-3", ' \t =HYPERLINK("x")', "@x", "-2"]
TEXT = ["plain", " plain", "a=b", "2+2", "", "   ", "'=already text", "x-1"]


@pytest.mark.parametrize("cell", FORMULAS)
def test_a_formula_after_leading_whitespace_is_written_as_text(cell: str) -> None:
    assert is_formula(cell) and safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", TEXT)
def test_text_that_is_no_formula_is_written_as_it_is(cell: str) -> None:
    assert not is_formula(cell) and safe_cell(cell) == cell


def test_values_that_are_not_text_are_written_as_they_are() -> None:
    assert safe_row([3, -2, 1.5, None, True]) == [3, -2, 1.5, None, True]


def test_a_csv_answer_reads_back_with_every_formula_as_text() -> None:
    """What the API's CSV answers go through (a job's results, the decisions' export)."""
    text = csv_text([["row", "entity_id", "sku"], *([i, cell, cell] for i, cell in enumerate(FORMULAS))])
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [row[1] for row in rows] == ["'" + cell for cell in FORMULAS]
    assert [row[0] for row in rows] == [str(i) for i in range(len(FORMULAS))]  # numbers as they are


def test_a_tools_failures_file_writes_a_formula_after_spaces_as_text(tmp_path: Path) -> None:
    log = FailureLog(tmp_path / "failures.csv")
    log.add(CatalogRow(1, " =2+2", "", " @evil"), "invalid_image", "  -404")
    log.close()
    with (tmp_path / "failures.csv").open(newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["entity_id"], row["image_url"], row["message"]) == ("' =2+2", "' @evil", "'  -404")
