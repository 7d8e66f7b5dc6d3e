"""DuplicateDecisions on DynamoDB: the AWS deployment's decisions on duplicate groups, in a table
of their own (infra/components/decisions.py), keyed (`decision_id`, `item`):
* `item = "decision"`: the decision (its fields as JSON in `body`), `undone_at` once undone;
  listed in the sparse `recent` index (`listed = "decisions"`, `position`: created_at#decision_id,
  so that two decisions of one millisecond keep their order), newest first;
* `item = "member#<entity_id>"`: the decision names that record; the `member` index (`member`,
  `decision_id`) finds a record's decisions (the report's reading and find_similar's `reviewed`);
* `item = "copy#<entity_id>"`: a record the decision removed, as it was (`record`, `thumbnail`):
  what an undo puts back.
The members and copies are written first, the decision last, on the condition that it is new: a
failure between leaves rows no decision item names, which every read ignores. An undo sets
`undone_at` on the condition that it is not set, so of two undos one gets the copies.
Decisions do not expire: they are the shop's record of what was settled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.adapters.dynamodb_jobs import JobsTable, _s, _str
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import Decision, HashRecord, RemovedCopy

if TYPE_CHECKING:  # pragma: no cover
    from dupcheck.core.settings import Settings

DECISION = "decision"
LISTED = "decisions"
RECENT_INDEX = "recent"
MEMBER_INDEX = "member"
MEMBER, COPY = "member#", "copy#"
BATCH = 25  # BatchWriteItem's limit
READ_BATCH = 100  # BatchGetItem's limit


def create_decisions_table(client: Any, table_name: str) -> None:
    """The decisions table as infra/ creates it (for tests and local experiments)."""
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("decision_id", "item", "listed", "position", "member")],
        KeySchema=[{"AttributeName": "decision_id", "KeyType": "HASH"}, {"AttributeName": "item", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": RECENT_INDEX, "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": "listed", "KeyType": "HASH"},
                           {"AttributeName": "position", "KeyType": "RANGE"}]},
            {"IndexName": MEMBER_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": "member", "KeyType": "HASH"},
                           {"AttributeName": "decision_id", "KeyType": "RANGE"}]},
        ],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip


class DynamoDBDuplicateDecisions(JobsTable):
    """The table's client and its failures are the jobs table's kind (dynamodb_jobs.JobsTable)."""

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> Self:
        return cls(settings.decisions_table, client=client, region=settings.aws_region or None)

    def add(self, decision: Decision, removed: Sequence[RemovedCopy]) -> None:
        rows: list[dict[str, Any]] = [{**_key(decision.decision_id, MEMBER + m), "member": _s(m)}
                                      for m in decision.members]  # fmt: skip
        rows += [
            {**_key(decision.decision_id, COPY + c.record.entity_id), "record": _s(json.dumps(c.record.to_dict())),
             "thumbnail": {"B": c.thumbnail}}
            for c in removed
        ]  # fmt: skip
        self._write([{"PutRequest": {"Item": row}} for row in rows])
        item = {
            **_key(decision.decision_id, DECISION), "listed": _s(LISTED), "position": _s(_position(decision)),
            "body": _s(json.dumps(decision.to_dict())),
        }  # fmt: skip
        self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(decision_id)")

    def get(self, decision_id: str) -> Decision | None:
        item = self._call("get_item", Key=_key(decision_id, DECISION), ConsistentRead=True).get("Item")
        return _decision(item) if item else None

    def page(self, limit: int, after: str | None = None) -> tuple[list[Decision], str | None]:
        query: dict[str, Any] = {
            "IndexName": RECENT_INDEX, "KeyConditionExpression": "listed = :l",
            "ExpressionAttributeValues": {":l": _s(LISTED)}, "ScanIndexForward": False, "Limit": limit + 1,
        }  # fmt: skip
        if after is not None:
            last = self.get(after)
            if last is None:
                return [], None
            query["ExclusiveStartKey"] = {**_key(after, DECISION), "listed": _s(LISTED),
                                          "position": _s(_position(last))}  # fmt: skip
        items = self._call("query", **query).get("Items", [])
        decisions = [_decision(item) for item in items[:limit]]
        return decisions, decisions[-1].decision_id if len(items) > limit else None

    def involving(self, entity_id: str) -> list[Decision]:
        ids: list[str] = []
        query: dict[str, Any] = {"IndexName": MEMBER_INDEX, "KeyConditionExpression": "member = :m",
                                 "ExpressionAttributeValues": {":m": _s(entity_id)}}  # fmt: skip
        while True:
            answer = self._call("query", **query)
            ids += [_str(item, "decision_id") for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        found = [d for d in self._get_many(ids) if d.active]
        return sorted(found, key=lambda d: (d.created_at, d.decision_id), reverse=True)

    def take_back(self, decision_id: str, at: str) -> tuple[Decision, list[RemovedCopy]] | None:
        attributes = self._updated({
            "TableName": self.table_name, "Key": _key(decision_id, DECISION), "UpdateExpression": "SET undone_at = :at",
            "ConditionExpression": "attribute_exists(decision_id) AND attribute_not_exists(undone_at)",
            "ExpressionAttributeValues": {":at": _s(at)},
        })  # fmt: skip
        if attributes is None:
            return None
        copies = self._items(decision_id, COPY)
        self._write([{"DeleteRequest": {"Key": _key(decision_id, _str(item, "item"))}} for item in copies])
        kept = [RemovedCopy(HashRecord.from_dict(json.loads(_str(item, "record"))), bytes(item["thumbnail"]["B"]))
                for item in copies]  # fmt: skip
        return _decision(attributes), kept

    def withdraw(self, decision_id: str) -> None:
        """Forget a decision whose removal could not happen (its kept record went meanwhile)."""
        self._call("delete_item", Key=_key(decision_id, DECISION))  # first: no longer listed, whatever is left
        rest = self._items(decision_id, "")
        self._write([{"DeleteRequest": {"Key": _key(decision_id, _str(item, "item"))}} for item in rest])

    # -- pieces ------------------------------------------------------------------------------

    def _items(self, decision_id: str, prefix: str) -> list[Mapping[str, Any]]:
        """The decision's items whose `item` begins with `prefix` ("": every one; DynamoDB refuses an
        empty string as a key condition's value)."""
        query: dict[str, Any] = {"KeyConditionExpression": "decision_id = :d", "ConsistentRead": True,
                                 "ExpressionAttributeValues": {":d": _s(decision_id)}}  # fmt: skip
        if prefix:
            query.update(KeyConditionExpression="decision_id = :d AND begins_with(#item, :p)",
                         ExpressionAttributeNames={"#item": "item"},
                         ExpressionAttributeValues={":d": _s(decision_id), ":p": _s(prefix)})  # fmt: skip
        items: list[Mapping[str, Any]] = []
        while True:
            answer = self._call("query", **query)
            items += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return items
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _get_many(self, decision_ids: Sequence[str]) -> list[Decision]:
        found: list[Decision] = []
        unique = list(dict.fromkeys(decision_ids))
        for start in range(0, len(unique), READ_BATCH):
            keys: list[Any] = [_key(d, DECISION) for d in unique[start : start + READ_BATCH]]
            for attempt in range(8):
                if not keys:
                    break
                time.sleep(0.05 * (2**attempt - 1))  # unprocessed keys: the table is busy, back off
                answer = self._call_batch("batch_get_item", RequestItems={self.table_name: {"Keys": keys}})
                found += [_decision(item) for item in answer.get("Responses", {}).get(self.table_name, [])]
                keys = answer.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if keys:
                raise StoreUnavailable(f"DynamoDB BatchGetItem on {self.table_name!r} left keys unread")
        return found

    def _write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH):
            pending = requests[start : start + BATCH]
            for attempt in range(8):
                if not pending:
                    break
                time.sleep(0.05 * (2**attempt - 1))  # unprocessed items: the table is busy, back off
                answer = self._call_batch("batch_write_item", RequestItems={self.table_name: pending})
                pending = answer.get("UnprocessedItems", {}).get(self.table_name, [])
            if pending:
                raise StoreUnavailable(f"DynamoDB BatchWriteItem on {self.table_name!r} left items unwritten")

    def _call_batch(self, action: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, action)(**kwargs)
        except ClientError as exc:
            self._raise(exc, action)
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB {action} on {self.table_name!r} failed: {type(exc).__name__}") from exc


def _decision(item: Mapping[str, Any]) -> Decision:
    return Decision.from_dict({**json.loads(_str(item, "body")), "undone_at": _str(item, "undone_at") or None})


def _position(decision: Decision) -> str:
    return f"{decision.created_at}#{decision.decision_id}"


def _key(decision_id: str, item: str) -> dict[str, dict[str, str]]:
    return {"decision_id": _s(decision_id), "item": _s(item)}
