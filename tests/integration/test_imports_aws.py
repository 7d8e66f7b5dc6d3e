"""Catalog imports on AWS, with moto (DynamoDB, S3, SQS) and the three Lambda handlers called with
the events their triggers send: API Gateway -> the API function, the S3 event (through EventBridge
and the starts queue) -> the dispatcher, the rows queue -> the worker.

The queues are moto's: the test receives what the dispatcher sent and hands it to the worker as
the SQS event source mapping would, deleting what succeeded and making a reported failure visible
again (as its visibility timeout would). Images come from the loopback image server.
"""

from __future__ import annotations

import base64
import copy
import csv
import importlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from scripts.helpers.loopback import ImageServer, Reply
from support.aws import sqs_event
from support.catalogs import gate_catalog, good_rows
from support.fakes import load_event

RECORDS, JOBS, BUCKET, CLAIMS = "dupcheck-records", "dupcheck-imports", "dupcheck-imports", "dupcheck-claims"


@dataclass
class Aws:
    """The deployment: its clients, queues and handler modules."""

    ddb: Any
    s3: Any
    sqs: Any
    starts: str
    rows: str
    api: Any
    dispatch: Any
    worker: Any
    context: Any

    def call(self, method: str, path: str, body: str | bytes | None = None, content_type: str = "text/csv") -> tuple[
        int, Any]:  # fmt: skip
        event = copy.deepcopy(load_event("apigw_imports_post_csv.json"))
        event.update(httpMethod=method, path=path)
        event["requestContext"].update(httpMethod=method, path="/v1" + path.split("?")[0])
        path, _, query = path.partition("?")
        event["path"] = path
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&")) if query else None
        event["headers"]["Content-Type"] = content_type
        if isinstance(body, bytes):
            event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
        else:
            event.update(body=body, isBase64Encoded=False)
        response = self.api.handler(event, self.context)
        text = response["body"]
        kind = ((response.get("multiValueHeaders") or {}).get("Content-Type") or [""])[0]
        if kind.startswith("text/csv"):
            return response["statusCode"], text
        return response["statusCode"], json.loads(text) if text else None

    def start_event(self, key: str) -> dict:
        """S3's Object Created for `key`, as EventBridge puts it on the starts queue."""
        event = load_event("eventbridge_s3_object_created.json")
        event["detail"]["object"]["key"] = key
        self.sqs.send_message(QueueUrl=self.starts, MessageBody=json.dumps(event))
        return self.drain_starts()

    def drain_starts(self) -> dict:
        """Hand every message of the starts queue to the dispatcher; its last answer."""
        answer: dict = {}
        while messages := self.receive(self.starts):
            answer = self.deliver(self.dispatch, self.starts, messages)
        return answer

    def receive(self, queue: str) -> list[dict]:
        return self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"],
                                        VisibilityTimeout=30).get("Messages", [])  # fmt: skip

    def deliver(self, module: Any, queue: str, messages: list[dict]) -> dict:
        """What the event source mapping does: one invocation, then delete what succeeded and let
        a reported failure come back."""
        answer = module.handler(sqs_event(messages), self.context)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"],
                                                   VisibilityTimeout=0)  # fmt: skip
            else:
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return answer

    def work(self, limit: int = 50) -> list[set[str]]:
        """Deliver the rows queue to the worker until it is empty; the failures of each delivery."""
        reported = []
        for _ in range(limit):
            messages = self.receive(self.rows)
            if not messages:
                return reported
            reported.append({f["itemIdentifier"] for f in self.deliver(self.worker, self.rows, messages)[
                "batchItemFailures"]})  # fmt: skip
        raise AssertionError("the rows queue never emptied")


