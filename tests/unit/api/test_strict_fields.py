"""Every field and flag of a request that changes data holds its own type (api/strict.py, issue 86):
a JSON boolean is `true` or `false`, a string a string, an enum one of its words, a query flag
exactly `true` or `false`. Anything else (a string, a number, null, a list where another type is
expected) is a 400 `invalid_request` naming the field, and nothing changes: no record stored or
removed, no job started, no decision made."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dupcheck.api import build_resolver
from dupcheck.bootstrap import build_imports, build_service
from dupcheck.core.models import ImportOptions, Mode, Outcome, RowResult
from dupcheck.core.settings import Settings
from dupcheck_tools.samples import encode, product_image
from support.api_events import MAX_BYTES, QueuedOnly, call, event
from support.fakes import FakeFetcher

URL = "https://img.test/new.jpg"
PICTURES = {URL: encode(product_image(401)), "https://img.test/a.jpg": encode(product_image(402))}
JSON = "application/json"
# The usual wrong values, by the JSON type a field does not have.
WRONG: dict[str, list[Any]] = {
    "string": [7, 1.5, None, ["x"], {"x": 1}, True],
    "boolean": ["yes", "true", "1", 1, 1.0, 0, None, [True], {}],
    "true": ["true", 1, 1.0, None, [True]],
    "list": ["A-copy", 3, None, {"A-copy": 1}],
    "policy": ["yes", 1, None, ["warn"], True],
    "decision": [1, None, ["keep"], True, "KEEP"],
}


class Case:
    """A data-changing request: its path, a body that passes, and where in the body a field of
    what JSON type sits (`items.0.sku` names the first item's sku)."""

    def __init__(self, path: str, body: dict[str, Any], fields: dict[str, str]) -> None:
        self.path, self.body, self.fields = path, body, fields

    def with_value(self, field: str, value: Any) -> dict[str, Any]:
        body = json.loads(json.dumps(self.body))
        *parents, last = field.split(".")
        node = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
        return body


ITEM = Case("/items", {"entity_id": "N1", "sku": "S", "image_url": URL, "on_duplicate": "warn"},
            {"entity_id": "string", "sku": "string", "image_url": "string", "on_duplicate": "policy"})  # fmt: skip
ROWS = Case("/imports", {"items": [{"entity_id": "N1", "sku": "S", "image_url": URL}]},
            {"items": "list", "items.0.entity_id": "string", "items.0.sku": "string",
             "items.0.image_url": "string"})  # fmt: skip
CATALOG = Case("/imports", {"catalog_url": "https://img.test/catalog.csv"}, {"catalog_url": "string"})
UPLOAD = Case("/imports", {"upload": True}, {"upload": "true"})
KEEP = Case("/duplicates/decisions", {"decision": "keep", "item": "A", "others": ["A-copy"], "remove_others": True},
            {"decision": "decision", "item": "string", "others": "list", "others.0": "string",
             "remove_others": "boolean"})  # fmt: skip
NOT_DUPLICATE = Case("/duplicates/decisions", {"decision": "not_duplicate", "item": "A", "others": ["A-copy"]},
                     {"item": "string", "others.0": "string"})  # fmt: skip
CASES = [ITEM, ROWS, CATALOG, UPLOAD, KEEP, NOT_DUPLICATE]
WRONG_FIELDS = [
    pytest.param(case, field, value, id=f"{case.path}:{field}={json.dumps(value)}")
    for case in CASES
    for field, kind in case.fields.items()
    for value in WRONG[kind]
]


@pytest.fixture
def parts(settings: Settings) -> tuple[Any, Any, Any]:
    service = build_service(settings, fetcher=FakeFetcher(PICTURES))
    service.registrar.register("A", "SKU-A", "https://img.test/a.jpg")
    service.registrar.register("A-copy", "SKU-A2", "https://img.test/a.jpg")
    imports = build_imports(settings, starter=QueuedOnly())
    return service, imports, build_resolver(service, max_body_bytes=MAX_BYTES, imports=imports)


def changed(service: Any, imports: Any, app: Any) -> dict[str, Any]:
    """What a request could have changed: the records, the jobs, the decisions."""
    return {
        "records": sorted(r.entity_id for r in service.parts.store.scan()),
        "jobs": len(imports.recent(10, None)[0]),
        "decisions": call(app, event("GET", "/duplicates/decisions"))[1]["decisions"],
    }


def post(app: Any, path: str, body: Any, query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    return call(app, event("POST", path, query, json.dumps(body).encode(), JSON))


@pytest.mark.parametrize(("case", "field", "value"), WRONG_FIELDS)
def test_a_field_of_the_wrong_type_is_a_400_naming_it_and_changes_nothing(
    parts: tuple[Any, Any, Any], case: Case, field: str, value: Any
) -> None:
    service, imports, app = parts
    before = changed(service, imports, app)
    status, answer = post(app, case.path, case.with_value(field, value))
    assert (status, answer["error"]["code"]) == (400, "invalid_request"), answer
    named = field if field != "decision" else "'decision'"
    assert named in answer["error"]["message"], answer
    assert changed(service, imports, app) == before


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.path}:{next(iter(case.body))}")
def test_the_same_bodies_with_their_own_types_change_the_data(parts: tuple[Any, Any, Any], case: Case) -> None:
    """The other half of the test above: with every field right, each request does change something
    (so a 400 there is the wrong type's doing, not the body's)."""
    service, imports, app = parts
    before = changed(service, imports, app)
    status, answer = post(app, case.path, case.body)
    assert status in (201, 202), answer
    assert changed(service, imports, app) != before


def test_remove_others_yes_removes_nothing(parts: tuple[Any, Any, Any]) -> None:
    """The report of issue 86: `"remove_others": "yes"` answered 201 and removed the other record."""
    service, _, app = parts
    status, answer = post(app, "/duplicates/decisions", KEEP.with_value("remove_others", "yes"))
    assert (status, answer["error"]) == (400, {"code": "invalid_request", "message": "keep.remove_others: must be "
                                               "true or false (a JSON boolean), not the string 'yes'"})  # fmt: skip
    assert service.parts.store.get("A-copy") is not None


@pytest.mark.parametrize(
    ("method", "path", "query", "name"),
    [
        ("POST", "/items", {"on_duplicate": "yes"}, "on_duplicate"),
        ("POST", "/items", {"on_duplicate": ["warn", "allow"]}, "on_duplicate"),
        ("PUT", "/items/U1", {"on_duplicate": "1"}, "on_duplicate"),
        ("PUT", "/items/U1", {"sku": ["S1", "S2"]}, "sku"),
        ("PUT", "/items/U1", {"image_url": ["https://img.test/1.jpg", "https://img.test/2.jpg"]}, "image_url"),
        ("POST", "/imports", {"mode": "yes"}, "mode"),
        ("POST", "/imports", {"mode": ["check", "import"]}, "mode"),
        ("POST", "/imports", {"on_duplicate": "null"}, "on_duplicate"),
        ("POST", "/imports", {"id_column": ["a", "b"]}, "id_column"),
    ],
)
def test_a_query_parameter_of_the_wrong_type_or_given_twice_is_a_400_and_changes_nothing(
    parts: tuple[Any, Any, Any], method: str, path: str, query: dict[str, Any], name: str
) -> None:
    service, imports, app = parts
    before = changed(service, imports, app)
    if path == "/imports":
        body, content_type = json.dumps(ROWS.body).encode(), JSON
    elif method == "PUT":
        body, content_type = encode(product_image(403)), "image/jpeg"
    else:  # the body's own on_duplicate would win over the query's
        body, content_type = json.dumps({k: v for k, v in ITEM.body.items() if k != "on_duplicate"}).encode(), JSON
    ev = event(method, path, {k: v[-1] if isinstance(v, list) else v for k, v in query.items()}, body, content_type)
    ev["multiValueQueryStringParameters"] = {k: v if isinstance(v, list) else [v] for k, v in query.items()}
    status, answer = call(app, ev)
    assert (status, answer["error"]["code"]) == (400, "invalid_request"), answer
    assert answer["error"]["message"].startswith(f"{name}: "), answer
    assert changed(service, imports, app) == before


@pytest.mark.parametrize(("given", "listed"), [("true", [1]), ("false", [1, 2])])
def test_a_query_flag_is_true_or_false(parts: tuple[Any, Any, Any], given: str, listed: list[int]) -> None:
    _, imports, app = parts
    job = imports.submit_items(
        [{"entity_id": "N1", "sku": "", "image_url": URL}, {"entity_id": "N2", "sku": "", "image_url": URL}],
        ImportOptions(mode=Mode.CHECK),
    )
    imports.jobs.record(job.job_id, [RowResult(1, Outcome.DONE, "N1", URL, verdict="duplicate", duplicate_of="A"),
                                     RowResult(2, Outcome.DONE, "N2", URL, verdict="new")])  # fmt: skip
    path = f"/imports/{job.job_id}/results"
    status, page = call(app, event("GET", path, {"duplicates_only": given}))
    assert status == 200 and [r["row"] for r in page["results"]] == listed
    for wrong in ("yes", "1", "True", "on", ""):
        status, answer = call(app, event("GET", path, {"duplicates_only": wrong}))
        assert (status, answer["error"]["code"]) == (400, "invalid_request"), wrong
        assert answer["error"]["message"] == f"duplicates_only: must be true or false, not {wrong!r}"
