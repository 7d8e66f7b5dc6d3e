"""One picture, one record on AWS, with moto: every request its own Lambda, the index behind the
table by the stream's delivery (held back 5 s here) and OpenSearch's refresh.

Each "Lambda" is a service of its own (its own clients and process state) built as the API
function builds one; they share one index, the deployment's OpenSearch, which shows a record only
once the stream sync function has applied its change: the API's own writes to it are not seen (a
refresh away, at best). The stream is read from moto's DynamoDB Streams and handed to the stream
sync function 5 s after each change. moto answers requests in the caller's thread without
DynamoDB's own isolation, so each request is made atomic with one lock, as DynamoDB makes each one
(a conditional update, a transaction) atomic.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import pytest

from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashRecord, HashValue, IndexHit
from dupcheck_tools.samples import encode, product_image
from support.aws import REGION
from support.catalogs import EDIT_SEEDS, edited_copies
from support.concurrency import at_once
from support.fakes import FakeFetcher, load_event

RECORDS, CLAIMS, BUCKET = "dupcheck-records", "dupcheck-claims", "dupcheck-kept"
HELD_BACK_S = 5.0
ROUNDS = 20
WRITERS = 8


class Unrefreshed:
    """The deployment's OpenSearch as one Lambda sees it: searches the shared index; its own writes
    are not shown (only the stream sync function's are, once it delivers)."""

    def __init__(self, shared: LocalHashIndex) -> None:
        self.shared = shared

    def search(self, hashes: Sequence[HashValue], k: int, max_distance: int | None = None,
               part_hashes: Sequence[HashValue] = (), part_k: int = 0) -> list[IndexHit]:  # fmt: skip
        return self.shared.search(hashes, k, max_distance, part_hashes, part_k)

    def upsert(self, record: HashRecord) -> None:
        pass

    def upsert_many(self, records: Any) -> int:
        return 0

    def remove(self, entity_id: str) -> None:
        pass

    def count(self) -> int:
        return self.shared.count()


@dataclass
class Deployment:
    ddb: Any
    stream_arn: str
    index: LocalHashIndex
    images: dict[str, bytes]
    lambdas: list[DupcheckService] = field(default_factory=list)

    def new_lambda(self) -> DupcheckService:
        from dupcheck.bootstrap import build_service
        from dupcheck.core.settings import Settings

        fetcher = FakeFetcher()
        fetcher.images = self.images  # the web every Lambda sees, as the test fills it
        service = build_service(Settings.from_env(), index=Unrefreshed(self.index), fetcher=fetcher)  # type: ignore[arg-type]
        self.lambdas.append(service)
        return service


@pytest.fixture
def deployment(mock_aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Deployment]:
    import boto3
    from moto.core.botocore_stubber import BotocoreStubber

    from dupcheck.adapters.dynamodb_claims import create_claims_table
    from dupcheck.adapters.dynamodb_store import create_table

    serial = threading.Lock()
    answer = BotocoreStubber.process_request

    def atomic(self: Any, request: Any) -> Any:
        with serial:
            return answer(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", atomic)
    ddb, s3 = boto3.client("dynamodb", region_name=REGION), boto3.client("s3", region_name=REGION)
    stream_arn = create_table(ddb, RECORDS)
    create_claims_table(ddb, CLAIMS)
    s3.create_bucket(Bucket=BUCKET)
    for name, value in {"STORE": "dynamodb", "INDEX": "local", "TABLE_NAME": RECORDS, "CLAIMS_TABLE": CLAIMS,
                        "THUMBNAIL_BUCKET": BUCKET, "IMPORTS_BUCKET": BUCKET, "DATA_DIR": str(tmp_path),
                        "DYNAMODB_CONSISTENT_READ": "true"}.items():  # fmt: skip
        monkeypatch.setenv(f"DUPCHECK_{name}", value)
    pipeline = get_pipeline()
    shared = LocalHashIndex(pipeline.index_bits, parts=pipeline.index_parts)
    deployment = Deployment(ddb, stream_arn, shared, {})
    pump = StreamPump(deployment)
    pump.start()
    yield deployment
    pump.stop()


class StreamPump:
    """The table's stream delivered to the stream sync function HELD_BACK_S after each change, in
    order, a batch at a time: what an event source mapping does, late."""

    def __init__(self, deployment: Deployment) -> None:
        from dupcheck.adapters.dynamodb_claims import DynamoDBClaims
        from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore
        from dupcheck.handlers.stream_sync import StreamSync

        store = DynamoDBRecordStore(RECORDS, client=deployment.ddb)
        self.sync = StreamSync(deployment.index, None, DynamoDBClaims(store, CLAIMS))
        self.arn, self.stop_event = deployment.stream_arn, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.delivered = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)

    def run(self) -> None:
        import boto3

        streams = boto3.client("dynamodbstreams", region_name=REGION)
        shard = streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
        held: list[tuple[float, dict[str, Any]]] = []
        while not self.stop_event.wait(0.2):
            page = streams.get_records(ShardIterator=iterator)
            iterator = page.get("NextShardIterator") or iterator
            held += [(time.monotonic(), _as_lambda_sees_it(r, self.arn)) for r in page["Records"]]
            due = [record for at, record in held if time.monotonic() - at >= HELD_BACK_S]
            if due:
                held = held[len(due) :]
                self.sync.handle({"Records": due}, None)
                self.delivered += len(due)


def _as_lambda_sees_it(record: dict[str, Any], arn: str) -> dict[str, Any]:
    record = copy.deepcopy(record)
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):  # the SDK parses it; Lambda sends epoch seconds
        record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
    record["eventSourceARN"] = arn
    return record