@pytest.fixture
def aws(mock_aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any, tmp_path: Any) -> Iterator[Aws]:
    import boto3

    from dupcheck.adapters.dynamodb_claims import create_claims_table
    from dupcheck.adapters.dynamodb_jobs import create_jobs_table
    from dupcheck.adapters.dynamodb_store import create_table

    ddb, s3, sqs = (boto3.client(name, region_name="us-east-1") for name in ("dynamodb", "s3", "sqs"))
    create_table(ddb, RECORDS, wait=False)
    create_jobs_table(ddb, JOBS)
    create_claims_table(ddb, CLAIMS, wait=False)
    s3.create_bucket(Bucket=BUCKET)
    starts, rows = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("import-starts", "import-rows"))
    for name, value in {
        "STORE": "dynamodb", "INDEX": "local", "TABLE_NAME": RECORDS, "IMPORTS_TABLE": JOBS, "IMPORTS_BUCKET": BUCKET,
        "IMPORT_STARTS_QUEUE_URL": starts, "IMPORT_ROWS_QUEUE_URL": rows, "ALLOW_LOOPBACK_URLS": "true",
        "DATA_DIR": str(tmp_path), "CLAIMS_TABLE": CLAIMS,
    }.items():  # fmt: skip
        monkeypatch.setenv(f"DUPCHECK_{name}", value)
    modules = [importlib.reload(importlib.import_module(f"dupcheck.handlers.{name}"))
               for name in ("find_similar", "import_dispatch", "import_worker")]  # fmt: skip
    lambda_context.get_remaining_time_in_millis = lambda: 600_000  # a dispatcher invocation just started
    yield Aws(ddb, s3, sqs, starts, rows, *modules, lambda_context)


def csv_of(rows: list[tuple[str, str, str]]) -> str:
    return "entity_id,sku,image_url\n" + "".join(",".join(row) + "\n" for row in rows)


def job_of(aws: Aws, job_id: str) -> dict:
    status, job = aws.call("GET", f"/imports/{job_id}")
    assert status == 200, job
    return job


def test_an_uploaded_catalog_goes_through_s3_the_dispatcher_and_the_worker(aws: Aws, image_server: ImageServer) -> None:
    rows = good_rows(image_server, 14)
    image_server.scripts["/flaky.jpg"] = [Reply(503), Reply(200, image_server.routes["/img/0.jpg"].body)]
    rows += [("FLAKY", "", image_server.base_url + "/flaky.jpg"), ("F404", "", image_server.base_url + "/gone.jpg"),
             ("", "", image_server.base_url + "/img/1.jpg"), ("FNOURL", "", "")]  # fmt: skip
    status, job = aws.call("POST", "/imports", csv_of(rows))
    assert status == 202 and job["status"] == "queued"
    assert job["status_url"] == f"https://abc123.execute-api.us-east-1.amazonaws.com/v1/imports/{job['job_id']}"
    key = f"catalogs/{job['job_id']}"
    assert aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode() == csv_of(rows)  # kept in S3

    aws.start_event(key)  # S3 announces the object: the dispatcher counts and sends the rows
    running = job_of(aws, job["job_id"])
    assert (running["status"], running["rows"], running["failed"]) == ("running", 18, 2)  # the two bad rows

    failures = aws.work()
    assert sum(len(f) for f in failures) == 1  # the flaky row's 503: reported, so the queue delivers it again
    assert image_server.counts()["/flaky.jpg"] == 2
    done = job_of(aws, job["job_id"])
    assert {k: done[k] for k in ("status", "rows", "done", "skipped", "failed")} == {
        "status": "done", "rows": 18, "done": 15, "skipped": 0, "failed": 3}  # fmt: skip
    status, page = aws.call("GET", f"/imports/{job['job_id']}/failures?limit=2")
    assert [f["code"] for f in page["failures"]] == ["image_unreachable", "missing_entity_id"] and page["next_cursor"]
    status, rest = aws.call("GET", f"/imports/{job['job_id']}/failures?limit=2&cursor={page['next_cursor']}")
    assert [(f["entity_id"], f["code"]) for f in rest["failures"]] == [("FNOURL", "missing_image_url")]
    assert aws.ddb.scan(TableName=RECORDS, Select="COUNT")["Count"] == 15

    # A redelivered row (SQS delivers at least once) is not counted twice, nor downloaded again.
    hits = image_server.counts()
    aws.sqs.send_message(QueueUrl=aws.rows, MessageBody=json.dumps(
        {"job_id": job["job_id"], "row": 3, "entity_id": "E2", "sku": "SKU-2", "image_url": rows[2][2]}))  # fmt: skip
    assert aws.work() == [set()]
    assert job_of(aws, job["job_id"]) == {**done, "updated_at": job_of(aws, job["job_id"])["updated_at"]}
    assert image_server.counts() == hits


