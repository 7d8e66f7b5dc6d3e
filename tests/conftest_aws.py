"""Shared fixtures for the AWS adapters and Lambda handlers: no account, no network.

Import them from tests/conftest.py (`from tests.conftest_aws import *` or by name). Every AWS
call goes to moto in process; fake credentials and `AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled` keep
botocore from looking for real ones or building account-based endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dupcheck.core.models import HashRecord, HashValue, IndexHit

EVENTS = Path(__file__).parent / "events"
REGION = "us-east-1"
TABLE = "dupcheck-test-hashes"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "dupcheck",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mock_aws_env(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def ddb_client(mock_aws_env: None) -> Any:
    import boto3

    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def ddb_table(ddb_client: Any) -> str:
    """Creates the records table (with its stream) and returns the stream ARN."""
    from dupcheck.adapters.dynamodb_store import create_table

    return create_table(ddb_client, TABLE)


@pytest.fixture
def ddb_store(ddb_client: Any, ddb_table: str) -> Any:
    from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore

    return DynamoDBRecordStore(TABLE, client=ddb_client, sleep=lambda _s: None)


@dataclass
class FakeLambdaContext:
    function_name: str = "dupcheck-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:dupcheck-test"
    aws_request_id: str = "6f3b5a4c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
    log_group_name: str = "/aws/lambda/dupcheck-test"
    log_stream_name: str = "2025/03/12/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class FakeIndex:
    """In-memory HashIndex (exact scan) that also records every call, for handler tests."""

    def __init__(self) -> None:
        self.docs: dict[str, HashRecord] = {}
        self.calls: list[tuple[str, str]] = []

    def upsert(self, record: HashRecord) -> None:
        self.calls.append(("upsert", record.entity_id))
        self.docs[record.entity_id] = record

    def upsert_many(self, records: Iterable[HashRecord]) -> int:
        n = 0
        for record in records:
            self.upsert(record)
            n += 1
        return n

    def remove(self, entity_id: str) -> None:
        self.calls.append(("remove", entity_id))
        self.docs.pop(entity_id, None)

    def search(self, hashes: Sequence[HashValue], k: int, max_distance: int | None = None) -> list[IndexHit]:
        best: dict[str, int] = {}
        for record in self.docs.values():
            d = min(record.hash_value - h for h in hashes)
            if max_distance is None or d <= max_distance:
                best[record.entity_id] = d
        ranked = sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:k]
        return [IndexHit(e, d, self.docs[e]) for e, d in ranked]

    def count(self) -> int:
        return len(self.docs)


class VersionedFakeIndex(FakeIndex):
    """Mimics OpenSearch external versioning: upserts are `external_gte` on updated_at (ms),
    removes are `external` and leave a tombstone; stale writes are ignored, as the adapter does."""

    def __init__(self) -> None:
        super().__init__()
        self.versions: dict[str, int] = {}

    def upsert(self, record: HashRecord) -> None:
        from dupcheck.adapters.opensearch_index import version_of

        version = version_of(record.updated_at) or 0
        if version < self.versions.get(record.entity_id, -1):
            self.calls.append(("stale-upsert", record.entity_id))
            return
        self.versions[record.entity_id] = version
        super().upsert(record)

    def remove_versioned(self, entity_id: str, version: int) -> None:
        if version <= self.versions.get(entity_id, -1):
            self.calls.append(("stale-remove", entity_id))
            return
        self.versions[entity_id] = version
        super().remove(entity_id)


def make_record(entity_id: str, hash_hex: str = "c3d1a0f08e7c1b2a", **changes: Any) -> HashRecord:
    fields: dict[str, Any] = {
        "entity_id": entity_id,
        "sku": f"SKU-{entity_id}",
        "image_url": f"https://images.example.com/{entity_id}.jpg",
        "hash": hash_hex,
        "hash_algo": "phash64-v1",
        "updated_at": "2025-03-12T10:00:00.000Z",
        "features": {"colour": "0a1b2c"},
    }
    fields.update(changes)
    return HashRecord(**fields)
