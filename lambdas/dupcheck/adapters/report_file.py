"""DuplicateReports from a file: the newest `duplicates.json` that `python -m dupcheck duplicates`
or the server's scan wrote into a folder (locally `DATA_DIR/duplicates/`).

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
        return report_of(text, str(self.path))

    def publish(self, files: Mapping[str, bytes]) -> None:
        """Each file beside `path`, each replaced whole (a temporary file, then a rename), the
        report itself last: a reader sees the old report or the new one, never half of either."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name in sorted(files, key=lambda name: name == self.path.name):
                partial = folder / f"{name}.partial"
                partial.write_bytes(files[name])
                partial.replace(folder / name)
        except OSError as exc:
            raise StoreUnavailable(f"the duplicate report cannot be written to {folder}: {exc}") from exc


def report_of(text: str | bytes, where: str) -> Mapping[str, Any]:
    """The report a published file holds; StoreUnavailable (503, the store's fault) for one that is
    not a JSON object."""
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise StoreUnavailable(f"the duplicate report {where} is not valid JSON") from exc
    if not isinstance(report, dict):
        raise StoreUnavailable(f"the duplicate report {where} is not a JSON object")
    return report