def test_upload_true_answers_a_presigned_post_and_the_upload_starts_the_job(
    aws: Aws, image_server: ImageServer
) -> None:
    status, job = aws.call("POST", "/imports", json.dumps({"upload": True}), "application/json")
    upload = job["upload"]
    assert (status, job["status"], upload["method"]) == (202, "awaiting_upload", "POST")
    assert BUCKET in upload["url"] and upload["fields"]["key"] == f"catalogs/{job['job_id']}"
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", 1, 100 * 1024 * 1024] in policy["conditions"]  # S3 refuses a larger file

    # The client posts the form to S3 (moto takes the object as S3 would); S3's event starts the job.
    aws.s3.put_object(Bucket=BUCKET, Key=upload["fields"]["key"], Body=csv_of(good_rows(image_server, 3)).encode())
    aws.start_event(upload["fields"]["key"])
    assert aws.work() == [set()]
    assert {k: job_of(aws, job["job_id"])[k] for k in ("status", "done")} == {"status": "done", "done": 3}

    # The same event again (EventBridge delivers at least once): the job is not started twice.
    aws.start_event(upload["fields"]["key"])
    assert aws.receive(aws.rows) == []


def test_a_catalog_url_is_fetched_by_the_dispatcher_and_a_second_start_is_dropped(
    aws: Aws, image_server: ImageServer
) -> None:
    url = image_server.add("/export.csv", csv_of(good_rows(image_server, 4)).encode(), content_type="text/csv")
    status, job = aws.call("POST", "/imports", json.dumps({"catalog_url": url}), "application/json")
    assert status == 202
    start = json.loads(aws.receive(aws.starts)[0]["Body"])  # the API asked for a start; no object yet
    assert start == {"job_id": job["job_id"]}
    aws.sqs.purge_queue(QueueUrl=aws.starts)
    aws.sqs.send_message(QueueUrl=aws.starts, MessageBody=json.dumps(start))
    aws.drain_starts()
    # The dispatcher kept the catalog in S3; that object's own event must not send the rows again.
    aws.start_event(f"catalogs/{job['job_id']}")
    assert len(aws.work()) == 1
    assert {k: job_of(aws, job["job_id"])[k] for k in ("status", "rows", "done")} == {
        "status": "done", "rows": 4, "done": 4}  # fmt: skip

    status, gone = aws.call("POST", "/imports", json.dumps({"catalog_url": image_server.base_url + "/x.csv"}),
                            "application/json")  # fmt: skip
    aws.drain_starts()
    failed = job_of(aws, gone["job_id"])
    assert failed["status"] == "failed" and "404" in failed["error"]


def test_cancelling_drops_the_rows_still_queued(aws: Aws, image_server: ImageServer) -> None:
    status, job = aws.call("POST", "/imports", csv_of(good_rows(image_server, 12)))
    aws.start_event(f"catalogs/{job['job_id']}")
    first = aws.receive(aws.rows)  # ten rows taken by one invocation...
    aws.deliver(aws.worker, aws.rows, first)
    status, cancelled = aws.call("DELETE", f"/imports/{job['job_id']}")
    assert (status, cancelled["status"], cancelled["done"]) == (200, "cancelled", 10)
    assert aws.work() == [set()]  # ... the other two arrive after the cancel: dropped, not imported
    after = job_of(aws, job["job_id"])
    assert (after["status"], after["done"]) == ("cancelled", 10)
    assert aws.ddb.scan(TableName=RECORDS, Select="COUNT")["Count"] == 10
    assert aws.call("DELETE", f"/imports/{job['job_id']}")[0] == 409


def test_an_address_no_fetcher_can_read_fails_its_row_as_invalid_image_url(aws: Aws, image_server: ImageServer) -> None:
    """A port out of range, no host: the worker's fetcher refuses them as the API's 400
    invalid_request; the row's failure is invalid_image_url, a code of the documented list."""
    ok = image_server.image("/ok.jpg", seed=54)
    _, job = aws.call(
        "POST", "/imports", csv_of([("P", "", "http://h.test:99999/a.jpg"), ("H", "", "http:///a.jpg"), ("OK", "", ok)])
    )
    aws.start_event(f"catalogs/{job['job_id']}")
    aws.work()
    done = job_of(aws, job["job_id"])
    assert {k: done[k] for k in ("status", "done", "failed")} == {"status": "done", "done": 1, "failed": 2}
    listed = aws.call("GET", f"/imports/{job['job_id']}/failures")[1]["failures"]
    assert [(f["entity_id"], f["code"]) for f in listed] == [("P", "invalid_image_url"), ("H", "invalid_image_url")]