def api_call(service: DupcheckService, method: str, path: str, query: dict[str, str], body: bytes,
             content_type: str) -> tuple[int, Any]:  # fmt: skip
    """One API Gateway request through the API's routes over `service` (the Lambda's resolver)."""
    from dupcheck.api import build_resolver
    from dupcheck.bootstrap import build_kept_image_lifecycle
    from dupcheck.core.settings import Settings

    resolver = build_resolver(service, max_body_bytes=20 * 2**20,
                              images=build_kept_image_lifecycle(Settings.from_env(), service.parts.store))  # fmt: skip
    event = copy.deepcopy(load_event("apigw_imports_post_csv.json"))
    event.update(httpMethod=method, path=path, queryStringParameters=query or None,
                 body=base64.b64encode(body).decode(), isBase64Encoded=True)  # fmt: skip
    event["headers"]["Content-Type"] = content_type
    event["requestContext"].update(httpMethod=method, path="/v1" + path)
    response = resolver.resolve(event, None)
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def post_item(service: DupcheckService, entity_id: str, url: str) -> Callable[[], tuple[int, Any]]:
    item = json.dumps({"entity_id": entity_id, "sku": "", "image_url": url}).encode()
    return partial(api_call, service, "POST", "/items", {"on_duplicate": "reject"}, item, "application/json")


def put_item(service: DupcheckService, entity_id: str, data: bytes, url: str) -> Callable[[], tuple[int, Any]]:
    query = {"on_duplicate": "reject", **({"image_url": url} if url else {})}
    return partial(api_call, service, "PUT", f"/items/{entity_id}", query, data, "image/jpeg")


def put_warn(service: DupcheckService, entity_id: str, data: bytes, url: str) -> Callable[[], tuple[int, Any]]:
    query = {"on_duplicate": "warn", "image_url": url}
    return partial(api_call, service, "PUT", f"/items/{entity_id}", query, data, "image/jpeg")


def same(value: Any, *_: Any) -> Any:
    return value


def stored_of(deployment: Deployment, prefix: str) -> list[str]:
    items = deployment.ddb.scan(TableName=RECORDS, ProjectionExpression="entity_id")["Items"]
    return sorted(i["entity_id"]["S"] for i in items if i["entity_id"]["S"].startswith(prefix))


