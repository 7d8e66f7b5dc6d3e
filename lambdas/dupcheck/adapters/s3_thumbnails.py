"""ThumbnailStore on S3: the AWS deployment's thumbnails, one object per catalog entity.

Keys are `thumbnails/<blake2b-128 of the entity_id, hex>`: a fixed 43 characters whatever the id
holds (ids are up to 512 characters of any script, S3 keys at most 1,024 bytes of UTF-8), spread
evenly over S3's key partitions. The object is the pipeline's bytes as they are (a JPEG of ~15 KB,
median, with a small header naming the record hash it was made for, core/stored/thumbnails.py).

A query reads one to three thumbnails (the candidates it would call duplicates); several are
fetched in parallel, as are the writes of a backfill batch and reindex's existence checks, on a
small thread pool (boto3 clients are thread-safe). A missing object is an absent thumbnail; S3
being unreachable, throttling or refusing access is StoreUnavailable (503), as for DynamoDB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.core.errors import StoreUnavailable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from dupcheck.core.settings import Settings

PREFIX = "thumbnails/"
_ABSENT = frozenset({"NoSuchKey", "404", "NotFound"})
T = TypeVar("T")


def thumbnail_key(entity_id: str) -> str:
    return PREFIX + hashlib.blake2b(entity_id.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class S3Thumbnails:
    """ThumbnailStore over one bucket. `client` is a boto3 S3 client (built with short timeouts
    when omitted, so a slow S3 cannot eat a Lambda's budget); `workers` bounds parallel requests."""

    def __init__(self, bucket: str, *, client: Any = None, region: str | None = None, workers: int = 16) -> None:
        if not bucket:
            raise ValueError("bucket is required for the S3 thumbnail store")
        self.bucket = bucket
        self._client = client if client is not None else self._build_client(region)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-thumbnails")

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> S3Thumbnails:
        return cls(settings.thumbnail_bucket, client=client, region=settings.aws_region or None)

    @staticmethod
    def _build_client(region: str | None) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "adaptive", "max_attempts": 4})
        return boto3.client("s3", region_name=region or None, config=config)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- ThumbnailStore port ------------------------------------------------------------------

    def put_many(self, thumbnails: Mapping[str, bytes]) -> int:
        def put(item: tuple[str, bytes]) -> None:
            entity_id, data = item
            self._call("PutObject", self._client.put_object, Bucket=self.bucket, Key=thumbnail_key(entity_id),
                       Body=data, ContentType="application/octet-stream")  # fmt: skip

        return len(self._each(put, list(thumbnails.items())))

    def get_many(self, entity_ids: Sequence[str]) -> dict[str, bytes]:
        def get(entity_id: str) -> bytes | None:
            response = self._call("GetObject", self._client.get_object, Bucket=self.bucket,
                                  Key=thumbnail_key(entity_id))  # fmt: skip
            return None if response is None else bytes(response["Body"].read())

        ids = list(dict.fromkeys(entity_ids))
        return {entity_id: data for entity_id, data in zip(ids, self._each(get, ids), strict=True) if data is not None}

    def missing(self, entity_ids: Sequence[str]) -> set[str]:
        def absent(entity_id: str) -> bool:
            return self._call("HeadObject", self._client.head_object, Bucket=self.bucket,
                              Key=thumbnail_key(entity_id)) is None  # fmt: skip

        ids = list(dict.fromkeys(entity_ids))
        return {entity_id for entity_id, gone in zip(ids, self._each(absent, ids), strict=True) if gone}

    def delete(self, entity_id: str) -> None:
        self._call("DeleteObject", self._client.delete_object, Bucket=self.bucket, Key=thumbnail_key(entity_id))

    # -- pieces -------------------------------------------------------------------------------

    def _each(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        """fn over items, in parallel when there are several; the first error is raised."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def _call(self, action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """The response, or None for an object that is not there."""
        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _ABSENT:
                return None
            raise StoreUnavailable(f"S3 {action} on bucket {self.bucket!r} failed: {code}") from exc
        except BotoCoreError as exc:  # endpoint, connection, timeout, credentials
            raise StoreUnavailable(f"S3 {action} on bucket {self.bucket!r} failed: {type(exc).__name__}") from exc