def test_the_same_id_twice_the_dispatcher_lists_the_earlier_row_as_replaced(
    aws: Aws, image_server: ImageServer
) -> None:
    early, late = image_server.image("/early.jpg", seed=51), image_server.image("/late.jpg", seed=52)
    status, job = aws.call("POST", "/imports", csv_of([("DUP", "OLD", early), ("X", "", image_server.image(
        "/x.jpg", seed=53)), ("DUP", "NEW", late)]))  # fmt: skip
    aws.start_event(f"catalogs/{job['job_id']}")
    running = job_of(aws, job["job_id"])
    assert (running["rows"], running["replaced"], running["failed"]) == (3, 1, 0)  # before any row is imported
    aws.work()
    done = job_of(aws, job["job_id"])
    assert {k: done[k] for k in ("status", "done", "failed", "replaced")} == {
        "status": "done", "done": 2, "failed": 0, "replaced": 1}  # fmt: skip
    listed = aws.call("GET", f"/imports/{job['job_id']}/failures")[1]["failures"]
    assert [(f["row"], f["entity_id"], f["code"]) for f in listed] == [(1, "DUP", "replaced")]
    assert aws.call("GET", "/items/DUP")[1]["sku"] == "NEW"
    assert image_server.counts().get("/early.jpg", 0) == 0


def test_a_row_failing_every_time_becomes_a_failure_on_its_last_delivery(aws: Aws, image_server: ImageServer) -> None:
    image_server.routes["/down.jpg"] = Reply(503)
    status, job = aws.call("POST", "/imports", csv_of([("DOWN", "", image_server.base_url + "/down.jpg")]))
    aws.start_event(f"catalogs/{job['job_id']}")
    deliveries = aws.work()
    assert [len(d) for d in deliveries] == [1, 1, 0]  # retried by the queue twice, then recorded
    done = job_of(aws, job["job_id"])
    assert (done["status"], done["failed"]) == ("done", 1)
    assert aws.call("GET", f"/imports/{job['job_id']}/failures")[1]["failures"][0]["code"] == "upstream_error"

    aws.sqs.send_message(QueueUrl=aws.rows, MessageBody="not a row")
    messages = aws.receive(aws.rows)
    assert aws.deliver(aws.worker, aws.rows, messages)["batchItemFailures"] == [
        {"itemIdentifier": messages[0]["MessageId"]}]  # fmt: skip


def test_a_run_of_blank_lines_fails_the_job_in_the_dispatchers_first_read(aws: Aws, image_server: ImageServer
                                                                         ) -> None:  # fmt: skip
    """Its first row passes the API's check; the dispatcher stops at the blank lines, sends nothing."""
    catalog = csv_of(good_rows(image_server, 1)) + "\n" * 50_000 + "E9,,https://shop.test/9.jpg\n"
    status, job = aws.call("POST", "/imports", catalog)
    assert status == 202
    aws.start_event(f"catalogs/{job['job_id']}")
    failed = job_of(aws, job["job_id"])
    assert failed["status"] == "failed" and "blank lines" in failed["error"] and "after row 1" in failed["error"]
    assert aws.receive(aws.rows) == []


