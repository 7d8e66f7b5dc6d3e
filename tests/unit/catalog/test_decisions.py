"""Decisions on the duplicate report's groups (core/catalog/decisions.py): through the API over the local
store, the two adapters against one contract (SQLite, DynamoDB through moto), and the report and
find_similar read through them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.dynamodb_decisions import DynamoDBDuplicateDecisions, create_decisions_table
from dupcheck.adapters.sqlite_decisions import SqliteDuplicateDecisions
from dupcheck.api import build_resolver
from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.decisions import annotate
from dupcheck.core.models import Decision, DecisionKind, HashRecord, HashValue, RemovedCopy
from dupcheck.core.ports import DuplicateDecisions
from dupcheck.core.settings import Settings
from dupcheck.core.spreadsheet import safe_cell
from dupcheck_tools.samples import encode, product_image
from support.api_events import MAX_BYTES, call, event
from support.fakes import FakeFetcher
from support.http import wait_for

PICTURES = {f"https://img.test/{i}.jpg": encode(product_image(300 + i)) for i in range(4)}


@pytest.fixture
def catalog(settings: Settings) -> Any:
    service = build_service(settings, fetcher=FakeFetcher(PICTURES))
    service.registrar.register("A", "SKU-A", "https://img.test/0.jpg")
    service.registrar.register("A-copy", "=SUM(1)", "https://img.test/0.jpg")  # a SKU a spreadsheet would evaluate
    service.registrar.register("B", "SKU-B", "https://img.test/1.jpg")
    service.registrar.register("C", "SKU-C", "https://img.test/2.jpg")
    return service


@pytest.fixture
def app(catalog: Any) -> Any:
    return build_resolver(catalog, max_body_bytes=MAX_BYTES)


def post(app: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return call(app, event("POST", "/duplicates/decisions", body=json.dumps(body).encode(),
                           content_type="application/json"))  # fmt: skip


def test_keep_this_one_removes_the_others_and_undo_puts_them_back_with_their_thumbnail(app: Any, catalog: Any) -> None:
    before = catalog.records.get("A-copy")
    status, made = post(app, {"decision": "keep", "item": "A", "others": ["A-copy"], "remove_others": True})
    assert status == 201 and made["removed"] == ["A-copy"] and made["skus"]["A-copy"] == "=SUM(1)"
    assert call(app, event("GET", "/items/A-copy"))[0] == 404
    assert catalog.parts.index.count() == 3 and catalog.parts.thumbnails.get_many(["A-copy"]) == {}

    status, undone = call(app, event("POST", f"/duplicates/decisions/{made['decision_id']}/undo"))
    assert status == 200 and undone["restored"] == ["A-copy"] and undone["left_out"] == []
    assert undone["decision"]["undone_at"] is not None
    assert catalog.records.get("A-copy") == before and catalog.parts.index.count() == 4
    assert set(catalog.parts.thumbnails.get_many(["A-copy"])) == {"A-copy"}  # the look-alike check has it again
    found = catalog.lookups.find_similar("https://img.test/0.jpg", top=2)
    assert {m.entity_id for m in found.matches if m.verdict.value == "duplicate"} == {"A", "A-copy"}
    status, again = call(app, event("POST", f"/duplicates/decisions/{made['decision_id']}/undo"))
    assert (status, again["error"]["code"]) == (409, "conflict")  # undone once, not twice


def test_an_undo_leaves_a_record_registered_again_since(app: Any, catalog: Any) -> None:
    _, made = post(app, {"decision": "keep", "item": "A", "others": ["A-copy", "B"], "remove_others": True})
    catalog.registrar.register("B", "SKU-B2", "https://img.test/3.jpg")  # the id is used again meanwhile
    _, undone = call(app, event("POST", f"/duplicates/decisions/{made['decision_id']}/undo"))
    assert (undone["restored"], undone["left_out"]) == (["A-copy"], ["B"])
    assert catalog.records.get("B").sku == "SKU-B2"


def test_keep_without_removing_marks_the_group_resolved_and_removes_nothing(app: Any, catalog: Any) -> None:
    status, made = post(app, {"decision": "keep", "item": "A", "others": ["A-copy"]})
    assert status == 201 and made["removed"] == []
    assert catalog.records.get("A-copy").entity_id == "A-copy"


def test_not_duplicates_marks_the_pair_reviewed_in_find_similar_and_it_is_no_new_duplicate(
    app: Any, catalog: Any
) -> None:
    query = {"image_url": "https://img.test/0.jpg", "top": "3", "entity_id": "A"}
    status, first = call(app, event("GET", "/find_similar", query))
    copy = next(m for m in first["matches"] if m["entity_id"] == "A-copy")
    assert status == 200 and copy["reviewed"] is False and first["is_duplicate"] is True
    status, made = post(app, {"decision": "not_duplicate", "item": "A", "others": ["A-copy"]})
    assert status == 201
    status, second = call(app, event("GET", "/find_similar", query))
    reviewed = {m["entity_id"]: m["reviewed"] for m in second["matches"]}
    assert reviewed["A-copy"] is True and reviewed["A"] is False  # its own record: no pair with itself
    assert second["is_duplicate"] is True  # A itself still is the same picture
    # Asked for as another item, the pair is not that item's: nothing is reviewed.
    other = call(app, event("GET", "/find_similar", {**query, "entity_id": "C"}))[1]
    assert not any(m["reviewed"] for m in other["matches"])
    call(app, event("POST", f"/duplicates/decisions/{made['decision_id']}/undo"))
    assert not any(m["reviewed"] for m in call(app, event("GET", "/find_similar", query))[1]["matches"])


def test_the_report_is_read_through_the_decisions(app: Any, catalog: Any, settings: Settings) -> None:
    report = {"pipeline": catalog.parts.pipeline.algo, "records": 4, "elapsed_s": 1.0, "groups": [
        {"items": ["A", "A-copy", "B"], "keep": "A", "related": [],
         "pairs": [_pair("A", "A-copy"), _pair("A", "B")]},
        {"items": ["B", "C"], "keep": "B", "related": [], "pairs": [_pair("B", "C")]},
    ]}  # fmt: skip
    path = settings.data_dir / "duplicates" / "duplicates.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(report))
    _, not_dup = post(app, {"decision": "not_duplicate", "item": "A", "others": ["B"]})
    status, read = call(app, event("GET", "/duplicates"))
    assert status == 200 and read["open_groups"] == 2
    first, second = read["groups"]
    assert first["settled"] == {"B": {"decision_id": not_dup["decision_id"], "decision": "not_duplicate",
                                      "item": "A", "outcome": "not a duplicate"}}  # fmt: skip
    assert [p["reviewed"] for p in first["pairs"]] == [False, True] and first["open"] is True
    _, kept = post(app, {"decision": "keep", "item": "A-copy", "others": ["A"]})  # the person kept the other one
    first, second = call(app, event("GET", "/duplicates"))[1]["groups"]
    assert first["open"] is False and first["settled"]["A-copy"]["outcome"] == "left in the catalog, resolved"
    assert sorted(first["decisions"]) == sorted([not_dup["decision_id"], kept["decision_id"]])
    assert second["open"] is True and second["settled"] == {}
    assert call(app, event("GET", "/duplicates"))[1]["open_groups"] == 1


def _pair(a: str, b: str) -> dict[str, Any]:
    return {"a": a, "b": b, "verdict": "duplicate", "match_percent": 97.0, "distance": 2, "edit": None, "edits": None}


def test_decisions_are_listed_newest_first_a_page_at_a_time_and_exported_spreadsheet_safe(app: Any) -> None:
    ids = [post(app, {"decision": "not_duplicate", "item": "A", "others": [other]})[1]["decision_id"]
           for other in ("B", "C", "A-copy")]  # fmt: skip
    _, removed = post(app, {"decision": "keep", "item": "A", "others": ["A-copy"], "remove_others": True})
    call(app, event("POST", f"/duplicates/decisions/{ids[0]}/undo"))
    status, page = call(app, event("GET", "/duplicates/decisions", {"limit": "3"}))
    assert status == 200 and [d["decision_id"] for d in page["decisions"]] == [removed["decision_id"], *ids[:0:-1]]
    _, rest = call(app, event("GET", "/duplicates/decisions", {"limit": "3", "cursor": page["next_cursor"]}))
    assert [d["decision_id"] for d in rest["decisions"]] == [ids[0]] and rest["next_cursor"] is None
    assert rest["decisions"][0]["undone_at"] is not None  # undone, still listed

    response = app.resolve(event("GET", "/duplicates/decisions.csv"), None)
    headers = {k: v[0] for k, v in response["multiValueHeaders"].items()}
    assert response["statusCode"] == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response["body"])))
    assert len(rows) == 4
    assert (rows[0]["decision"], rows[0]["other"], rows[0]["other_sku"], rows[0]["outcome"]) == (
        "keep", "A-copy", "'=SUM(1)", "removed")  # fmt: skip
    assert rows[-1]["decision_id"] == ids[0] and rows[-1]["undone_at"] and rows[-1]["outcome"] == "not a duplicate"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"decision": "keep", "item": "A", "others": []}, 400, "others"),
        ({"decision": "keep", "item": "A", "others": ["B", "B"]}, 400, "twice"),
        ({"decision": "not_duplicate", "item": "A", "others": ["B"], "remove_others": True}, 400, "remove_others"),
        ({"decision": "keep", "item": "A", "others": ["B"], "remove_other": True}, 400, "remove_other"),  # a typo
        ({"decision": "merge", "item": "A", "others": ["B"]}, 400, "decision"),
        ({"decision": "keep", "item": "A", "others": [f"X{i}" for i in range(100)]}, 400, "others"),  # 99 at most
        ({"decision": "keep", "item": "..", "others": ["B"]}, 400, "item"),
        ({"decision": "keep", "item": "A", "others": [""]}, 400, "others"),
        ({"decision": "keep", "item": "A", "others": ["A"]}, 422, "must not name item"),  # well-formed, impossible
    ],
)
def test_a_bad_decision_is_a_4xx_saying_why_and_changes_nothing(
    app: Any, catalog: Any, body: dict[str, Any], status: int, says: str
) -> None:
    answered, answer = post(app, body)
    assert answered == status and says in answer["error"]["message"], answer
    assert call(app, event("GET", "/duplicates/decisions"))[1]["decisions"] == []
    assert catalog.parts.store.count() == 4


def test_a_decision_sent_as_anything_but_json_is_a_415(app: Any) -> None:
    body = json.dumps({"decision": "keep", "item": "A", "others": ["B"]}).encode()
    status, answer = call(app, event("POST", "/duplicates/decisions", body=body, content_type="multipart/form-data"))
    assert (status, answer["error"]["code"]) == (415, "unsupported_media_type")


def test_keeping_a_record_not_in_the_catalog_is_a_404_and_removes_nothing(app: Any, catalog: Any) -> None:
    status, answer = post(app, {"decision": "keep", "item": "gone", "others": ["A"], "remove_others": True})
    assert (status, answer["error"]["code"]) == (404, "not_found") and catalog.parts.store.count() == 4
    for path in ("/duplicates/decisions/" + "0" * 32, "/duplicates/decisions/" + "f" * 32):
        assert call(app, event("GET", path))[0] == 404 and call(app, event("POST", path + "/undo"))[0] == 404
    assert call(app, event("GET", "/duplicates/decisions/not-an-id"))[0] == 400
    assert call(app, event("GET", "/duplicates/decisions", {"cursor": "nope"}))[0] == 400


def test_where_no_decisions_are_set_up_the_routes_answer_503(settings: Settings) -> None:
    service = build_service(settings, fetcher=FakeFetcher(PICTURES))
    service.parts.decisions = None  # an AWS deployment without DUPCHECK_DECISIONS_TABLE
    app = build_resolver(service, max_body_bytes=MAX_BYTES)
    status, answer = post(app, {"decision": "keep", "item": "A", "others": ["B"]})
    assert (status, answer["error"]["code"]) == (503, "store_unavailable")


# -- the adapters, one contract --------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def stored(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[DuplicateDecisions]:
    if request.param == "sqlite":
        yield SqliteDuplicateDecisions(tmp_path / "decisions.sqlite3")
        return
    request.getfixturevalue("mock_aws_env")
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    create_decisions_table(client, "decisions")
    yield DynamoDBDuplicateDecisions("decisions", client=client)


def _decision(n: int, kind: DecisionKind, item: str, *others: str, removed: tuple[str, ...] = ()) -> Decision:
    return Decision(f"{n:032x}", kind, item, others, f"2026-01-01T00:00:{n:02d}.000Z", removed=removed)


def _record(entity_id: str) -> HashRecord:
    return HashRecord(entity_id, "", f"https://img.test/{entity_id}.jpg", HashValue.from_hex("0f" * 16), "algo",
                      "2026-01-01T00:00:00.000Z", {"views": b"\x00\x01"})  # fmt: skip


def test_an_adapter_keeps_lists_finds_and_takes_back_decisions(stored: DuplicateDecisions) -> None:
    copy = RemovedCopy(_record("X2"), b"\xff\xd8jpeg")
    stored.add(_decision(1, DecisionKind.KEEP, "X1", "X2", removed=("X2",)), [copy])
    stored.add(_decision(2, DecisionKind.NOT_DUPLICATE, "X1", "Y"), [])
    stored.add(_decision(3, DecisionKind.NOT_DUPLICATE, "Z", "Y"), [])
    assert [d.decision_id for d in stored.involving("Y")] == [f"{3:032x}", f"{2:032x}"]
    assert [d.decision_id for d in stored.involving("X2")] == [f"{1:032x}"]
    first, after = stored.page(2)
    rest, end = stored.page(2, after)
    assert [d.item for d in first + rest] == ["Z", "X1", "X1"] and end is None
    assert stored.get(f"{1:032x}") == _decision(1, DecisionKind.KEEP, "X1", "X2", removed=("X2",))

    taken = stored.take_back(f"{1:032x}", "2026-01-02T00:00:00.000Z")
    assert taken is not None and taken[1] == [copy] and taken[0].undone_at == "2026-01-02T00:00:00.000Z"
    assert stored.take_back(f"{1:032x}", "2026-01-03T00:00:00.000Z") is None  # one undo gets the copies
    assert stored.involving("X2") == [] and stored.get(f"{1:032x}").undone_at == "2026-01-02T00:00:00.000Z"
    assert stored.take_back("e" * 32, "2026-01-03T00:00:00.000Z") is None and stored.get("e" * 32) is None

    stored.add(_decision(4, DecisionKind.KEEP, "W1", "W2", removed=("W2",)), [RemovedCopy(_record("W2"), b"")])
    stored.withdraw(f"{4:032x}")  # its removal could not happen: forgotten, copies and all
    assert stored.get(f"{4:032x}") is None and stored.involving("W2") == []
    assert stored.take_back(f"{4:032x}", "2026-01-03T00:00:00.000Z") is None
    assert [d.item for d in stored.page(10)[0]] == ["Z", "X1", "X1"]


def test_annotate_settles_only_the_pairs_a_decision_covers() -> None:
    report = {"groups": [{"items": ["K", "M1", "M2"], "keep": "K", "pairs": [], "related": []}]}
    not_dup = _decision(1, DecisionKind.NOT_DUPLICATE, "M1", "K")  # either order of the pair
    other = _decision(2, DecisionKind.NOT_DUPLICATE, "M1", "M2")  # a pair the group does not hold with K
    (group,) = annotate(report, [not_dup, other])["groups"]
    assert set(group["settled"]) == {"M1"} and group["open"] is True


def test_a_cell_that_would_be_a_formula_is_text() -> None:
    assert [safe_cell(v) for v in ("=1+1", "@x", "-2", "plain", 3)] == ["'=1+1", "'@x", "'-2", "plain", 3]


def test_a_decision_naming_a_record_not_in_the_catalog_or_a_misspelt_field_stores_nothing(app: Any) -> None:
    status, refused = post(app, {"decision": "keep", "item": "A", "others": ["A-copy", "NOPE"], "remove_others": True})
    assert (status, refused["error"]["code"]) == (404, "not_found") and "'NOPE'" in refused["error"]["message"]
    status, refused = post(app, {"decision": "keep", "item": "A", "others": ["A-copy"], "remove_other": True})
    assert (status, refused["error"]["code"]) == (400, "unknown_parameter")
    assert "'remove_other'" in refused["error"]["message"] and "remove_others" in refused["error"]["message"]
    status, refused = post(app, {"decision": "not_duplicate", "item": "A", "others": ["B"], "remove_others": True})
    assert (status, refused["error"]["code"]) == (400, "unknown_parameter")  # not_duplicate removes nothing
    assert call(app, event("GET", "/duplicates/decisions"))[1]["decisions"] == []
    assert call(app, event("GET", "/items/A-copy"))[0] == 200


def test_a_keep_whose_record_went_meanwhile_removes_nothing_and_is_forgotten(app: Any, catalog: Any) -> None:
    """Between reading the group and removing, the record to keep was removed (an opposite decision):
    the removal is conditional on it, so nothing is removed and the decision is not kept."""
    from dupcheck.core.catalog.decisions import DecisionService
    from dupcheck.core.errors import Conflict

    removing = catalog.parts.store.delete_keeping

    def meanwhile(records: list[HashRecord], keep: str) -> Any:
        catalog.parts.store.delete(keep)  # the other decision's removal lands first
        return removing(records, keep)

    catalog.parts.store.delete_keeping = meanwhile
    with pytest.raises(Conflict, match="no longer in the catalog"):
        DecisionService(catalog.parts.decisions, catalog).decide(DecisionKind.KEEP, "A", ["A-copy"], remove_others=True)
    assert catalog.parts.store.get("A-copy") is not None  # not removed
    assert catalog.parts.decisions.page(10)[0] == []  # and the decision forgotten


def test_a_record_another_process_registers_again_after_the_keep_read_it_is_not_removed(
    app: Any, catalog: Any, settings: Settings
) -> None:
    """Another process on the data dir (the command line's `add`: the server's locks do not hold it
    back) registers A-copy again, with another picture, after a keep decision read the group and
    before it removes: the removal is conditional on the records as read, so nothing is removed
    (B neither), A-copy keeps its new record and the decision is not kept (409 naming A-copy):
    no undo can bring the old A-copy back."""
    other = build_service(settings, fetcher=FakeFetcher(PICTURES))
    removing = catalog.parts.store.delete_keeping

    def meanwhile(records: list[HashRecord], keep: str) -> Any:
        other.registrar.register("A-copy", "SKU-new", "https://img.test/3.jpg")
        return removing(records, keep)

    catalog.parts.store.delete_keeping = meanwhile
    b = catalog.records.get("B")
    status, refused = post(app, {"decision": "keep", "item": "A", "others": ["A-copy", "B"], "remove_others": True})
    assert (status, refused["error"]["code"]) == (409, "conflict"), refused
    assert "'A-copy' changed since the decision read it" in refused["error"]["message"]
    assert catalog.records.get("A-copy").sku == "SKU-new" and catalog.records.get("B") == b
    assert catalog.parts.decisions.page(10)[0] == []


class WatchedLock:
    """An id lock that says when a caller had to wait for it."""

    def __init__(self) -> None:
        self.lock, self.waited = threading.Lock(), threading.Event()

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            self.waited.set()
            self.lock.acquire()

    def __exit__(self, *_: object) -> None:
        self.lock.release()


def test_a_keep_reads_what_it_removes_under_the_ids_locks_so_a_registration_meanwhile_lands_after_it(
    app: Any, catalog: Any
) -> None:
    """A-copy is registered again in this process just after the keep decision read it: the write
    waits for the ids' locks the decision took before reading, so it lands after the removal, not
    between (which the removal's condition would refuse); the decision removed the record it read,
    the new one stays, and the undo leaves it (the old one does not come back over it)."""
    locks = catalog.parts.locks = tuple(WatchedLock() for _ in catalog.parts.locks)
    reading = catalog.parts.store.get_many_consistent
    stored = threading.Event()

    def register_again() -> None:
        catalog.registrar.register("A-copy", "SKU-new", "https://img.test/3.jpg")
        stored.set()

    def read_then_register(entity_ids: list[str]) -> Any:
        records = reading(entity_ids)
        threading.Thread(target=register_again).start()
        wait_for(lambda: stored.is_set() or any(lock.waited.is_set() for lock in locks))  # stored, or waiting
        return records

    catalog.parts.store.get_many_consistent = read_then_register
    old = catalog.records.get("A-copy")
    status, made = post(app, {"decision": "keep", "item": "A", "others": ["A-copy"], "remove_others": True})
    assert status == 201 and made["removed"] == ["A-copy"], made
    wait_for(stored.is_set)
    assert catalog.records.get("A-copy").sku == "SKU-new"
    status, undone = call(app, event("POST", f"/duplicates/decisions/{made['decision_id']}/undo"))
    assert status == 200 and (undone["restored"], undone["left_out"]) == ([], ["A-copy"])
    assert catalog.records.get("A-copy").sku == "SKU-new" and old.sku == "=SUM(1)"


@pytest.mark.parametrize("killed", ["before the removal", "after the removal"])
def test_a_keep_killed_between_its_steps_loses_no_record(app: Any, catalog: Any, settings: Settings,
                                                         killed: str) -> None:  # fmt: skip
    """A process makes a keep decision removing A-copy and B and is killed (kill -9) once it kept
    their copies, before or after the store removed them: no record is lost. Before, both are
    still there and the decision's undo leaves them; after, they are gone and the undo puts them
    back whole (record and thumbnail)."""
    before = {e: catalog.records.get(e) for e in ("A-copy", "B")}
    step = "os.kill(os.getpid(), signal.SIGKILL)"
    steps = step if killed == "before the removal" else f"removing(records, keep)\n    {step}"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from dupcheck.bootstrap import build_service
        from dupcheck.core.catalog.decisions import DecisionService
        from dupcheck.core.models import DecisionKind
        from dupcheck.core.settings import Settings
        from support.fakes import FakeFetcher
        service = build_service(Settings.from_env({{}}, data_dir={str(settings.data_dir)!r}, products="off"),
                                fetcher=FakeFetcher({{}}))
        removing = service.parts.store.delete_keeping
        def killed(records, keep):
            {{steps}}
        service.parts.store.delete_keeping = killed
        DecisionService(service.parts.decisions, service).decide(DecisionKind.KEEP, "A", ["A-copy", "B"],
                                                                 remove_others=True)
    """).replace("{steps}", steps)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    (decision,) = catalog.parts.decisions.page(10)[0]  # its copies were kept first
    left = {e: catalog.parts.store.get(e) for e in before}
    assert left == (before if killed == "before the removal" else {"A-copy": None, "B": None})
    status, undone = call(app, event("POST", f"/duplicates/decisions/{decision.decision_id}/undo"))
    restored = [] if killed == "before the removal" else ["A-copy", "B"]
    assert status == 200 and undone["restored"] == restored, undone
    assert {e: catalog.records.get(e) for e in before} == before
    assert set(catalog.parts.thumbnails.get_many(list(before))) == set(before)
