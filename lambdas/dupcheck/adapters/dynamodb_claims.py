"""WriteClaims on DynamoDB (core/catalog/gate.py): the gate's claims in a table of their own, committed
with their records in one TransactWriteItems with the records table.

Items (key `pk`, `sk`; `expires_at` is the table's TTL attribute, a backstop only):
* `live#<shard>` / `<claim_id>`: a claim that is pending, or committed and not yet confirmed in
  the index. Small (ids, the hash, state, lease), so `live` reads every one with a strongly
  consistent Query of each of SHARDS partitions: a few items a second of writes in flight.
* `claim#<claim_id>` / `entry`: a pending claim's picture (the record's fields and its thumbnail),
  read only for the pending claims a check finds near its picture. Never deleted: TTL removes it
  (free) a day on; once the claim is not pending its live item says so and nothing reads it.

A gated write: its picture's item, then its live item (a reader that sees the claim finds its
picture); then one transaction: the live item pending -> committed (the condition a fence breaks)
and the record put with `gate_claim` naming the live item. The stream sync function deletes that
live item once the index shows the record (after a refresh), so a check that reads the live items
before the index sees each committed write in one or the other. A write without a check (`allow`)
puts a committed live item with its record, for the same reason. Leaving the picture item out of
the transaction halves the write's cost (a transactional delete costs twice its ~17 KB, median).

Why a table of its own: the records table's stream feeds the index, and its scans feed the
duplicate report; claims are neither. Partitions: writes spread over SHARDS live partitions by
the claim id's random half, each read whole by every check (a partition takes 1,000 writes/s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.adapters.dynamodb_store import (
    BATCH_GET_LIMIT,
    DynamoDBRecordStore,
    item_to_record,
    key_of,
    record_to_item,
)
from dupcheck.core.catalog.gate import EXPIRED, KEPT_GONE, new_claim_id
from dupcheck.core.catalog.kept_images import kept_name
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import Claim, Claimed, ClaimState, Entry, HashRecord, HashValue

if TYPE_CHECKING:  # pragma: no cover - typing only
    from dupcheck.core.settings import Settings

SHARDS = 4
GATE_CLAIM = "gate_claim"  # the records table's attribute naming the live item of the write that stored it
# TTL backstops (DynamoDB deletes expired items within days): a live item the stream never confirmed
# (its record's change went to the dead-letter queue), a claim whose writer died.
COMMITTED_EXPIRE_S = 7 * 24 * 3600
PENDING_EXPIRE_S = 24 * 3600
GONE_KEPT_S = 24 * 3600  # a deleted picture's tombstone: longer than any write that read it takes
STALE_DELETE_S = 300.0  # a delete marked this long ago died: its deleters (API 29 s, stream sync 60 s) run shorter
_PENDING = ClaimState.PENDING.value
_deserializer = TypeDeserializer()


def shard_of(claim_id: str) -> int:
    return int(claim_id[-4:], 16) % SHARDS  # the id's random half


def live_key(claim_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"live#{shard_of(claim_id)}"}, "sk": {"S": claim_id}}


def _entry_key(claim_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"claim#{claim_id}"}, "sk": {"S": "entry"}}


def live_item(claim: Claim, now: float) -> dict[str, Any]:
    """A claim's live item (module docstring)."""
    expires = now + (PENDING_EXPIRE_S if claim.state is ClaimState.PENDING else COMMITTED_EXPIRE_S)
    return {
        **live_key(claim.claim_id), "entity_id": {"S": claim.entity_id}, "hash": {"S": claim.hash.hex},
        "yields": {"BOOL": claim.yields}, "lease_until": {"N": repr(claim.lease_until)},
        "state": {"S": claim.state.value}, "expires_at": {"N": str(int(expires))},
    }  # fmt: skip