def test_a_long_dispatch_hands_over_to_a_fresh_invocation(aws: Aws, image_server: ImageServer) -> None:
    from dupcheck.core.jobs import import_runs

    status, job = aws.call("POST", "/imports", csv_of(good_rows(image_server, 110)))
    aws.sqs.send_message(QueueUrl=aws.starts, MessageBody=json.dumps(load_event_s3(job["job_id"])))
    (message,) = aws.receive(aws.starts)
    aws.context.get_remaining_time_in_millis = lambda: 30_000  # under ENOUGH_TIME_S: send one step, hand over
    aws.deliver(aws.dispatch, aws.starts, [message])
    assert aws.dispatch.dispatch.dispatcher.jobs.dispatched(job["job_id"]) == import_runs.SEND_BATCH
    (handover,) = aws.receive(aws.starts)
    assert json.loads(handover["Body"]) == {"job_id": job["job_id"], "token": message["MessageId"]}
    aws.context.get_remaining_time_in_millis = lambda: 600_000
    aws.deliver(aws.dispatch, aws.starts, [handover])
    sent = []
    while batch := aws.receive(aws.rows):
        sent += [json.loads(m["Body"])["row"] for m in batch]
        for m in batch:
            aws.sqs.delete_message(QueueUrl=aws.rows, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(sent) == list(range(1, 111))  # every row once, across the two invocations


def load_event_s3(job_id: str) -> dict:
    event = load_event("eventbridge_s3_object_created.json")
    event["detail"]["object"]["key"] = f"catalogs/{job_id}"
    return event


def test_an_upload_without_an_address_is_kept_in_the_bucket_until_its_last_record_goes(aws: Aws) -> None:
    from test_stream_sync import read_stream  # pytest's own copy

    from dupcheck.bootstrap import build_kept_image_lifecycle, build_store
    from dupcheck.core.catalog.kept_images import rendition
    from dupcheck.core.settings import Settings
    from dupcheck.handlers.stream_sync import StreamSync
    from dupcheck_tools.samples import encode, product_image
    from support.fakes import FakeIndex

    def get_image(name: str) -> dict:
        event = copy.deepcopy(load_event("apigw_imports_post_csv.json"))
        event.update(httpMethod="GET", path=f"/images/{name}", body=None)
        return aws.api.handler(event, aws.context)

    def tags(name: str) -> list[dict]:
        return aws.s3.get_object_tagging(Bucket=BUCKET, Key=f"images/{name}")["TagSet"]

    picture = encode(product_image(5))
    status, item = aws.call("PUT", "/items/UP1", picture, "image/jpeg")
    assert status == 201
    name = item["image_url"].rsplit("/", 1)[1]
    assert item["image_url"] == f"https://abc123.execute-api.us-east-1.amazonaws.com/v1/images/{name}"
    kept = rendition(picture, max_pixels=10**8)  # the rendition, never the upload
    assert aws.s3.get_object(Bucket=BUCKET, Key=f"images/{name}")["Body"].read() == kept
    answer = get_image(name)
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"]
    assert base64.b64decode(answer["body"]) == kept
    # Kept unclaimed (the bucket's lifecycle rule expires such pictures) until the stream sees its record.
    assert tags(name) == [{"Key": "dupcheck-kept", "Value": "unclaimed"}]
    status, other = aws.call("POST", "/images", encode(product_image(6)), "image/jpeg")
    assert status == 201 and aws.call("POST", "/images", kept, "image/jpeg")[0] == 201  # kept again: no change

    stream = aws.ddb.describe_table(TableName=RECORDS)["Table"]["LatestStreamArn"]
    settings = Settings.from_env()
    sync = StreamSync(FakeIndex(), build_kept_image_lifecycle(settings, build_store(settings)))
    seen = 0

    def follow() -> None:  # the stream's new records, delivered as the event source mapping does
        nonlocal seen
        records = read_stream(stream)[seen:]
        seen += len(records)
        assert sync.handle({"Records": records}, aws.context)["batchItemFailures"] == []

    follow()
    assert tags(name) == []  # claimed: its record names it
    assert tags(other["name"]) == [{"Key": "dupcheck-kept", "Value": "unclaimed"}]  # no record: it expires
    # A second record names it too; removing the first keeps it, removing the last deletes it.
    status, _ = aws.call("POST", "/items", json.dumps({"entity_id": "UP2", "image_url": item["image_url"]}),
                         "application/json")  # fmt: skip
    assert status == 201
    assert aws.call("DELETE", f"/images/{name}")[0] == 409
    assert aws.call("DELETE", "/items/UP1")[0] == 204
    follow()
    assert get_image(name)["statusCode"] == 200
    assert aws.call("DELETE", "/items/UP2")[0] == 204
    follow()
    assert get_image(name)["statusCode"] == 404
    # One no record uses: deleted on request, then 404.
    assert aws.call("DELETE", f"/images/{other['name']}")[0] == 204
    assert aws.call("DELETE", f"/images/{other['name']}")[0] == 404


def register_catalog(aws: Aws, catalog: dict[str, bytes]) -> None:
    """The catalog through the API, then into the worker's index as the stream sync puts it into
    OpenSearch (the tests' index is the in-process one, loaded when the worker module was)."""
    for entity_id, data in catalog.items():
        assert aws.call("PUT", f"/items/{entity_id}?image_url=https://shop.test/{entity_id}.jpg", data,
                        "image/jpeg")[0] == 201  # fmt: skip
    service = aws.worker.worker.service
    service.parts.index.upsert_many(service.parts.store.scan())


def results_of(aws: Aws, job_id: str, query: str = "") -> list[dict]:
    status, page = aws.call("GET", f"/imports/{job_id}/results?limit=1000{query}")
    assert status == 200 and page["next_cursor"] is None
    return page["results"]


def run_gate_job(aws: Aws, image_server: ImageServer, query: str, copies: int, repeats: int) -> tuple[Any, dict]:
    """A catalog registered, then a job of new rows, copies of it and repeats, run to its end."""
    gate = gate_catalog(image_server, new=8 - 4 * (query == "?mode=check"), copies=copies, repeats=repeats)
    register_catalog(aws, gate.catalog)
    status, job = aws.call("POST", "/imports" + query, csv_of(gate.rows))
    assert status == 202
    aws.start_event(f"catalogs/{job['job_id']}")
    assert aws.work()
    return gate, job_of(aws, job["job_id"])


def test_the_worker_skips_the_duplicates_of_the_catalog_and_of_earlier_rows(aws: Aws, image_server: ImageServer
                                                                            ) -> None:  # fmt: skip
    gate, done = run_gate_job(aws, image_server, "?on_duplicate=skip", copies=3, repeats=2)
    job = done
    assert done["on_duplicate"] == "skip"
    assert {k: done[k] for k in ("status", "rows", "done", "skipped", "failed", "duplicates")} == {
        "status": "done", "rows": 13, "done": 8, "skipped": 5, "failed": 0, "duplicates": 5}  # fmt: skip
    found = results_of(aws, job["job_id"], "&duplicates_only=true")
    assert {r["row"]: (r["duplicate_of"], r["duplicate_of_row"] or 0) for r in found} == gate.expected
    assert aws.ddb.scan(TableName=RECORDS, Select="COUNT")["Count"] == 3 + 8  # none of the 5 stored

    # A redelivered duplicate row is neither counted again nor stored.
    aws.sqs.send_message(QueueUrl=aws.rows, MessageBody=json.dumps(
        {"job_id": job["job_id"], "row": 9, "entity_id": "COPY0", "sku": "", "image_url": gate.rows[8][2]}
    ))  # fmt: skip
    assert aws.work() == [set()]
    assert job_of(aws, job["job_id"])["duplicates"] == 5 and aws.call("GET", "/items/COPY0")[0] == 404


def test_a_check_job_runs_on_the_same_queues_and_stores_nothing(aws: Aws, image_server: ImageServer) -> None:
    gate, done = run_gate_job(aws, image_server, "?mode=check", copies=2, repeats=1)
    job = done
    assert (done["mode"], done["status"], done["done"], done["duplicates"]) == ("check", "done", 7, 3)
    results = results_of(aws, job["job_id"])
    assert [r["row"] for r in results] == list(range(1, 8))
    assert {r["row"]: r["duplicate_of"] for r in results if r["verdict"] == "duplicate"} == {
        row: of for row, (of, _) in gate.expected.items()}  # fmt: skip
    assert aws.ddb.scan(TableName=RECORDS, Select="COUNT")["Count"] == 2
    text = csv_download(aws, job["job_id"])
    assert text.count("\n") == 8


def csv_download(aws: Aws, job_id: str, query: str = "") -> str:
    """GET .../results?format=csv: a 303 to the file's presigned link; the file, read from the bucket."""
    response = aws.api.handler(api_event("GET", f"/imports/{job_id}/results", {"format": "csv", **dict(
        p.split("=", 1) for p in query.split("&") if p)}), aws.context)  # fmt: skip
    assert response["statusCode"] == 303, response
    link = urlsplit(response["multiValueHeaders"]["Location"][0])
    signed = parse_qs(link.query)
    assert signed["X-Amz-Expires"] == ["900"] and signed["X-Amz-Signature"]
    key = unquote(link.path).lstrip("/").removeprefix(BUCKET + "/")  # virtual-hosted or path style
    body = aws.s3.get_object(Bucket=BUCKET, Key=key)
    assert body["ContentType"].startswith("text/csv") and "attachment" in body["ContentDisposition"]
    return str(body["Body"].read().decode())


def api_event(method: str, path: str, query: dict[str, str]) -> dict:
    event = copy.deepcopy(load_event("apigw_imports_post_csv.json"))
    event.update(httpMethod=method, path=path, queryStringParameters=query, body=None, isBase64Encoded=False)
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    event["requestContext"].update(httpMethod=method, path="/v1" + path)
    return event


def test_a_check_jobs_results_list_its_failed_rows_and_its_csv_is_a_safe_download(
    aws: Aws, image_server: ImageServer
) -> None:
    rows = [("=HYPERLINK(A1)", "+SKU", image_server.image("/img/1.jpg", seed=1)),
            ("-E2", "", f"{image_server.base_url}/gone.jpg"), ("E3", "", "/relative.jpg")]  # fmt: skip
    status, job = aws.call("POST", "/imports?mode=check", csv_of(rows))
    assert status == 202
    status, early = aws.call("GET", f"/imports/{job['job_id']}/results?format=csv")
    assert (status, early["error"]["code"]) == (409, "conflict")  # queued: its rows are still to come
    aws.start_event(f"catalogs/{job['job_id']}")
    aws.work()
    done = job_of(aws, job["job_id"])
    assert (done["status"], done["done"], done["failed"]) == ("done", 1, 2)
    listed = results_of(aws, job["job_id"])
    assert [(r["row"], r["outcome"], r["verdict"], r["code"]) for r in listed] == [
        (1, "done", "new", ""),
        (2, "failed", None, "image_unreachable"),
        (3, "failed", None, "relative_image_url"),
    ]
    lines = list(csv.reader(io.StringIO(csv_download(aws, job["job_id"]))))
    assert [line[:2] for line in lines[1:]] == [["1", "'=HYPERLINK(A1)"], ["2", "'-E2"], ["3", "E3"]]
    assert not [cell for line in lines for cell in line if cell.startswith(("=", "+", "-", "@"))]


def test_a_long_results_csv_is_written_a_part_a_request_and_resumed(aws: Aws, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:  # fmt: skip
    from dupcheck.adapters import s3_files

    monkeypatch.setattr(s3_files, "PART_BYTES", 5 * 2**20)  # S3's least part
    files = s3_files.S3ResultFiles(BUCKET, client=aws.s3)
    asked: list[int] = []

    def pieces(after_row: int) -> Iterator[tuple[int, bytes]]:  # 12 rows of 1 MiB each
        asked.append(after_row)
        for row in range(after_row + 1, 13):
            yield row, bytes([64 + row]) * 2**20

    assert files.link("j/results-1.csv") is None
    assert files.write("j/results-1.csv", pieces, until=0) is None  # out of time after a part: 5 rows
    assert files.write("j/results-1.csv", pieces, until=0) is None  # 5 more
    link = files.write("j/results-1.csv", pieces, until=0)  # the last 2 complete it
    assert asked == [0, 5, 10] and link is not None and files.link("j/results-1.csv") is not None
    whole = aws.s3.get_object(Bucket=BUCKET, Key="exports/j/results-1.csv")["Body"].read()
    assert whole == b"".join(bytes([64 + row]) * 2**20 for row in range(1, 13))
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/j/results-1.csv.")

    # An upload gone (S3's lifecycle aborted it) is begun again, not an error.
    asked.clear()
    assert files.write("j/results-2.csv", pieces, until=0) is None
    (upload,) = aws.s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    aws.s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    assert files.write("j/results-2.csv", pieces, until=time.monotonic() + 60) is not None
    assert asked == [0, 0]