def assert_one_stored(deployment: Deployment, prefix: str, answers: list[tuple[int, Any]]) -> str:
    (stored,) = stored_of(deployment, prefix)
    assert sorted(status for status, _ in answers) == [201] + [409] * (len(answers) - 1), answers
    for status, body in answers:
        if status == 409:
            assert body["error"]["code"] == "duplicate_image" and stored in body["error"]["message"], body
    return stored


@pytest.mark.parametrize("way", ["post", "put_with_address", "upload_kept"])
def test_eight_lambdas_writing_one_new_picture_store_one_record(deployment: Deployment, way: str) -> None:
    lambdas = [deployment.new_lambda() for _ in range(WRITERS)]
    for round_ in range(ROUNDS):
        data = encode(product_image(8000 + round_))
        url = f"https://shop.test/{way}/{round_}.jpg"
        deployment.images[url] = data
        prefix = f"{way}-{round_}-"

        if way == "post":
            calls = [post_item(s, f"{prefix}{i}", url) for i, s in enumerate(lambdas)]
        else:
            calls = [put_item(s, f"{prefix}{i}", data, url if way == "put_with_address" else "")
                     for i, s in enumerate(lambdas)]  # fmt: skip
        assert_one_stored(deployment, prefix, at_once(calls))
    # The index behind the table all along: nothing of the last rounds was searchable when they ran.
    assert deployment.index.count() < ROUNDS


def test_eight_lambdas_writing_different_edits_of_one_picture_store_one_record(deployment: Deployment) -> None:
    lambdas = [deployment.new_lambda() for _ in range(WRITERS)]
    for round_ in range(ROUNDS):
        copies = edited_copies(EDIT_SEEDS[round_ % len(EDIT_SEEDS)])
        turn = round_ % len(copies)
        copies = copies[turn:] + copies[:turn]
        prefix = f"edit-{round_}-"
        urls = []
        for i, copy_ in enumerate(copies):
            deployment.images[url := f"https://shop.test/edit/{round_}/{i}.jpg"] = encode(copy_)
            urls.append(url)

        calls = [post_item(s, f"{prefix}{i}", urls[i]) for i, s in enumerate(lambdas)]
        stored = assert_one_stored(deployment, prefix, at_once(calls))
        lambdas[0].records.remove(stored)  # the next round of the same picture starts afresh


def test_an_import_batch_with_skip_racing_four_lambdas_stores_one_record(deployment: Deployment) -> None:
    """The rows worker (RowImporter, with its job's gate) imports five rows of one picture while
    four API Lambdas register it with reject."""
    import boto3

    from dupcheck.adapters.dynamodb_jobs import DynamoDBImportJobs, create_jobs_table
    from dupcheck.bootstrap import build_row_importer
    from dupcheck.core.jobs.import_runs import JobGate
    from dupcheck.core.models import CatalogRow, ImportJob, ImportOptions, JobStatus, OnDuplicate, Source, utc_now
    from dupcheck.core.settings import Settings

    create_jobs_table(boto3.client("dynamodb", region_name=REGION), "dupcheck-jobs")
    jobs = DynamoDBImportJobs("dupcheck-jobs", client=boto3.client("dynamodb", region_name=REGION))
    worker = deployment.new_lambda()
    importer = build_row_importer(Settings.from_env(), worker)
    importer.fetcher = worker.parts.fetcher  # the web the test fills
    lambdas = [deployment.new_lambda() for _ in range(4)]
    for round_ in range(ROUNDS):
        data = encode(product_image(8500 + round_))
        prefix = f"imp-{round_}-"
        job = ImportJob(job_id=f"{round_:032x}", status=JobStatus.RUNNING, source=Source.ITEMS, created_at=utc_now(),
                        updated_at=utc_now(), options=ImportOptions(on_duplicate=OnDuplicate.SKIP))  # fmt: skip
        jobs.create(job)
        rows = []
        for i in range(5):
            deployment.images[url := f"https://shop.test/imp/{round_}/{i}.jpg"] = data
            rows.append(CatalogRow(i + 1, f"{prefix}row{i}", "", url))
        gate = JobGate(worker, jobs, job.job_id, OnDuplicate.SKIP)

        posts = []
        for i, service in enumerate(lambdas):
            deployment.images[url := f"https://shop.test/imp/{round_}/p{i}.jpg"] = data
            posts.append(post_item(service, f"{prefix}post{i}", url))
        answers = at_once([partial(importer.import_rows, rows, final=lambda _row: True, gate_of=partial(same, gate)),
                           *posts])  # fmt: skip
        (stored,) = stored_of(deployment, prefix)
        outcomes = [r.outcome.value for r in answers[0]]
        posted = [status for status, _ in answers[1:]]
        assert outcomes.count("done") + posted.count(201) == 1, (outcomes, answers[1:])
        assert outcomes.count("skipped") == 5 - outcomes.count("done") and posted.count(409) == 4 - posted.count(201)
        assert all(stored in body["error"]["message"] for status, body in answers[1:] if status == 409), (
            stored,
            [r.to_dict() if hasattr(r, "to_dict") else r for r in answers[0]],
            answers[1:],
        )


