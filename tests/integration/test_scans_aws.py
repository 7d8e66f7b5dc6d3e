"""Duplicate scans on AWS, with moto (DynamoDB, S3, SQS): the API function starts a scan, the
scan function runs it from the scans queue (called with the event the queue's mapping sends),
hands itself over when its time runs short, and publishes the report the API then answers.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dupcheck_tools.samples import encode, product_image
from support.aws import sqs_event
from support.fakes import load_event

RECORDS, JOBS, BUCKET, THUMBS = "dupcheck-records", "dupcheck-imports", "dupcheck-imports", "dupcheck-thumbnails"
# 30 records: 20 pictures, 10 of them stored twice (under another id): 10 groups of two.
PICTURES = {f"P{i:02d}": 3000 + i % 20 for i in range(30)}


class Context:
    """A Lambda context whose time left the test decides (`left_s`, asked at every call)."""

    def __init__(self, left_s: Callable[[], float]) -> None:
        self.left_s = left_s
        self.function_name, self.memory_limit_in_mb, self.aws_request_id = "dupcheck-scans", 4096, "req-1"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:dupcheck-scans"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.left_s() * 1000)


@dataclass
class Aws:
    ddb: Any
    s3: Any
    sqs: Any
    queue: str
    api: Any
    scans: Any  # the scan function's module

    def call(self, method: str, path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
        event = copy.deepcopy(load_event("apigw_imports_post_csv.json"))
        event.update(httpMethod=method, path=path, body=None, isBase64Encoded=False, queryStringParameters=query)
        event["headers"].pop("Content-Type", None)
        event["requestContext"].update(httpMethod=method, path="/v1" + path)
        response = self.api.handler(event, Context(lambda: 29))
        return response["statusCode"], json.loads(response["body"]) if response["body"] else None

    def deliver(self, left_s: Callable[[], float] = lambda: 600) -> list[dict]:
        """Every message of the scans queue to the scan function, one invocation each, as its
        mapping would (batch size 1); the messages delivered."""
        delivered = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1,
                                                   AttributeNames=["All"]).get("Messages", []):  # fmt: skip
            answer = self.scans.handler(sqs_event(messages), Context(left_s))
            assert answer["batchItemFailures"] == []
            self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=messages[0]["ReceiptHandle"])
            delivered += messages
        return delivered

    def scan(self, scan_id: str) -> dict:
        status, scan = self.call("GET", f"/duplicates/scans/{scan_id}")
        assert status == 200, scan
        return scan


@pytest.fixture
def aws(mock_aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Aws]:
    import boto3

    from dupcheck.adapters.dynamodb_jobs import create_jobs_table
    from dupcheck.adapters.dynamodb_store import create_table
    from dupcheck.bootstrap import build_service
    from dupcheck.core.settings import Settings
    from dupcheck_tools.duplicates import scan_function

    ddb, s3, sqs = (boto3.client(name, region_name="us-east-1") for name in ("dynamodb", "s3", "sqs"))
    create_table(ddb, RECORDS, wait=False)
    create_jobs_table(ddb, JOBS)
    for bucket in (BUCKET, THUMBS):
        s3.create_bucket(Bucket=bucket)
    queue, starts, rows = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("scans", "starts", "rows"))
    for name, value in {
        "STORE": "dynamodb", "INDEX": "local", "TABLE_NAME": RECORDS, "IMPORTS_TABLE": JOBS, "IMPORTS_BUCKET": BUCKET,
        "THUMBNAIL_BUCKET": THUMBS, "SCANS_QUEUE_URL": queue, "IMPORT_STARTS_QUEUE_URL": starts,
        "IMPORT_ROWS_QUEUE_URL": rows, "DATA_DIR": str(tmp_path / "lambda-has-none"),
    }.items():  # fmt: skip
        monkeypatch.setenv(f"DUPCHECK_{name}", value)
    service = build_service(Settings.from_env())
    for entity_id, seed in PICTURES.items():
        service.registrar.register_bytes(entity_id=entity_id, sku="", image_url=f"https://shop.test/{entity_id}.jpg",
                                         data=encode(product_image(seed)))  # fmt: skip
    monkeypatch.setattr(scan_function, "WORK_ROOT", tmp_path / "tmp")
    monkeypatch.setattr(scan_function, "function", None)  # built from this environment at the first event
    api = importlib.reload(importlib.import_module("dupcheck.handlers.find_similar"))
    yield Aws(ddb, s3, sqs, queue, api, scan_function)


def test_a_scan_started_from_the_api_runs_in_the_scan_function_and_its_report_is_published(aws: Aws) -> None:
    assert aws.call("GET", "/duplicates")[0] == 404  # nothing published yet
    status, scan = aws.call("POST", "/duplicates/scans")
    assert status == 202 and scan["status"] == "queued"
    assert (
        scan["status_url"]
        == f"https://abc123.execute-api.us-east-1.amazonaws.com/v1/duplicates/scans/{scan['scan_id']}"
    )
    status, refused = aws.call("POST", "/duplicates/scans")  # one at a time, until it ends
    assert status == 409 and scan["scan_id"] in refused["error"]["message"]

    assert len(aws.deliver()) == 1
    done = aws.scan(scan["scan_id"])
    assert done["status"] == "done" and done["report_url"].endswith("/v1/duplicates")
    assert {k: done["result"][k] for k in ("records", "compared", "groups", "duplicates")} == {
        "records": 30, "compared": 30, "groups": 10, "duplicates": 10}  # fmt: skip
    status, report = aws.call("GET", "/duplicates")
    assert status == 200 and len(report["groups"]) == 10
    assert sorted(g["keep"] for g in report["groups"]) == [f"P{i:02d}" for i in range(10)]  # the older of each pair
    listed = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert listed == {"reports/duplicates.json", "reports/duplicates.csv", "reports/report.html"}  # no work left
    assert aws.call("POST", "/duplicates/scans")[0] == 202  # the lock went with the scan's end


def test_a_scan_started_with_marks_keeps_them_through_the_scan_function_into_its_report(aws: Aws) -> None:
    """Issue 83: the scan's row carries its `marks` to the function that runs it (the queue's
    message names only the scan), and the report says what it was judged under."""
    status, scan = aws.call("POST", "/duplicates/scans", {"marks": "product"})
    assert status == 202 and scan["marks"] == "product"
    aws.deliver()
    done = aws.scan(scan["scan_id"])
    assert done["status"] == "done" and done["marks"] == "product"
    assert aws.call("GET", "/duplicates")[1]["marks"] == "product"


def test_a_scan_out_of_time_hands_over_and_the_next_invocation_finishes_it(aws: Aws) -> None:
    from dupcheck.adapters.dynamodb_scans import DynamoDBScanJobs

    scan_id = aws.call("POST", "/duplicates/scans")[1]["scan_id"]
    jobs = DynamoDBScanJobs(JOBS, client=aws.ddb)
    first = {"invocation": True}

    def left_s() -> float:  # the first invocation runs short once it reaches the verification
        job = jobs.get(scan_id)
        return 60 if first["invocation"] and job is not None and job.phase == "verify" else 600

    message = aws.sqs.receive_message(QueueUrl=aws.queue, AttributeNames=["All"])["Messages"]
    assert aws.scans.handler(sqs_event(message), Context(left_s))["batchItemFailures"] == []
    aws.sqs.delete_message(QueueUrl=aws.queue, ReceiptHandle=message[0]["ReceiptHandle"])
    first["invocation"] = False
    handed = aws.scan(scan_id)
    assert (handed["status"], handed["phase"]) == ("running", "verify")
    kept = aws.s3.head_object(Bucket=BUCKET, Key=f"scans/{scan_id}/work.sqlite3")
    assert kept["ContentLength"] > 0  # the work file waits in the bucket
    (continuation,) = aws.deliver()
    assert json.loads(continuation["Body"]) == {"scan_id": scan_id, "token": message[0]["MessageId"]}  # same lease
    done = aws.scan(scan_id)
    assert done["status"] == "done" and done["result"]["groups"] == 10
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="scans/")


def test_an_invocation_that_gets_nowhere_fails_the_scan_saying_what_to_do(aws: Aws) -> None:
    scan_id = aws.call("POST", "/duplicates/scans")[1]["scan_id"]
    assert len(aws.deliver(left_s=lambda: 60)) == 1  # never enough time for one step: no hand-over
    failed = aws.scan(scan_id)
    assert failed["status"] == "failed"
    assert "the catalog is too large for the scan function" in failed["error"]
    assert "python -m dupcheck duplicates --target dynamodb --publish" in failed["error"]
    assert aws.call("POST", "/duplicates/scans")[0] == 202


def test_a_second_start_of_a_claimed_scan_is_dropped(aws: Aws) -> None:
    """SQS delivers at least once: a copy of the start (another message id) must not run the scan
    a second time beside the first."""
    from dupcheck.adapters.dynamodb_scans import DynamoDBScanJobs

    scan_id = aws.call("POST", "/duplicates/scans")[1]["scan_id"]
    jobs = DynamoDBScanJobs(JOBS, client=aws.ddb)
    assert jobs.claim(scan_id, "the-first-delivery") is not None
    aws.deliver()  # the queue's message: another token
    assert aws.scan(scan_id)["status"] == "running"  # left to the first delivery
    assert jobs.claim(scan_id, "the-first-delivery") is not None  # whose redelivery resumes it


def test_the_command_line_publishes_its_report_where_the_api_reads_it(
    aws: Aws, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """For a catalog too large for the scan function: the same report, from a machine near the table."""
    from dupcheck_tools.cli import main

    argv = ["duplicates", "--target", "dynamodb", "--table", RECORDS, "--out", str(tmp_path / "r"), "--publish"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["groups"] == 10
    status, report = aws.call("GET", "/duplicates")
    assert status == 200 and len(report["groups"]) == 10
    monkeypatch.delenv("DUPCHECK_IMPORTS_BUCKET")
    assert main(argv) == 2
    assert "needs the imports bucket: set DUPCHECK_IMPORTS_BUCKET" in capsys.readouterr().err


def test_a_scan_whose_function_died_is_failed_after_30_silent_minutes_and_frees_the_lock(aws: Aws) -> None:
    scan_id = aws.call("POST", "/duplicates/scans")[1]["scan_id"]
    assert aws.call("POST", "/duplicates/scans")[0] == 409
    aws.ddb.update_item(TableName=JOBS, Key={"job_id": {"S": scan_id}, "item": {"S": "scan"}},
                        UpdateExpression="SET updated_at = :old",
                        ExpressionAttributeValues={":old": {"S": "2026-01-01T00:00:00.000Z"}})  # fmt: skip
    status, second = aws.call("POST", "/duplicates/scans")
    assert status == 202 and second["scan_id"] != scan_id
    stalled = aws.scan(scan_id)
    assert stalled["status"] == "failed" and "stopped answering 30 minutes ago" in stalled["error"]


def test_a_running_scan_cancelled_from_the_api_stops_publishes_nothing_and_frees_the_lock(aws: Aws) -> None:
    scan_id = aws.call("POST", "/duplicates/scans")[1]["scan_id"]
    answers: list[tuple[int, Any]] = []

    def left_s() -> float:  # asked at every step: the cancel comes once the scan verifies
        if not answers and aws.scan(scan_id)["phase"] == "verify":
            answers.append(aws.call("DELETE", f"/duplicates/scans/{scan_id}"))
        return 600

    assert len(aws.deliver(left_s)) == 1
    ((status, cancelled),) = answers
    assert (status, cancelled["status"]) == (200, "cancelled")
    ended = aws.scan(scan_id)
    assert ended["status"] == "cancelled" and ended["result"] is None and ended["finished_at"]
    assert aws.call("GET", "/duplicates")[0] == 404  # nothing published
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="scans/")  # no work kept
    assert aws.call("DELETE", f"/duplicates/scans/{scan_id}")[0] == 409  # already ended
    assert aws.call("POST", "/duplicates/scans")[0] == 202  # the lock went with it
