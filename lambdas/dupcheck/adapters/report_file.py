"""DuplicateReports from a file: the newest `duplicates.json` that `python -m dupcheck duplicates`
wrote into a folder (locally `DATA_DIR/duplicates/`).

The file is read on every request (a report is small, and a new one must show without a
restart). A writer replaces it whole (write a temporary file, then rename), so a reader never
sees half of one; a file that is not a JSON object is the store's fault, 503, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dupcheck.core.errors import StoreUnavailable

REPORT_NAME = "duplicates.json"


class DuplicateReportFile:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def latest(self) -> Mapping[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreUnavailable(f"the duplicate report {self.path} cannot be read: {exc}") from exc
        try:
            report = json.loads(text)
        except ValueError as exc:
            raise StoreUnavailable(f"the duplicate report {self.path} is not valid JSON") from exc
        if not isinstance(report, dict):
            raise StoreUnavailable(f"the duplicate report {self.path} is not a JSON object")
        return report
