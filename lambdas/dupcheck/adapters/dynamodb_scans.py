"""ScanJobs on DynamoDB: the AWS deployment's duplicate scans, in the imports' jobs table.

Keyed as the table keys everything, (`job_id`, `item`):
* `(scan_id, "scan")`: a scan, its status, progress and result, and the scan function's lease
  (`scan_token`); listed in the table's `recent` index under `listed = "scans"` (import jobs are
  listed under "jobs": the two lists never mix);
* `("scans", "active")`: the lock that makes a scan the only active one. Creating a scan puts it
  on the condition that it does not exist, in one transaction with the scan; the transition to a
  final status deletes it in one transaction with the scan's update. A scan that stalled (its
  function failed past its retries) is failed by `ScanService`, which releases the lock the same way.
Scans expire with the table's TTL (`expires_at`), RETENTION_DAYS after they were created.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.adapters.dynamodb_jobs import (  # one table, one encoding
    RECENT_INDEX,
    JobsTable,
    _code,
    _int,
    _n,
    _s,
    _str,
    status_update,
)
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.jobs.scans import FINAL, expires_epoch
from dupcheck.core.models import Marks, ScanJob, ScanStatus, utc_now

SCAN = "scan"
LISTED = "scans"
LOCK_KEY = {"job_id": {"S": "scans"}, "item": {"S": "active"}}
_NAMES = {"#status": "status", "#error": "error", "#result": "result", "#total": "total"}


class DynamoDBScanJobs(JobsTable):
    # -- ScanJobs port -----------------------------------------------------------------------

    def create(self, job: ScanJob) -> ScanJob:
        item = {
            **_key(job.scan_id), "listed": _s(LISTED), "status": _s(job.status), "done": _n(0),
            "created_at": _s(job.created_at), "updated_at": _s(job.updated_at), "expires_at": _n(expires_epoch(job)),
            "marks": _s(job.marks),
        }  # fmt: skip
        lock = {**LOCK_KEY, "scan_id": _s(job.scan_id), "expires_at": _n(expires_epoch(job))}
        try:
            new = "attribute_not_exists(job_id)"
            self.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table_name, "Item": item, "ConditionExpression": new}},
                {"Put": {"TableName": self.table_name, "Item": lock, "ConditionExpression": new}},
            ])  # fmt: skip
            return job
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                self._raise(exc, "TransactWriteItems")
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if reasons[1:2] != ["ConditionalCheckFailed"]:
                raise StoreUnavailable(f"DynamoDB TransactWriteItems on {self.table_name!r} was cancelled: "
                                       f"{reasons}") from exc  # fmt: skip
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB TransactWriteItems failed: {type(exc).__name__}") from exc
        lock = self._call("get_item", Key=LOCK_KEY, ConsistentRead=True).get("Item")
        active = self.get(_str(lock, "scan_id")) if lock else None
        if active is None:  # released in between: the caller may simply try again
            raise StoreUnavailable("a duplicate scan was ending while this one was started: try again")
        return active

    def get(self, scan_id: str) -> ScanJob | None:
        item = self._call("get_item", Key=_key(scan_id), ConsistentRead=True).get("Item")
        return _job(item) if item else None

    def recent(self, limit: int) -> list[ScanJob]:
        answer = self._call(
            "query", IndexName=RECENT_INDEX, KeyConditionExpression="listed = :l",
            ExpressionAttributeValues={":l": _s(LISTED)}, ScanIndexForward=False, Limit=limit,
        )  # fmt: skip
        return [_job(item) for item in answer.get("Items", [])]

    def transition(
        self, scan_id: str, to: ScanStatus, *, allowed_from: Collection[ScanStatus], error: str | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> ScanJob | None:  # fmt: skip
        sets, condition, values = status_update(
            to, starts=to is ScanStatus.RUNNING, ends=to in FINAL, allowed_from=allowed_from, attributes={
                "error": None if error is None else _s(error[:2000]),
                "result": None if result is None else _s(json.dumps(dict(result))),
            },
        )  # fmt: skip
        update = {
            "TableName": self.table_name, "Key": _key(scan_id), "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": f"attribute_exists(job_id) AND {condition}",
            "ExpressionAttributeValues": values, "ExpressionAttributeNames": _names(sets),
        }  # fmt: skip
        if to not in FINAL:
            return self._update(update)
        release = {"TableName": self.table_name, "Key": LOCK_KEY,
                   "ConditionExpression": "attribute_not_exists(job_id) OR scan_id = :id",
                   "ExpressionAttributeValues": {":id": _s(scan_id)}}  # fmt: skip
        try:
            self.client.transact_write_items(TransactItems=[{"Update": update}, {"Delete": release}])
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                self._raise(exc, "TransactWriteItems")
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return None  # not in an allowed status (or gone)
            raise StoreUnavailable(f"DynamoDB TransactWriteItems on {self.table_name!r} was cancelled: "
                                   f"{reasons}") from exc  # fmt: skip
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB TransactWriteItems failed: {type(exc).__name__}") from exc
        return self.get(scan_id)

    def progress(self, scan_id: str, phase: str, done: int, total: int | None) -> bool:
        sets = ["#phase = :phase", "#done = :done", "updated_at = :now"]
        values: dict[str, Any] = {":phase": _s(phase), ":done": _n(done), ":now": _s(utc_now()),
                                  ":running": _s(ScanStatus.RUNNING)}  # fmt: skip
        remove = ""
        if total is None:
            remove = " REMOVE #total"
        else:
            sets.append("#total = :total")
            values[":total"] = _n(total)
        return self._update({
            "TableName": self.table_name, "Key": _key(scan_id), "UpdateExpression": "SET " + ", ".join(sets) + remove,
            "ConditionExpression": "#status = :running", "ExpressionAttributeValues": values,
            "ExpressionAttributeNames": {"#status": "status", "#phase": "phase", "#done": "done", "#total": "total"},
        }) is not None  # fmt: skip

    # -- the scan function's lease -----------------------------------------------------------

    def claim(self, scan_id: str, token: str) -> ScanJob | None:
        """The scan, now running under `token`: started from queued, or already running under the
        same token (a continuation, or a redelivered start). None for anyone else."""
        return self._update({
            "TableName": self.table_name, "Key": _key(scan_id),
            "UpdateExpression": "SET #status = :running, scan_token = :token, updated_at = :now, "
            "started_at = if_not_exists(started_at, :now)",
            "ConditionExpression": "#status = :queued OR (#status = :running AND scan_token = :token)",
            "ExpressionAttributeValues": {":running": _s(ScanStatus.RUNNING), ":queued": _s(ScanStatus.QUEUED),
                                          ":token": _s(token), ":now": _s(utc_now())},
            "ExpressionAttributeNames": {"#status": "status"},
        })  # fmt: skip

    # -- pieces ------------------------------------------------------------------------------

    def _update(self, request: dict[str, Any]) -> ScanJob | None:
        attributes = self._updated(request)
        return None if attributes is None else _job(attributes)


def _names(sets: list[str]) -> dict[str, str]:
    text = " ".join(sets)
    return {name: value for name, value in _NAMES.items() if name in text or name == "#status"}


def _job(item: Mapping[str, Any]) -> ScanJob:
    total, result = item.get("total"), _str(item, "result")
    return ScanJob(
        scan_id=_str(item, "job_id"), status=ScanStatus(_str(item, "status")), created_at=_str(item, "created_at"),
        updated_at=_str(item, "updated_at"), phase=_str(item, "phase") or None, done=_int(item, "done"),
        total=int(total["N"]) if total else None, started_at=_str(item, "started_at") or None,
        finished_at=_str(item, "finished_at") or None, error=_str(item, "error") or None,
        result=json.loads(result) if result else None, marks=Marks(_str(item, "marks") or Marks.PHOTO),
    )  # fmt: skip


def _key(scan_id: str) -> dict[str, dict[str, str]]:
    return {"job_id": _s(scan_id), "item": _s(SCAN)}