def test_the_stream_confirms_the_claims_of_what_it_indexed(deployment: Deployment) -> None:
    """Once the stream sync function has applied a gated write, the write's claim goes (the index
    shows the record): the claims a check reads stay those of the last seconds."""
    service = deployment.new_lambda()
    deployment.images["https://shop.test/c.jpg"] = encode(product_image(8900))
    service.registrar.register_url_checked("C1", "", "https://shop.test/c.jpg")
    assert [c.entity_id for c in service.parts.gate.live(None, None)] == ["C1"]  # committed, not yet indexed
    deadline = time.monotonic() + HELD_BACK_S + 30
    while service.parts.gate.live(None, None) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service.parts.gate.live(None, None) == [] and deployment.index.count() == 1


def test_a_lambda_stopped_between_its_claim_and_its_commit_holds_the_picture_only_for_its_lease(
    deployment: Deployment,
) -> None:
    """A Lambda dies (or freezes) after claiming a picture: until its lease passes, another write of
    the picture is refused naming it; after, the other write fences the dead claim and is stored,
    and should the first Lambda thaw and commit, its write stores nothing."""
    from dupcheck.core.errors import ServerBusy
    from dupcheck.core.models import OnDuplicate

    dead, other = deployment.new_lambda(), deployment.new_lambda()
    data = encode(product_image(8950))
    deployment.images[url := "https://shop.test/dead.jpg"] = data
    # The default 10 s lease: a refusal first waits SETTLE_S (5 s) for a write in flight, then names
    # it only if its lease has not passed.
    entry, query = dead.registrar.query_entry(entity_id="dead-1", sku="", image_url=url, data=data)
    passage = dead.registrar.admit(entry, OnDuplicate.REJECT, query)
    assert passage.passed and passage.claim is not None  # claimed and checked; then nothing more

    status, body = post_item(other, "dead-2", url)()
    assert status == 409 and "dead-1" in body["error"]["message"], body  # in flight: it may yet be stored
    time.sleep(max(0.0, passage.claim.lease_until - time.time()) + 0.2)
    status, body = post_item(other, "dead-2", url)()
    assert status == 201, body
    with pytest.raises(ServerBusy):  # thawed: its claim was fenced, its commit fails
        dead.records.save(entry, passage.claim)
    assert stored_of(deployment, "dead-") == ["dead-2"]


