"""Cells of the CSV files the tools write (duplicates.csv, failures files), safe to open in a
spreadsheet: the runtime's rule (dupcheck/core/spreadsheet.py), which the API's CSV answers use too."""

from __future__ import annotations

from dupcheck.core.spreadsheet import FORMULA_STARTS, is_formula, safe_cell, safe_row

__all__ = ["FORMULA_STARTS", "is_formula", "safe_cell", "safe_row"]
