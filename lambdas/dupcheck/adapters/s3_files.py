"""The imports bucket on S3: import catalogs (`catalogs/<job_id>`), kept images (`images/<name>`)
and jobs' results CSVs (`exports/<job_id>/...`).

A catalog too large for API Gateway (10 MB a request) goes straight to the bucket: `POST
/imports {"upload": true}` answers a presigned POST whose policy admits exactly that key and at
most the catalog limit (`content-length-range`: S3 itself refuses a larger file, which a
presigned PUT could not). The new object's event (EventBridge, `Object Created` under
`catalogs/`) starts the job: infra/components/imports.py wires it.

A catalog is read back into a temporary file: the dispatcher reads it twice (counting, then
sending), and a Lambda's /tmp holds far more than the catalog limit.

A kept image is written once, only if absent, tagged UNCLAIMED_TAG: the bucket's lifecycle rule
expires such objects after a day (infra/components/imports.py). The stream sync function claims
it (removes the tag) when a record names it, and deletes it when the last such record goes
(handlers/stream_sync.py), so a picture whose record never came, or whose write failed, expires.

A results CSV (`S3ResultFiles`) is written with a multipart upload fed a page of rows at a time, a
part of PART_BYTES at a time: what the API function holds is a page and a part, whatever the rows.
After each part the upload's progress (its id, its parts, the last row they hold) is saved beside
it (`<key>.progress`), so a CSV too long to write within one request is written on by the next;
the last part completes it. The client gets a presigned GET of it (LINK_EXPIRES_S), which S3
answers as an attachment. The lifecycle rule deletes exports after a day (they can be written
again) and an upload left unfinished after a day.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.core.errors import NotFound, StoreUnavailable
from dupcheck.core.jobs.imports import check_job_id
from dupcheck.core.models import UploadTarget

if TYPE_CHECKING:  # pragma: no cover
    from dupcheck.core.settings import Settings

CATALOGS = "catalogs/"
IMAGES = "images/"
EXPORTS = "exports/"
PART_BYTES = 8 * 2**20  # a results CSV's upload part (S3 takes 5 MiB at least, but for the last)
LINK_EXPIRES_S = 900  # a results CSV's download link
# The tag of a kept image no record has claimed yet; the lifecycle rule expires what carries it.
UNCLAIMED_TAG = ("dupcheck-kept", "unclaimed")
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def _client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", region_name=region or None, config=Config(
        connect_timeout=2, read_timeout=20, retries={"mode": "standard", "max_attempts": 4},
        signature_version="s3v4"))  # fmt: skip


class _Bucket:
    def __init__(self, bucket: str, *, client: Any = None, region: str | None = None) -> None:
        if not bucket:
            raise ValueError("bucket is required")
        self.bucket = bucket
        self.client = client if client is not None else _client(region)

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> Any:
        return cls(settings.imports_bucket, client=client, region=settings.aws_region or None)

    def _failed(self, exc: Exception, action: str, key: str) -> Exception:
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING:
                return NotFound(f"s3://{self.bucket}/{key} does not exist")
            return StoreUnavailable(f"S3 {action} of {key} failed: {code}")
        return StoreUnavailable(f"S3 {action} of {key} failed: {type(exc).__name__}")

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "PutObject", key) from exc


class S3CatalogFiles(_Bucket):
    def put(self, job_id: str, data: bytes) -> None:
        self._put(CATALOGS + check_job_id(job_id), data, "application/octet-stream")

    @contextlib.contextmanager
    def open(self, job_id: str) -> Iterator[IO[bytes]]:
        key = CATALOGS + check_job_id(job_id)
        with tempfile.TemporaryFile() as copy:
            try:
                self.client.download_fileobj(self.bucket, key, copy)
            except (ClientError, BotoCoreError) as exc:
                raise self._failed(exc, "GetObject", key) from exc
            copy.seek(0)
            yield copy

    def upload_target(self, job_id: str, max_bytes: int, expires_s: int) -> UploadTarget:
        key = CATALOGS + check_job_id(job_id)
        try:
            form = self.client.generate_presigned_post(
                Bucket=self.bucket, Key=key, Conditions=[["content-length-range", 1, max_bytes]], ExpiresIn=expires_s
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "presigned POST", key) from exc
        expires = (datetime.now(UTC) + timedelta(seconds=expires_s)).isoformat(timespec="seconds")
        return UploadTarget(url=form["url"], method="POST", fields=dict(form["fields"]),
                            expires_at=expires.replace("+00:00", "Z"), max_bytes=max_bytes)  # fmt: skip


class S3KeptImages(_Bucket):
    def put(self, name: str, data: bytes) -> None:
        from dupcheck.core.catalog.kept_images import content_type

        key = IMAGES + name
        try:  # only if absent: a claimed picture must not be tagged unclaimed again
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type(name),
                                   Tagging="=".join(UNCLAIMED_TAG), IfNoneMatch="*")  # fmt: skip
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise self._failed(exc, "PutObject", key) from exc
        except BotoCoreError as exc:
            raise self._failed(exc, "PutObject", key) from exc

    def exists(self, name: str) -> bool:
        return self._unless_missing("HeadObject", IMAGES + name, lambda **_key: None)

    def claim(self, name: str) -> bool:
        """A record names the picture: it no longer expires. Whether it is there to claim."""
        return self._unless_missing("DeleteObjectTagging", IMAGES + name, self.client.delete_object_tagging)

    def delete(self, name: str) -> bool:
        return self._unless_missing("DeleteObject", IMAGES + name, self.client.delete_object)

    def _unless_missing(self, action: str, key: str, call: Callable[..., object]) -> bool:
        """`call(Bucket=, Key=)` on a key asked for first (S3 answers a delete of a missing key with
        204): False when it does not exist; any other failure the store's."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            call(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            failure = self._failed(exc, action, key)
            if isinstance(failure, NotFound):
                return False
            raise failure from exc
        return True

    def get(self, name: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=IMAGES + name)
            return bytes(answer["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            failure = self._failed(exc, "GetObject", IMAGES + name)
            if isinstance(failure, NotFound):
                return None
            raise failure from exc


def job_of_catalog_key(key: str) -> str | None:
    """The job a `catalogs/<job_id>` key belongs to (an S3 event's object), or None."""
    if not key.startswith(CATALOGS):
        return None
    job_id = key[len(CATALOGS) :]
    try:
        return check_job_id(job_id)
    except NotFound:
        return None


class S3ResultFiles(_Bucket):
    """ResultFiles on the imports bucket (module docstring)."""

    def link(self, name: str) -> str | None:
        key = EXPORTS + name
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            failure = self._failed(exc, "HeadObject", key)
            if isinstance(failure, NotFound):
                return None
            raise failure from exc
        return self._presigned(key)

    def write(self, name: str, pieces: Callable[[int], Iterator[tuple[int, bytes]]], *, until: float) -> str | None:
        key = EXPORTS + name
        progress = self._progress(key) or self._started(key)
        part = bytearray()
        last_row = progress["after_row"]
        for last_row, piece in pieces(progress["after_row"]):
            part += piece
            if len(part) >= PART_BYTES:
                self._upload(key, progress, part, last_row)
                part.clear()
                if time.monotonic() >= until:
                    return None  # the next call goes on after the rows uploaded
        if part or not progress["parts"]:
            self._upload(key, progress, part, last_row)
        try:
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=progress["upload_id"],
                                                  MultipartUpload={"Parts": progress["parts"]})  # fmt: skip
            self.client.delete_object(Bucket=self.bucket, Key=key + ".progress")
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "CompleteMultipartUpload", key) from exc
        return self._presigned(key)

    def _started(self, key: str) -> dict:
        filename = key.rsplit("/", 2)[-2] + ".csv"  # the job's id
        try:
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType="text/csv; charset=utf-8",
                ContentDisposition=f'attachment; filename="dupcheck-{filename}"',
            )  # fmt: skip
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "CreateMultipartUpload", key) from exc
        return {"upload_id": upload["UploadId"], "parts": [], "after_row": 0}

    def _progress(self, key: str) -> dict | None:
        """The saved progress of the file's upload, if one was begun (and S3 still has it)."""
        try:
            saved = json.loads(self.client.get_object(Bucket=self.bucket, Key=key + ".progress")["Body"].read())
            self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=saved["upload_id"], MaxParts=1)
        except (ClientError, BotoCoreError) as exc:
            failure = self._failed(exc, "GetObject", key + ".progress")
            if isinstance(failure, NotFound) or _code(exc) == "NoSuchUpload":
                return None  # none begun, or its upload expired: begin again
            raise failure from exc
        return dict(saved)

    def _upload(self, key: str, progress: dict, data: bytearray, last_row: int) -> None:
        """One more part, and the progress saved with it."""
        number = len(progress["parts"]) + 1
        try:
            answer = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=progress["upload_id"],
                                             PartNumber=number, Body=bytes(data))  # fmt: skip
            progress["parts"].append({"PartNumber": number, "ETag": answer["ETag"]})
            progress["after_row"] = last_row
            self._put(key + ".progress", json.dumps(progress).encode(), "application/json")
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "UploadPart", key) from exc

    def _presigned(self, key: str) -> str:
        try:
            return str(self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=LINK_EXPIRES_S))  # fmt: skip
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc, "presigned GET", key) from exc


def _code(exc: Exception) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""