def test_a_warn_never_names_a_lambda_that_died_mid_write_once_its_lease_passed(deployment: Deployment) -> None:
    """Three times, eight Lambdas write one picture with `warn` at once and six of them die between
    their steps (after the claim, after the check: kill -9, a timeout). On AWS the lease is a
    writer's only sign of life: once theirs passed, eight `warn` uploads of the pictures at once name
    only records GET /items finds."""
    from dupcheck.core.models import OnDuplicate

    leases: list[float] = []

    def write(service: DupcheckService, i: int, entity_id: str, url: str, data: bytes) -> Any:
        if i % 3 == 2:  # lives: stored, naming what it found
            return put_warn(service, entity_id, data, url)()
        service.parts.gate.lease_s = 1.0  # the default 10 s, shortened so the test waits less
        entry, query = service.registrar.query_entry(entity_id=entity_id, sku="", image_url=url, data=data)
        if i % 3 == 0:
            claim = service.parts.gate.open(entry, OnDuplicate.WARN)  # dies after its claim
        else:
            claim = service.registrar.admit(entry, OnDuplicate.WARN, query).claim  # dies after its check
        assert claim is not None
        leases.append(claim.lease_until)
        return "died"

    urls = []
    for crash in range(3):
        data = encode(product_image(8970 + crash))
        deployment.images[url := f"https://shop.test/crash/{crash}.jpg"] = data
        urls.append((url, data))
        lambdas = [deployment.new_lambda() for _ in range(WRITERS)]
        answers = at_once([partial(write, s, i, f"crash{crash}-{i}", url, data) for i, s in enumerate(lambdas)])
        assert answers.count("died") == 6 and all(a[0] == 201 for a in answers if a != "died"), answers
    time.sleep(max(0.0, max(leases) - time.time()) + 0.2)

    lambdas = [deployment.new_lambda() for _ in range(WRITERS)]  # the three pictures, eight uploads at once
    answers = at_once([put_warn(s, f"after-{i}", urls[i % 3][1], urls[i % 3][0]) for i, s in enumerate(lambdas)])
    assert [status for status, _ in answers] == [201] * WRITERS, answers
    named = [match["entity_id"] for _, body in answers for match in body["duplicates"]]
    missing = sorted({e for e in named if api_call(lambdas[0], "GET", f"/items/{e}", {}, b"", "text/plain")[0] == 404})
    assert named and missing == [], missing  # every id a warn named is stored
    assert not any(e.startswith("crash") and int(e.rsplit("-", 1)[1]) % 3 != 2 for e in named)


# -- a keep decision against a re-registration of what it removes ---------------------------------------------


def post_decision(service: DupcheckService, body: dict[str, Any]) -> tuple[int, Any]:
    return api_call(service, "POST", "/duplicates/decisions", {}, json.dumps(body).encode(), "application/json")


def put_allow(service: DupcheckService, entity_id: str, data: bytes, url: str) -> tuple[int, Any]:
    return api_call(service, "PUT", f"/items/{entity_id}", {"on_duplicate": "allow", "image_url": url}, data,
                    "image/jpeg")  # fmt: skip


