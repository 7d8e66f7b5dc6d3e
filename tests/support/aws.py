"""Fixtures for the AWS adapters and Lambda handlers: no account, no network.

A pytest plugin (tests/conftest.py lists it in `pytest_plugins`). Every AWS call goes to moto
in process; fake credentials and `AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled` keep botocore from
looking for real ones or building account-based endpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

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
def mock_aws_env(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    # moto's backends are not thread-safe (a Query walking a table while another thread's PutItem
    # adds to it raised "dictionary changed size during iteration"); AWS answers each request
    # atomically, so moto answers one at a time here, interleaved as the callers' threads send them.
    lock = threading.RLock()
    answer = BotocoreStubber.__call__

    def atomically(self: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return answer(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomically)
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


@pytest.fixture
def moto_server(aws_env: None) -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port): the endpoint another process reaches through
    AWS_ENDPOINT_URL, as it would reach DynamoDB Local or AWS itself."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


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


def sqs_event(messages: list[dict]) -> dict:
    """The event an SQS event source mapping hands a function, of messages received with
    AttributeNames=["All"]."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {"ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"],
                       "SentTimestamp": m["Attributes"]["SentTimestamp"], "SenderId": "AIDAEXAMPLE",
                       "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:queue", "awsRegion": REGION,
    } for m in messages]}  # fmt: skip
