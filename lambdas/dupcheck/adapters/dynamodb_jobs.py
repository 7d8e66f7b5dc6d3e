"""ImportJobs on DynamoDB: the AWS deployment's import jobs, in a table of their own.

One table, keyed by (`job_id`, `item`):
* `item = "job"`: the job, its status and counters (`done`, `skipped`, `failed`), and the
  dispatcher's lease (`dispatch_token`) and progress (`dispatched`);
* `item = "row#0000000042"`: row 42 has its outcome: the marker that makes counting idempotent;
* `item = "failure#0000000042"`: why row 42 failed or was replaced (what GET /imports/{id}/failures
  lists);
* `item = "result#0000000042"`: row 42's check (a check job's rows, an import's duplicates: what GET
  /imports/{id}/results lists), its verdict, `duplicate_of` and best match;
* `item = "picture#<hash>"`: the first row of the job with that picture (`claim_picture`).
A sparse index, `recent` (`listed`, `created_at`), holds the job items only: recent jobs, newest
first. Everything expires with the job (`expires_at`, the table's TTL), RETENTION_DAYS after it
was created.

Counting: a batch of outcomes is one transaction: each row's marker is put on the condition that
it does not exist yet, and the job's counters are raised with `ADD` by what the batch holds. A
redelivered message or a retried batch makes a marker's condition fail: the whole transaction is
cancelled, its `CancellationReasons` say which rows were counted already, and the rest is written
again without them. So a row is counted once, and counters are never read, raised and written
back (no lost update between concurrent workers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Self

from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.adapters.dynamodb_store import _UNAVAILABLE_CODES  # one list of "try again later" codes
from dupcheck.core.errors import NotFound, StoreUnavailable
from dupcheck.core.jobs.imports import MAX_PAGE, expires_epoch
from dupcheck.core.models import (
    DETAILED,
    ImportJob,
    ImportOptions,
    JobStatus,
    Outcome,
    Position,
    RowResult,
    Source,
    utc_now,
)

if TYPE_CHECKING:  # pragma: no cover
    from dupcheck.core.settings import Settings

JOB = "job"
LISTED = "jobs"  # the `listed` value of every job item: the recent-jobs index's one partition
RECENT_INDEX = "recent"
TRANSACTION_ROWS = 30  # rows per transaction: markers + failures + results + the counter stay under 100 items
_FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


def row_key(row: int) -> str:
    return f"row#{row:010d}"


def failure_key(row: int) -> str:
    return f"failure#{row:010d}"


def result_key(row: int) -> str:
    return f"result#{row:010d}"


def create_jobs_table(client: Any, table_name: str) -> None:
    """The imports table as infra/ creates it (for tests and local experiments)."""
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("job_id", "item", "listed", "created_at")
        ],  # fmt: skip
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}, {"AttributeName": "item", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": RECENT_INDEX,
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [
                    {"AttributeName": "listed", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
            }
        ],  # fmt: skip
        BillingMode="PAY_PER_REQUEST",
    )


class JobsTable:
    """The jobs table's client and its one way of failing: what import jobs and duplicate scans
    (dynamodb_scans.py), which share the table, share."""

    def __init__(self, table_name: str, *, client: Any = None, region: str | None = None) -> None:
        if not table_name:
            raise ValueError("table_name is required: the jobs table (DUPCHECK_IMPORTS_TABLE)")
        self.table_name = table_name
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "adaptive", "max_attempts": 4})
            client = boto3.client("dynamodb", region_name=region or None, config=config)
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> Self:
        return cls(settings.imports_table, client=client, region=settings.aws_region or None)

    def _call(self, action: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, action)(TableName=self.table_name, **kwargs)
        except ClientError as exc:
            self._raise(exc, action)
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB {action} on {self.table_name!r} failed: {type(exc).__name__}") from exc

    def _updated(self, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """update_item (`request`: its arguments, the table's name among them): the item's new
        attributes, or None when the request's condition did not hold."""
        try:
            answer = self.client.update_item(**request, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            self._raise(exc, "UpdateItem")
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB UpdateItem failed: {type(exc).__name__}") from exc
        attributes: dict[str, Any] = answer["Attributes"]
        return attributes

    def _raise(self, exc: ClientError, action: str) -> NoReturn:
        """StoreUnavailable (503) for "try again later"; anything else is a bug, raised as it is."""
        if _code(exc) in _UNAVAILABLE_CODES:
            raise StoreUnavailable(f"DynamoDB {action} on {self.table_name!r} failed: {_code(exc)}") from exc
        raise exc


class DynamoDBImportJobs(JobsTable):
    # -- ImportJobs port ---------------------------------------------------------------------

    def create(self, job: ImportJob) -> None:
        item = {
            "job_id": _s(job.job_id), "item": _s(JOB), "listed": _s(LISTED), "status": _s(job.status),
            "source": _s(job.source), "options": _s(json.dumps(job.options.to_dict())),
            "created_at": _s(job.created_at),
            "updated_at": _s(job.updated_at), "done": _n(0), "skipped": _n(0), "failed": _n(0), "replaced": _n(0),
            "duplicates": _n(0), "dispatched": _n(0),
            "expires_at": _n(expires_epoch(job)),
        }  # fmt: skip
        if job.catalog_url:
            item["catalog_url"] = _s(job.catalog_url)
        self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(job_id)")

    def get(self, job_id: str) -> ImportJob | None:
        item = self._item(job_id)
        return _job(item) if item else None

    def recent(self, limit: int, after: Position | None = None) -> tuple[list[ImportJob], Position | None]:
        query: dict[str, Any] = {
            "IndexName": RECENT_INDEX, "KeyConditionExpression": "listed = :l",
            "ExpressionAttributeValues": {":l": _s(LISTED)}, "ScanIndexForward": False, "Limit": limit + 1,
        }  # fmt: skip
        if after is not None:
            created_at, job_id = after
            query["ExclusiveStartKey"] = {"listed": _s(LISTED), "created_at": _s(created_at), "job_id": _s(job_id),
                                          "item": _s(JOB)}  # fmt: skip
        items = self._call("query", **query).get("Items", [])
        jobs = [_job(item) for item in items[:limit]]
        return jobs, (jobs[-1].created_at, jobs[-1].job_id) if len(items) > limit else None

    def transition(
        self, job_id: str, to: JobStatus, *, allowed_from: Collection[JobStatus],
        rows: int | None = None, error: str | None = None,
    ) -> ImportJob | None:  # fmt: skip
        sets, condition, values = status_update(
            to, starts=to is JobStatus.RUNNING, ends=to in _FINAL, allowed_from=allowed_from,
            attributes={"rows": None if rows is None else _n(rows), "error": None if error is None else _s(error)},
        )  # fmt: skip
        return self._update(job_id, "SET " + ", ".join(sets), condition, values)

    def record(self, job_id: str, results: Sequence[RowResult]) -> ImportJob:
        by_row = {result.row: result for result in results}
        pending = sorted(by_row.values(), key=lambda r: r.row)
        for start in range(0, len(pending), TRANSACTION_ROWS):
            self._record_once(job_id, pending[start : start + TRANSACTION_ROWS])
        job = self.get(job_id)
        if job is None:
            raise NotFound(f"no import with job_id {job_id!r}")
        return job

    def _record_once(self, job_id: str, results: list[RowResult]) -> None:
        """One transaction for these rows; rows counted before are left out and the rest retried."""
        expires = self._expires(job_id)
        while results:
            writes, rows_of = _outcome_writes(self.table_name, job_id, results, expires)
            counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
            duplicates = sum(1 for r in results if r.duplicate_of)
            writes.append({"Update": {
                "TableName": self.table_name, "Key": _key(job_id, JOB),
                "UpdateExpression": "ADD done :d, skipped :s, failed :f, replaced :r, duplicates :u "
                                    "SET updated_at = :now",
                "ConditionExpression": "attribute_exists(job_id)",
                "ExpressionAttributeValues": {":d": _n(counts[Outcome.DONE]), ":s": _n(counts[Outcome.SKIPPED]),
                                              ":f": _n(counts[Outcome.FAILED]), ":r": _n(counts[Outcome.REPLACED]),
                                              ":u": _n(duplicates), ":now": _s(utc_now())},
            }})  # fmt: skip
            try:
                self.client.transact_write_items(TransactItems=writes)
                return
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    self._raise(exc, "TransactWriteItems")
                reasons = exc.response.get("CancellationReasons") or []
                counted = {rows_of[i] for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"
                           and i in rows_of}  # fmt: skip
                if reasons and reasons[-1].get("Code") == "ConditionalCheckFailed":
                    raise NotFound(f"no import with job_id {job_id!r}") from exc
                if not counted:  # a conflict or throttling, not a repeat: the caller retries later
                    raise StoreUnavailable(f"DynamoDB TransactWriteItems on {self.table_name!r} was cancelled: "
                                           f"{[r.get('Code') for r in reasons]}") from exc  # fmt: skip
                results = [r for r in results if r.row not in counted]
            except BotoCoreError as exc:
                raise StoreUnavailable(f"DynamoDB TransactWriteItems failed: {type(exc).__name__}") from exc

    def failures(self, job_id: str, limit: int, after_row: int = 0) -> tuple[list[RowResult], int | None]:
        return self._rows(job_id, failure_key, limit, after_row)

    def results(
        self, job_id: str, limit: int, after_row: int = 0, *, duplicates_only: bool = False
    ) -> tuple[list[RowResult], int | None]:
        return self._rows(job_id, result_key, limit, after_row, duplicates_only=duplicates_only)

    def _rows(self, job_id: str, key: Callable[[int], str], limit: int, after_row: int, *,
              duplicates_only: bool = False) -> tuple[list[RowResult], int | None]:  # fmt: skip
        """Detail items of `key`'s kind in row order; a filter reads on (a page at most MAX_PAGE items
        further each time) until it has `limit` + 1 or the job has no more."""
        query: dict[str, Any] = {
            "KeyConditionExpression": "job_id = :j AND item BETWEEN :lo AND :hi", "ConsistentRead": True,
            "ExpressionAttributeValues": {":j": _s(job_id), ":lo": _s(key(after_row + 1)),
                                          ":hi": _s(key(9_999_999_999))},
        }  # fmt: skip
        if duplicates_only:
            query["FilterExpression"] = "attribute_exists(duplicate_of)"
        found: list[RowResult] = []
        while len(found) <= limit:
            answer = self._call("query", Limit=MAX_PAGE if duplicates_only else limit + 1, **query)
            found += [_row_of(item) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found[:limit], found[limit - 1].row if len(found) > limit else None

    def claim_picture(self, job_id: str, picture: str, row: int, entity_id: str) -> tuple[int, str]:
        key = _key(job_id, f"picture#{picture}")
        try:
            self.client.put_item(
                TableName=self.table_name, Item={**key, "row": _n(row), "entity_id": _s(entity_id),
                                                 "expires_at": _n(self._expires(job_id))},
                ConditionExpression="attribute_not_exists(job_id)",
            )  # fmt: skip
            return row, entity_id
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                self._raise(exc, "PutItem")
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB PutItem failed: {type(exc).__name__}") from exc
        first = self._call("get_item", Key=key, ConsistentRead=True).get("Item") or {}
        return _int(first, "row"), _str(first, "entity_id")

    # -- DispatchedJobs ----------------------------------------------------------------------

    def claim(self, job_id: str, token: str, allowed_from: Collection[JobStatus]) -> ImportJob | None:
        others = {f":from{i}": _s(s) for i, s in enumerate(set(allowed_from) - {JobStatus.RUNNING})}
        condition = "#status = :running AND dispatch_token = :token"  # DynamoDB refuses redundant parentheses
        if others:
            condition = f"#status IN ({', '.join(others)}) OR ({condition})"
        return self._update(
            job_id,
            "SET #status = :running, dispatch_token = :token, updated_at = :now, "
            "started_at = if_not_exists(started_at, :now)",
            condition, {":running": _s(JobStatus.RUNNING), ":token": _s(token), ":now": _s(utc_now()), **others},
        )  # fmt: skip

    def mark_dispatched(self, job_id: str, token: str, rows: int) -> None:
        self._update(job_id, "SET dispatched = :n", "dispatch_token = :token", {":n": _n(rows), ":token": _s(token)})

    def dispatched(self, job_id: str) -> int:
        item = self._item(job_id)
        return int(item["dispatched"]["N"]) if item and "dispatched" in item else 0

    # -- pieces ------------------------------------------------------------------------------

    def _item(self, job_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._call("get_item", Key=_key(job_id, JOB), ConsistentRead=True).get("Item")
        return item

    def _expires(self, job_id: str) -> int:
        item = self._item(job_id)
        if item is None:
            raise NotFound(f"no import with job_id {job_id!r}")
        return int(item["expires_at"]["N"])

    def _update(self, job_id: str, update: str, condition: str, values: Mapping[str, Any]) -> ImportJob | None:
        names = {n: n[1:] for n in ("#status", "#rows", "#error") if n in update or n in condition}
        attributes = self._updated({
            "TableName": self.table_name, "Key": _key(job_id, JOB), "UpdateExpression": update,
            "ConditionExpression": f"attribute_exists(job_id) AND ({condition})",
            "ExpressionAttributeValues": dict(values), **({"ExpressionAttributeNames": names} if names else {}),
        })  # fmt: skip
        return None if attributes is None else _job(attributes)


def status_update(
    to: str, *, starts: bool, ends: bool, allowed_from: Collection[str], attributes: Mapping[str, dict | None]
) -> tuple[list[str], str, dict[str, Any]]:
    """A job's status update (an import's, a scan's): its SET clauses, its condition (the status is
    one of `allowed_from`) and their values. `updated_at` is now, `started_at` too the first time it
    `starts`, `finished_at` when it `ends`, and each of `attributes` (`#name`) takes its value unless
    that is None."""
    sets = ["#status = :to", "updated_at = :now"]
    values: dict[str, Any] = {":to": _s(to), ":now": _s(utc_now())}
    if starts:
        sets.append("started_at = if_not_exists(started_at, :now)")
    if ends:
        sets.append("finished_at = :now")
    for name, value in attributes.items():
        if value is not None:
            sets.append(f"#{name} = :{name}")
            values[f":{name}"] = value
    allowed = {f":from{i}": _s(status) for i, status in enumerate(allowed_from)}
    return sets, f"#status IN ({', '.join(allowed)})", {**values, **allowed}


def _outcome_writes(
    table: str, job_id: str, results: list[RowResult], expires: int
) -> tuple[list[dict], dict[int, int]]:
    """The marker (and, for a failure, its details) of each row; and which write is whose marker."""
    writes: list[dict] = []
    rows_of: dict[int, int] = {}
    for result in results:
        rows_of[len(writes)] = result.row
        writes.append({"Put": {"TableName": table, "Item": {**_key(job_id, row_key(result.row)),
                               "outcome": _s(result.outcome), "expires_at": _n(expires)},
                               "ConditionExpression": "attribute_not_exists(job_id)"}})  # fmt: skip
        kinds = ([failure_key] if result.outcome in DETAILED else []) + ([result_key] if result.verdict else [])
        for key in kinds:
            item = {**_key(job_id, key(result.row)), "row": _n(result.row), "outcome": _s(result.outcome),
                    "entity_id": _s(result.entity_id), "image_url": _s(result.image_url), "code": _s(result.code),
                    "message": _s(result.message[:2000]), "expires_at": _n(expires)}  # fmt: skip
            if result.verdict:
                item["checked"] = _s(json.dumps(result.detail()))
            if result.duplicate_of:
                item["duplicate_of"] = _s(result.duplicate_of)
            writes.append({"Put": {"TableName": table, "Item": item}})
    return writes, rows_of


def _row_of(item: Mapping[str, Any]) -> RowResult:
    result = RowResult(int(item["row"]["N"]), Outcome(_str(item, "outcome") or "failed"), _str(item, "entity_id"),
                       _str(item, "image_url"), _str(item, "code"), _str(item, "message"))  # fmt: skip
    checked = _str(item, "checked")
    return result.with_detail(json.loads(checked) if checked else None)


def _job(item: Mapping[str, Any]) -> ImportJob:
    rows = item.get("rows")
    return ImportJob(
        job_id=_str(item, "job_id"), status=JobStatus(_str(item, "status")), source=Source(_str(item, "source")),
        created_at=_str(item, "created_at"), updated_at=_str(item, "updated_at"),
        options=ImportOptions.from_dict(json.loads(_str(item, "options") or "{}")),
        catalog_url=_str(item, "catalog_url") or None, rows=int(rows["N"]) if rows else None,
        done=_int(item, "done"), skipped=_int(item, "skipped"), failed=_int(item, "failed"),
        replaced=_int(item, "replaced"), duplicates=_int(item, "duplicates"),
        started_at=_str(item, "started_at") or None, finished_at=_str(item, "finished_at") or None,
        error=_str(item, "error") or None,
    )  # fmt: skip


def _key(job_id: str, item: str) -> dict[str, dict[str, str]]:
    return {"job_id": _s(job_id), "item": _s(item)}


def _s(value: str) -> dict[str, str]:
    return {"S": str(value)}


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _str(item: Mapping[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _int(item: Mapping[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