def test_a_keep_decision_never_removes_a_record_another_lambda_registered_again_after_it_read_it(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another Lambda registers K-copy again, with another picture, after the keep decision's Lambda
    read the group and before it removes: the removal's conditions are the records as read, so it
    fails, nothing is removed (K-other neither), K-copy keeps its new record and the decision is not
    kept (409 naming it). Decided again, it removes the new record it read; registered once more
    after that, K-copy is left by the undo, not overwritten by a copy."""
    from dupcheck.adapters.dynamodb_decisions import create_decisions_table

    create_decisions_table(deployment.ddb, "dupcheck-decisions")
    monkeypatch.setenv("DUPCHECK_DECISIONS_TABLE", "dupcheck-decisions")
    decider, other = deployment.new_lambda(), deployment.new_lambda()
    first, second, third = (encode(product_image(8990 + n)) for n in range(3))
    for entity_id, data in (("K", first), ("K-copy", first), ("K-other", first)):
        assert put_allow(other, entity_id, data, f"https://shop.test/{entity_id}.jpg")[0] == 201
    reading = decider.parts.store.get_many_consistent  # type: ignore[attr-defined]
    registered = []

    def read_then_register(entity_ids: list[str]) -> Any:
        records = reading(entity_ids)
        registered.append(put_allow(other, "K-copy", second, "https://shop.test/new.jpg"))
        return records

    monkeypatch.setattr(decider.parts.store, "get_many_consistent", read_then_register)
    keep = {"decision": "keep", "item": "K", "others": ["K-copy", "K-other"], "remove_others": True}
    status, refused = post_decision(decider, keep)
    assert registered[0][0] == 201 and (status, refused["error"]["code"]) == (409, "conflict"), refused
    assert "'K-copy' changed since the decision read it" in refused["error"]["message"]
    read = partial(api_call, other, "GET", body=b"", content_type="text/plain", query={})
    assert read(path="/items/K-copy")[1]["image_url"] == "https://shop.test/new.jpg"
    assert read(path="/items/K-other")[0] == 200
    assert read(path="/duplicates/decisions")[1]["decisions"] == []

    monkeypatch.setattr(decider.parts.store, "get_many_consistent", reading)
    status, made = post_decision(decider, keep)
    assert status == 201 and made["removed"] == ["K-copy", "K-other"], made
    assert put_allow(other, "K-copy", third, "https://shop.test/newer.jpg")[0] == 201
    status, undone = api_call(other, "POST", f"/duplicates/decisions/{made['decision_id']}/undo", {}, b"",
                              "text/plain")  # fmt: skip
    assert status == 200 and (undone["restored"], undone["left_out"]) == (["K-other"], ["K-copy"]), undone
    assert read(path="/items/K-copy")[1]["image_url"] == "https://shop.test/newer.jpg"


def test_a_keep_decision_racing_seven_lambdas_registering_what_it_removes_removes_only_what_it_read(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight Lambdas at once, rounds: a keep decision removing seven records, and seven writes each
    registering one of them again with another picture. A write that commits between the decision's
    read and its removal fails the removal's condition (409, nothing removed); either way, after
    the undo every id holds its new write, never the old record."""
    from dupcheck.adapters.dynamodb_decisions import create_decisions_table

    create_decisions_table(deployment.ddb, "dupcheck-decisions")
    monkeypatch.setenv("DUPCHECK_DECISIONS_TABLE", "dupcheck-decisions")
    for round_ in range(5):
        lambdas = [deployment.new_lambda() for _ in range(WRITERS)]
        keep, others = f"race{round_}-k", [f"race{round_}-{i}" for i in range(WRITERS - 1)]
        old, new = encode(product_image(9200 + round_)), encode(product_image(9300 + round_))
        for entity_id in (keep, *others):
            assert put_allow(lambdas[0], entity_id, old, f"https://shop.test/{entity_id}.jpg")[0] == 201
        body = {"decision": "keep", "item": keep, "others": others, "remove_others": True}
        answers = at_once([partial(post_decision, lambdas[0], body),
                           *(partial(put_allow, s, e, new, f"https://shop.test/{e}-new.jpg")
                             for s, e in zip(lambdas[1:], others, strict=True))])  # fmt: skip
        (status, made), written = answers[0], answers[1:]
        assert status in (201, 409) and [a[0] for a in written] == [201] * len(others), answers
        if status == 201:
            undo = f"/duplicates/decisions/{made['decision_id']}/undo"
            assert api_call(lambdas[0], "POST", undo, {}, b"", "text/plain")[0] == 200
        else:
            assert "changed since the decision read" in made["error"]["message"], made
        urls = [api_call(lambdas[0], "GET", f"/items/{e}", {}, b"", "text/plain")[1]["image_url"] for e in others]
        assert urls == [f"https://shop.test/{e}-new.jpg" for e in others], (made, urls)
