"""Decisions on duplicate groups on AWS, with moto: the API function (its Lambda handler, fed API
Gateway events) settles the groups of a report the scan function published, in the decisions'
own DynamoDB table; an undo puts a removed record back in the records table and its thumbnail in
the bucket."""

from __future__ import annotations

import copy
import csv
import importlib
import io
import json
from typing import Any

import pytest
from test_scans_aws import Aws, Context, aws  # noqa: F401 (the fixture)

from support.fakes import load_event

DECISIONS = "dupcheck-decisions"


def send(api: Any, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any, dict[str, Any]]:
    event = copy.deepcopy(load_event("apigw_imports_post_csv.json"))
    event.update(httpMethod=method, path=path, body=json.dumps(body) if body is not None else None,
                 isBase64Encoded=False)  # fmt: skip
    if body is None:
        event["headers"].pop("Content-Type", None)
    else:
        event["headers"]["Content-Type"] = "application/json"
    event["requestContext"].update(httpMethod=method, path="/v1" + path)
    response = api.handler(event, Context(lambda: 29))
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()} | (response.get("headers") or {})
    text = response["body"]
    return response["statusCode"], json.loads(text) if text and headers.get("Content-Type", "").startswith(
        "application/json") else text, headers  # fmt: skip


def test_a_published_reports_groups_are_settled_listed_exported_and_undone_on_aws(
    aws: Aws,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dupcheck.adapters.dynamodb_decisions import create_decisions_table

    create_decisions_table(aws.ddb, DECISIONS)
    monkeypatch.setenv("DUPCHECK_DECISIONS_TABLE", DECISIONS)
    api = importlib.reload(aws.api)  # the API function, started with the decisions table named
    assert send(api, "POST", "/duplicates/scans")[0] == 202
    aws.deliver()
    status, report, _ = send(api, "GET", "/duplicates")
    assert status == 200 and report["open_groups"] == 10
    first, second = report["groups"][:2]
    keep, other = first["items"]

    kept = {"decision": "keep", "item": keep, "others": [other], "remove_others": True}
    status, made, headers = send(api, "POST", "/duplicates/decisions", kept)
    assert status == 201 and made["removed"] == [other] and headers["Location"] == made["decision_url"]
    assert send(api, "GET", f"/items/{other}")[0] == 404
    assert _thumbnails([other]) == {}
    different = {"decision": "not_duplicate", "item": second["items"][0], "others": second["items"][1:]}
    status, _, _ = send(api, "POST", "/duplicates/decisions", different)
    assert status == 201
    read = send(api, "GET", "/duplicates")[1]
    assert read["open_groups"] == 8
    assert read["groups"][0]["settled"][other]["outcome"] == "removed"
    assert read["groups"][1]["pairs"][0]["reviewed"] is True

    status, page, _ = send(api, "GET", "/duplicates/decisions")
    assert status == 200 and [d["decision"] for d in page["decisions"]] == ["not_duplicate", "keep"]
    status, text, headers = send(api, "GET", "/duplicates/decisions.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and headers["Content-Type"].startswith("text/csv") and len(rows) == 2

    status, undone, _ = send(api, "POST", f"/duplicates/decisions/{made['decision_id']}/undo")
    assert status == 200 and undone["restored"] == [other]
    assert send(api, "GET", f"/items/{other}")[0] == 200 and set(_thumbnails([other])) == {other}
    assert send(api, "POST", f"/duplicates/decisions/{made['decision_id']}/undo")[0] == 409
    assert send(api, "GET", "/duplicates")[1]["open_groups"] == 9


def _thumbnails(ids: list[str]) -> dict[str, bytes]:
    """The thumbnails the bucket holds for `ids`, read as the service reads them."""
    from dupcheck.bootstrap import build_thumbnails
    from dupcheck.core.settings import Settings

    store = build_thumbnails(Settings.from_env())
    assert store is not None
    return dict(store.get_many(ids))
