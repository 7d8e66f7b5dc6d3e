"""The duplicate report and the duplicate scans' work files, in the imports bucket on S3.

* `reports/duplicates.json` (what `GET /duplicates` answers), `reports/duplicates.csv` and
  `reports/report.html`: the newest report, replaced by each scan that ends (the JSON last).
* `scans/<scan_id>/work.sqlite3`: a running scan's work file while it waits for its next
  invocation (the scan function hands over before Lambda's 15 minutes are up); removed when the
  scan ends, and by the bucket's lifecycle rule after RETENTION_DAYS if it never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.adapters.report_file import REPORT_NAME, report_of
from dupcheck.adapters.s3_files import _Bucket
from dupcheck.core.errors import NotFound
from dupcheck.core.jobs.scans import check_scan_id

REPORTS = "reports/"
SCANS = "scans/"
WORK_OBJECT = "work.sqlite3"
_TYPES = {".json": "application/json", ".csv": "text/csv; charset=utf-8", ".html": "text/html; charset=utf-8"}


class S3DuplicateReports(_Bucket):
    """DuplicateReports on S3 (module docstring)."""

    def latest(self) -> Mapping[str, Any] | None:
        key = REPORTS + REPORT_NAME
        try:
            data = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            failure = self._failed(exc, "GetObject", key)
            if isinstance(failure, NotFound):
                return None
            raise failure from exc
        return report_of(data, f"s3://{self.bucket}/{key}")

    def publish(self, files: Mapping[str, bytes]) -> None:
        for name in sorted(files, key=lambda name: name == REPORT_NAME):  # the report itself last
            key, kind = REPORTS + name, _TYPES.get(Path(name).suffix, "application/octet-stream")
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=files[name], ContentType=kind)
            except (ClientError, BotoCoreError) as exc:
                raise self._failed(exc, "PutObject", key) from exc


class S3ScanCheckpoints(_Bucket):
    """A running scan's work file between two invocations of the scan function."""

    def save(self, scan_id: str, work_file: Path) -> None:
        key = self._key(scan_id)
        try:
            self.client.upload_file(str(work_file), self.bucket, key)  # multipart, in parallel, when large
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "upload", key) from exc

    def restore(self, scan_id: str, work_file: Path) -> bool:
        """Download the scan's work file to `work_file`; False when it has none (a first run)."""
        key = self._key(scan_id)
        work_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, key, str(work_file))
        except (ClientError, BotoCoreError) as exc:
            failure = self._failed(exc, "download", key)
            if isinstance(failure, NotFound):
                return False
            raise failure from exc
        return True

    def discard(self, scan_id: str) -> None:
        key = self._key(scan_id)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "DeleteObject", key) from exc

    @staticmethod
    def _key(scan_id: str) -> str:
        return f"{SCANS}{check_scan_id(scan_id)}/{WORK_OBJECT}"