def picture_item(claim: Claim, entry: Entry, now: float) -> dict[str, Any]:
    """A pending claim's picture item: the record it would write and its thumbnail (module docstring)."""
    return {
        **_entry_key(claim.claim_id), "record": {"M": record_to_item(entry.record)},
        "thumbnail": {"B": entry.thumbnail}, "expires_at": {"N": str(int(now + PENDING_EXPIRE_S))},
    }  # fmt: skip


def create_claims_table(client: Any, table_name: str, *, wait: bool = True) -> None:
    """Create the claims table as infra/ does (tests and local experiments)."""
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    if wait:
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    client.update_time_to_live(TableName=table_name,
                               TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})  # fmt: skip


class DynamoDBClaims:
    """The gate's claims (module docstring) beside `store`'s records table."""

    def __init__(self, store: DynamoDBRecordStore, table_name: str, *, clock: Callable[[], float] = time.time) -> None:
        if not table_name:
            raise ValueError("table_name is required for the gate's claims")
        self.store, self.table_name, self.clock = store, table_name, clock
        self.client = store.client

    @classmethod
    def from_settings(cls, settings: Settings, store: DynamoDBRecordStore) -> DynamoDBClaims:
        return cls(store, settings.claims_table)

    # -- WriteClaims ---------------------------------------------------------------------------

    def open(self, claim: Claim, entry: Entry) -> None:
        now = self.clock()
        self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=picture_item(claim, entry, now))
        self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=live_item(claim, now))

    def live(self, indexed_through: int | None) -> list[Claim]:
        claims: list[Claim] = []
        for shard in range(SHARDS):
            request: dict[str, Any] = {
                "TableName": self.table_name, "ConsistentRead": True, "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"live#{shard}"}},
            }  # fmt: skip
            while True:
                page = self._call("Query", self.client.query, **request)
                claims.extend(_claim_of(item) for item in page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [c for c in claims if c.state in (ClaimState.PENDING, ClaimState.COMMITTED)]

    def entries(self, claims: Sequence[Claim]) -> dict[str, Claimed]:
        found: dict[str, Claimed] = {}
        pending = [c for c in claims if c.state is ClaimState.PENDING]
        for item in self._batch_get(self.table_name, [_entry_key(c.claim_id) for c in pending]):
            claim_id = item["pk"]["S"].split("#", 1)[1]
            record = item_to_record(item["record"]["M"])
            found[claim_id] = Claimed(Entry(record, bytes(item.get("thumbnail", {}).get("B", b""))), committed=False)
        # Committed when they were read: the record (one committed since reads as pending: its
        # writer's picture, and `fence` or `states` then tell that it was stored).
        settled = [c for c in claims if c.claim_id not in found]
        keys = [key_of(e) for e in dict.fromkeys(c.entity_id for c in settled)]
        stored = {r.entity_id: r for r in map(item_to_record, self._batch_get(self.store.table_name, keys))}
        for claim in settled:
            if (kept := stored.get(claim.entity_id)) is not None and kept.hash == claim.hash:
                found[claim.claim_id] = Claimed(Entry(kept), committed=True)
        return found

    def fence(self, claim: Claim, beaten_by: str, now: float) -> ClaimState:
        expired = claim.lease_until < now
        if self.conditional(
            "UpdateItem", self.client.update_item, Key=live_key(claim.claim_id),
            UpdateExpression="SET #state = :beaten, beaten_by = :by",
            ConditionExpression="#state = :pending AND (yields = :yes OR lease_until < :now)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":beaten": {"S": ClaimState.BEATEN.value}, ":pending": {"S": _PENDING},
                                       ":yes": {"BOOL": True}, ":now": {"N": repr(now)},
                                       ":by": {"S": EXPIRED if expired else beaten_by}},
        ):  # fmt: skip
            return ClaimState.BEATEN
        item = self._call("GetItem", self.client.get_item, TableName=self.table_name, Key=live_key(claim.claim_id),
                          ConsistentRead=True).get("Item")  # fmt: skip
        if item is not None:
            return ClaimState(item["state"]["S"])
        # Gone: withdrawn, or committed and confirmed in the index since: the store tells which.
        record = self.store.get_consistent(claim.entity_id)
        return ClaimState.COMMITTED if record is not None and record.hash == claim.hash else ClaimState.WITHDRAWN

    def states(self, claims: Sequence[Claim]) -> dict[str, ClaimState]:
        items = self._batch_get(self.table_name, [live_key(c.claim_id) for c in claims])
        found = {item["sk"]["S"]: ClaimState(item["state"]["S"]) for item in items}
        gone = [c for c in claims if c.claim_id not in found]  # withdrawn, or committed and confirmed since
        if gone:
            stored = {r.entity_id: r for r in map(item_to_record, self._batch_get(
                self.store.table_name, [key_of(e) for e in dict.fromkeys(c.entity_id for c in gone)]))}  # fmt: skip
            for claim in gone:
                record = stored.get(claim.entity_id)
                committed = record is not None and record.hash == claim.hash
                found[claim.claim_id] = ClaimState.COMMITTED if committed else ClaimState.WITHDRAWN
        return found

    def withdraw(self, claim_id: str) -> None:
        self.conditional("DeleteItem", self.client.delete_item, Key=live_key(claim_id),
                         ConditionExpression="#state <> :committed", ExpressionAttributeNames={"#state": "state"},
                         ExpressionAttributeValues={":committed": {"S": ClaimState.COMMITTED.value}})  # fmt: skip

    def commit(self, writes: Sequence[tuple[HashRecord, Claim | None]]) -> list[str | None]:
        """One transaction a write (a record and its claim: a fenced claim cancels only its own), with
        the kept image it names, if any, counted as used unless it is being deleted."""
        reasons: list[str | None] = []
        now = self.clock()
        for record, claim in writes:
            if claim is None:
                claim = Claim(new_claim_id(), record.entity_id, record.hash, yields=False, lease_until=now,
                              state=ClaimState.COMMITTED)  # fmt: skip
                actions: list[dict[str, Any]] = [{"Put": {"TableName": self.table_name, "Item": live_item(claim, now)}}]
            else:
                actions = [{"Update": {
                    "TableName": self.table_name, "Key": live_key(claim.claim_id),
                    "UpdateExpression": "SET #state = :committed, expires_at = :expires",
                    "ConditionExpression": "#state = :pending", "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {":committed": {"S": ClaimState.COMMITTED.value},
                                                  ":pending": {"S": _PENDING},
                                                  ":expires": {"N": str(int(now + COMMITTED_EXPIRE_S))}},
                }}]  # fmt: skip
            item = {**record_to_item(record), GATE_CLAIM: {"S": claim.claim_id}}
            actions.append({"Put": {"TableName": self.store.table_name, "Item": item}})
            if (name := kept_name(record.image_url)) is not None:
                actions.append({"Update": {
                    "TableName": self.table_name, "Key": picture_key(name), "UpdateExpression": "ADD #users :id",
                    "ConditionExpression": "attribute_not_exists(deleting) AND attribute_not_exists(gone)",
                    "ExpressionAttributeNames": {"#users": "users"},
                    "ExpressionAttributeValues": {":id": {"SS": [record.entity_id]}},
                }})  # fmt: skip
            failed = self._transact(actions)
            if not failed:
                reasons.append(None)
            elif len(actions) - 1 in failed and name is not None:
                reasons.append(KEPT_GONE)
            else:
                reasons.append(self._beaten_by(claim))
        return reasons

    # -- the stream's side ---------------------------------------------------------------------

    def confirm_indexed(self, claim_ids: Sequence[str]) -> None:
        """The index shows these claims' records (the stream sync function, after a refresh): their
        live items go; a check finds the records in the index from now on."""
        for claim_id in dict.fromkeys(claim_ids):
            self.conditional("DeleteItem", self.client.delete_item, Key=live_key(claim_id),
                             ConditionExpression="#state = :committed", ExpressionAttributeNames={"#state": "state"},
                             ExpressionAttributeValues={":committed": {"S": ClaimState.COMMITTED.value}})  # fmt: skip

    # -- pieces --------------------------------------------------------------------------------

    def _transact(self, actions: list[dict[str, Any]]) -> set[int]:
        """Write the transaction; the positions of the actions whose condition failed (it was then
        not written), empty when it was."""
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            failed = {i for i, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"}
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException" and failed:
                return failed
            raise self._unavailable(exc, "TransactWriteItems") from exc
        except BotoCoreError as exc:
            raise self._unavailable(exc, "TransactWriteItems") from exc
        return set()

    def _beaten_by(self, claim: Claim) -> str:
        item = self._call("GetItem", self.client.get_item, TableName=self.table_name, Key=live_key(claim.claim_id),
                          ConsistentRead=True).get("Item") or {}  # fmt: skip
        return str(item.get("beaten_by", {}).get("S", "")) or EXPIRED

    def _batch_get(self, table: str, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {table: {"Keys": list(keys[start : start + BATCH_GET_LIMIT]),
                                               "ConsistentRead": True}}  # fmt: skip
            for attempt in range(self.store.max_attempts):
                response = self._call("BatchGetItem", self.client.batch_get_item, RequestItems=request)
                items.extend(response.get("Responses", {}).get(table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self.store._backoff(attempt)
            else:
                raise StoreUnavailable(f"DynamoDB BatchGetItem on {table!r}: keys still unprocessed")
        return items

    def conditional(self, action: str, fn: Callable[..., Any], **kwargs: Any) -> bool:
        """A conditional write on this table: whether its condition held (and it was written)."""
        try:
            fn(TableName=self.table_name, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise self._unavailable(exc, action) from exc
        except BotoCoreError as exc:
            raise self._unavailable(exc, action) from exc
        return True

    def _call(self, action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(exc, action) from exc

    def _unavailable(self, exc: Exception, action: str) -> StoreUnavailable:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
        return StoreUnavailable(f"DynamoDB {action} on the gate's claims ({self.table_name!r}) failed: {code}")


def picture_key(name: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"picture#{name}"}, "sk": {"S": "picture"}}


def _holder_key(holder: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"holder#{holder}"}, "sk": {"S": "holder"}}


class DynamoDBKeptUses:
    """What holds a kept image on AWS (core/catalog/kept_images.py: KeptImageUses, KeptImagePins,
    GuardedDeletes), in a `picture#<name>` item of the claims table beside the records table's index
    by picture:
    * `users`: the ids of records that name it, added in the transaction that writes the record
      (DynamoDBClaims.commit) and dropped by the stream sync function once the record no longer
      names it; the records table's index (eventually consistent) is asked as well;
    * `holders`: pins (a decision's copies, an import job's catalog), with a `holder#<holder>` item
      listing the holder's pictures, so that it can let them all go;
    * `deleting`, then `gone`: a delete marks the item first, on the condition that nothing uses or
      holds it, so a write naming the picture (whose transaction requires neither mark) cannot be
      stored past it; `gone` stays a while (TTL) and a picture kept again clears it."""

    def __init__(self, store: DynamoDBRecordStore, claims: DynamoDBClaims) -> None:
        self.store, self.claims = store, claims

    def uses_kept_image(self, name: str, *, just_changed: str = "") -> bool:
        item = self._picture(name)
        if item.get("users") or item.get("holders"):
            return True
        return self.store.uses_kept_image(name, just_changed=just_changed)

    def drop_user(self, name: str, entity_id: str) -> None:
        """The record `entity_id` no longer names the picture (the stream sync function)."""
        self._update(name, "DELETE #users :id", {":id": {"SS": [entity_id]}}, names={"#users": "users"})

    def pin_kept(self, names: Collection[str], holder: str) -> None:
        for name in names:
            self._update(name, "ADD holders :h", {":h": {"SS": [holder]}})
        self.claims._call("UpdateItem", self.claims.client.update_item, TableName=self.claims.table_name,
                          Key=_holder_key(holder), UpdateExpression="ADD #names :n",
                          ExpressionAttributeNames={"#names": "names"},
                          ExpressionAttributeValues={":n": {"SS": sorted(names)}})  # fmt: skip

    def unpin_kept(self, holder: str) -> None:
        item = self.claims._call("GetItem", self.claims.client.get_item, TableName=self.claims.table_name,
                                 Key=_holder_key(holder), ConsistentRead=True).get("Item") or {}  # fmt: skip
        for name in item.get("names", {}).get("SS", []):
            self._update(name, "DELETE holders :h", {":h": {"SS": [holder]}})
        self.claims._call("DeleteItem", self.claims.client.delete_item, TableName=self.claims.table_name,
                          Key=_holder_key(holder))  # fmt: skip

    def pin_holders(self, prefix: str) -> set[str]:
        found: set[str] = set()
        request: dict[str, Any] = {
            "TableName": self.claims.table_name, "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": {"S": f"holder#{prefix}"}}, "ProjectionExpression": "pk",
        }  # fmt: skip
        while True:
            page = self.claims._call("Scan", self.claims.client.scan, **request)
            found.update(item["pk"]["S"].split("#", 1)[1] for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def begin_delete(self, name: str, now: float) -> bool:
        """Mark the picture as being deleted if nothing uses or holds it (and no other delete of it
        is under way, unless that one is older than STALE_DELETE_S: its deleter died)."""
        return self.claims.conditional(
            "UpdateItem", self.claims.client.update_item, Key=picture_key(name), UpdateExpression="SET deleting = :now",
            ConditionExpression="attribute_not_exists(#users) AND attribute_not_exists(holders) AND "
            "(attribute_not_exists(deleting) OR deleting < :stale)",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":now": {"N": repr(now)}, ":stale": {"N": repr(now - STALE_DELETE_S)}},
        )  # fmt: skip

    def end_delete(self, name: str, deleted: bool, now: float) -> None:
        """The delete `begin_delete` marked is over: the picture `gone` (a tombstone a while), or kept."""
        if deleted:
            self._update(name, "SET gone = :now, expires_at = :expires REMOVE deleting",
                         {":now": {"N": repr(now)}, ":expires": {"N": str(int(now + GONE_KEPT_S))}})  # fmt: skip
        else:
            self._update(name, "REMOVE deleting", {})

    def kept_again(self, name: str) -> None:
        """The picture was kept again (the same bytes uploaded): no longer gone."""
        self._update(name, "REMOVE gone, expires_at", {})

    def _picture(self, name: str) -> dict[str, Any]:
        return self.claims._call("GetItem", self.claims.client.get_item, TableName=self.claims.table_name,
                                 Key=picture_key(name), ConsistentRead=True).get("Item") or {}  # fmt: skip

    def _update(self, name: str, expression: str, values: dict[str, Any], names: dict[str, str] | None = None
                ) -> None:  # fmt: skip
        request: dict[str, Any] = {"TableName": self.claims.table_name, "Key": picture_key(name),
                                   "UpdateExpression": expression}  # fmt: skip
        if values:
            request["ExpressionAttributeValues"] = values
        if names:
            request["ExpressionAttributeNames"] = names
        self.claims._call("UpdateItem", self.claims.client.update_item, **request)


def _claim_of(item: Mapping[str, Any]) -> Claim:
    values = {name: _deserializer.deserialize(value) for name, value in item.items()}
    return Claim(
        claim_id=str(values["sk"]), entity_id=str(values["entity_id"]), hash=HashValue.from_hex(str(values["hash"])),
        yields=bool(values.get("yields")), lease_until=float(values.get("lease_until") or 0),
        state=ClaimState(str(values["state"])), beaten_by=str(values.get("beaten_by") or ""),
    )  # fmt: skip
