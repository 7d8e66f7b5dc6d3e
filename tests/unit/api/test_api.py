"""The routes through the Powertools resolver, fed API Gateway REST events like Lambda gets."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection
from PIL import Image

from dupcheck.adapters.http_fetcher import HttpImageFetcher
from dupcheck.api import build_resolver, web
from dupcheck.bootstrap import build_imports, build_scans, build_service
from dupcheck.core.errors import UpstreamTimeout
from dupcheck.core.models import ITEM_POLICIES, Marks
from dupcheck.core.settings import Settings
from dupcheck_tools.samples import encode, product_image
from support.api_events import MAX_BYTES, QueuedOnly, call, event
from support.fakes import FakeFetcher


@pytest.fixture
def app(settings: Settings):  # noqa: ANN201
    images = {f"https://img.test/{i}.jpg": encode(product_image(200 + i)) for i in range(6)}
    images["https://img.test/text.jpg"] = b"this is not an image"
    slow = {"https://img.test/slow.jpg": UpstreamTimeout("the image host did not answer in time")}
    service = build_service(settings, fetcher=FakeFetcher(images, slow))
    for i in range(5):  # image 5 stays out of the catalog
        service.registrar.register(f"E{i}", f"SKU{i}", f"https://img.test/{i}.jpg")
    return build_resolver(service, max_body_bytes=MAX_BYTES)


def test_canned_event_finds_a_duplicate(app) -> None:  # noqa: ANN001
    status, body = call(app, event("GET", "/find_similar", {"image_url": "https://img.test/2.jpg", "top": "2"}))
    assert status == 200
    assert body["is_duplicate"] is True
    assert body["query"]["algorithm"] and len(body["query"]["hash"]) >= 16
    assert body["matches"][0] | {"image_url": None} == {
        "entity_id": "E2",
        "sku": "SKU2",
        "image_url": None,
        "distance": 0,
        "match_percent": 100.0,
        "verdict": "duplicate",
        "edits": [],
        "edited": "query",
        "edit_summary": "no visible edit",
        "reviewed": False,
    }
    assert len(body["matches"]) == 2


def test_default_top_is_five(app) -> None:  # noqa: ANN001
    status, body = call(app, event("GET", "/find_similar", {"image_url": "https://img.test/5.jpg"}))
    assert status == 200 and body["is_duplicate"] is False and len(body["matches"]) == 5


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream", None])
def test_raw_upload(app, content_type: str | None) -> None:  # noqa: ANN001
    data = encode(product_image(203).resize((240, 240)), "JPEG", quality=70)
    status, body = call(app, event("POST", "/find_similar", {"top": "1"}, data, content_type))
    assert status == 200 and body["matches"][0]["entity_id"] == "E3"


def test_multipart_upload(app) -> None:  # noqa: ANN001
    data = encode(product_image(201))
    boundary = "xYzBoundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, out = call(app, event("POST", "/find_similar", None, body, f"multipart/form-data; boundary={boundary}"))
    assert status == 200 and out["matches"][0]["entity_id"] == "E1"


@pytest.mark.parametrize("prefix", ["data:image/jpeg;base64,", ""])
def test_json_photo_data(app, prefix: str) -> None:  # noqa: ANN001
    photo = prefix + base64.b64encode(encode(product_image(204))).decode()
    payload = json.dumps({"photoData": photo}).encode()
    status, out = call(app, event("POST", "/find_similar", None, payload, "application/json"))
    assert status == 200 and out["matches"][0]["entity_id"] == "E4"


def test_items_lifecycle(app) -> None:  # noqa: ANN001
    new = json.dumps({"entity_id": "N1", "sku": "NEW", "image_url": "https://img.test/5.jpg"}).encode()
    status, created = call(app, event("POST", "/items", None, new, "application/json"))
    assert status == 201 and created["entity_id"] == "N1" and created["hash_algo"]
    status, got = call(app, event("GET", "/items/N1"))
    assert status == 200 and got["sku"] == "NEW"
    status, _ = call(app, event("DELETE", "/items/N1"))
    assert status == 204
    status, missing = call(app, event("GET", "/items/N1"))
    assert status == 404 and missing["error"]["code"] == "not_found"


def test_health_and_openapi(app) -> None:  # noqa: ANN001
    status, health = call(app, event("GET", "/health"))
    assert status == 200 and health["records"] == 5 and health["indexed"] == 5
    status, spec = call(app, event("GET", "/openapi.json"))
    assert status == 200
    assert {"/find_similar", "/items", "/items/{entity_id}", "/health"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/find_similar"]["get"]["parameters"]}
    assert {"image_url", "top", "max_distance"} <= params


BAD_REQUESTS = [
    ("missing image_url", event("GET", "/find_similar"), 400, "invalid_request"),
    (
        "top too big",
        event("GET", "/find_similar", {"image_url": "https://img.test/1.jpg", "top": "101"}),
        400,
        "invalid_request",
    ),
    (
        "top not a number",
        event("GET", "/find_similar", {"image_url": "https://img.test/1.jpg", "top": "ten"}),
        400,
        "invalid_request",
    ),
    (
        "not an image",
        event("GET", "/find_similar", {"image_url": "https://img.test/text.jpg"}),
        415,
        "unsupported_media_type",
    ),
    (
        "upstream timeout",
        event("GET", "/find_similar", {"image_url": "https://img.test/slow.jpg"}),
        504,
        "upstream_timeout",
    ),
    ("empty upload", event("POST", "/find_similar", None, b"", "image/jpeg"), 400, "invalid_request"),
    (
        "upload too large",
        event("POST", "/find_similar", None, b"\xff\xd8\xff" + b"0" * MAX_BYTES * 2, "image/jpeg"),
        413,
        "image_too_large",
    ),
    (
        "truncated upload",
        event("POST", "/find_similar", None, encode(product_image(1))[:500], "image/jpeg"),
        422,
        "invalid_image",
    ),
    (
        "json without photoData",
        event("POST", "/find_similar", None, b"{}", "application/json"),
        400,
        "invalid_request",
    ),
    (
        "json with another field",
        event("POST", "/find_similar", None, b'{"x": 1}', "application/json"),
        400,
        "unknown_parameter",
    ),
    ("broken json", event("POST", "/find_similar", None, b"{nope", "application/json"), 400, "invalid_request"),
    (
        "bad base64 photoData",
        event("POST", "/find_similar", None, b'{"photoData": "data:image/png;base64,@@@"}', "application/json"),
        400,
        "invalid_request",
    ),
    (
        "multipart without file",
        event("POST", "/find_similar", None, b"--b\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
        400,
        "invalid_request",
    ),
    (
        "item body as text/plain",
        event("POST", "/items", None, b'{"entity_id": "x", "image_url": "u"}', "text/plain"),
        415,
        "unsupported_media_type",
    ),
    (
        "item body multipart without boundary",
        event("POST", "/items", None, b"x", "multipart/form-data"),
        415,
        "unsupported_media_type",
    ),
    (
        "item body not utf-8",
        event("POST", "/items", None, b"?\t{\x0b\xff\xfe'S?", "application/json"),
        400,
        "invalid_request",
    ),
    (
        "item without url",
        event("POST", "/items", None, b'{"entity_id": "x"}', "application/json"),
        400,
        "invalid_request",
    ),
    ("unknown route", event("GET", "/nope"), 404, "not_found"),
]


@pytest.mark.parametrize(("name", "ev", "status", "code"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_its_status_and_a_json_error(app, name: str, ev: dict, status: int, code: str) -> None:  # noqa: ANN001
    got_status, body = call(app, ev)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]


def test_an_unexpected_failure_is_a_json_500_not_a_crash(settings: Settings) -> None:
    class Broken:
        def fetch(self, url: str) -> bytes:
            raise RuntimeError("bug")

    app = build_resolver(build_service(settings, fetcher=Broken()), max_body_bytes=MAX_BYTES)
    status, body = call(app, event("GET", "/find_similar", {"image_url": "https://img.test/1.jpg"}))
    assert status == 500 and body["error"]["code"] == "internal_error"
    assert "bug" not in body["error"]["message"]  # internals are logged, not leaked


def test_resolvers_in_parallel_threads_each_see_their_own_request(settings: Settings) -> None:
    """Powertools keeps the current event on a class attribute; ours must stay per thread."""
    import threading

    service = build_service(settings, fetcher=FakeFetcher())
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, str] = {}

    def worker(name: str) -> None:
        app = build_resolver(service, max_body_bytes=MAX_BYTES)

        @app.get("/echo")
        def echo(who: str) -> dict:  # noqa: ARG001 - declared (a known parameter); read from the event
            barrier.wait()  # both threads have now started resolving: the events overlap
            seen[name] = app.current_event.get_query_string_value("who", "")
            return {}

        app.resolve(event("GET", "/echo", {"who": name}), None)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"alice": "alice", "bob": "bob"}


@pytest.mark.parametrize(("method", "path", "allow"), [("PUT", "/health", "GET, HEAD, OPTIONS"),
                                                      ("PATCH", "/items/E1", "DELETE, GET, HEAD, OPTIONS, PUT"),
                                                      ("PATCH", "/items", "GET, HEAD, OPTIONS, POST"),
                                                      ("POST", "/", "GET, HEAD, OPTIONS")])  # fmt: skip
def test_a_method_the_path_lacks_is_405_with_allow(app, method: str, path: str, allow: str) -> None:  # noqa: ANN001
    response = app.resolve(event(method, path), None)
    assert response["statusCode"] == 405
    headers = {**response.get("headers", {}), **{k: v[0] for k, v in response.get("multiValueHeaders", {}).items()}}
    assert headers["Allow"] == allow and json.loads(response["body"])["error"]["code"] == "method_not_allowed"


def test_head_is_get_and_options_lists_the_methods(app) -> None:  # noqa: ANN001
    head = app.resolve(event("HEAD", "/items/E1"), None)
    assert head["statusCode"] == 200 and json.loads(head["body"])["entity_id"] == "E1"  # servers drop the body
    options = app.resolve(event("OPTIONS", "/items/E1"), None)
    assert options["statusCode"] == 204 and options["multiValueHeaders"]["Allow"] == ["DELETE, GET, HEAD, OPTIONS, PUT"]


@pytest.mark.parametrize("path", ["/items/E1/", "/v1/items/E1", "/v1/items/E1/"])
def test_a_trailing_slash_and_the_stage_prefix_reach_the_route(app, path: str) -> None:  # noqa: ANN001
    status, body = call(app, event("GET", path))
    assert status == 200 and body["entity_id"] == "E1"


def test_a_path_with_a_control_character_is_not_found(app) -> None:  # noqa: ANN001
    for path in ("/items/\n", "/items\n", "/health\x00"):
        status, body = call(app, event("GET", path))
        assert (status, body["error"]["code"]) == (404, "not_found"), path


@pytest.mark.parametrize(
    ("entity_id", "says"),
    [("cafe\u0301", "decomposed Unicode"), ("caf\ufffd", "not UTF-8"), ("\ufffd", "not UTF-8")],
)
@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_an_id_that_cannot_be_normalised_is_a_400_saying_why(app, method: str, entity_id: str, says: str) -> None:  # noqa: ANN001
    """`/items/cafe%CC%81` (decomposed) and `/items/%FF` (not UTF-8: U+FFFD once decoded) hold
    characters the router does not match: the id is refused, not reported missing."""
    data = encode(product_image(3)) if method == "PUT" else None
    status, body = call(app, event(method, f"/items/{entity_id}", None, data, "image/jpeg" if data else None))
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert says in body["error"]["message"]


def test_a_decomposed_id_is_told_its_composed_form_which_is_stored_and_read(app) -> None:  # noqa: ANN001
    item = json.dumps({"entity_id": "cafe\u0301", "image_url": "https://img.test/5.jpg"}).encode()
    status, body = call(app, event("POST", "/items", None, item, "application/json"))
    assert status == 400 and "'caf\u00e9'" in body["error"]["message"]
    item = json.dumps({"entity_id": "caf\u00e9", "image_url": "https://img.test/5.jpg"}).encode()
    assert call(app, event("POST", "/items", None, item, "application/json"))[0] == 201
    assert call(app, event("GET", "/items/caf\u00e9"))[1]["entity_id"] == "caf\u00e9"


def test_a_job_id_the_router_cannot_match_is_a_400_too(app) -> None:  # noqa: ANN001
    status, body = call(app, event("GET", "/imports/\ufffd"))
    assert (status, body["error"]["code"]) == (400, "invalid_request") and "job_id" in body["error"]["message"]


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"entity_id": ' + b"1" * 5000 + b"}", b"\xff\xfe{}"])
def test_unusable_json_is_a_400(app, body: bytes) -> None:  # noqa: ANN001
    status, answer = call(app, event("POST", "/items", None, body, "application/json"))
    assert (status, answer["error"]["message"]) == (400, "the body is not valid JSON")


def test_features_only_when_asked_for(app) -> None:  # noqa: ANN001
    assert "features" not in call(app, event("GET", "/items/E1"))[1]
    status, body = call(app, event("GET", "/items/E1", {"include": "features"}))
    assert status == 200 and body["features"]["views"]
    assert call(app, event("GET", "/items/E1", {"include": "everything"}))[0] == 400


def test_a_camera_apps_photodata_form_field_is_an_upload(app) -> None:  # noqa: ANN001
    photo = "data:image/jpeg;base64," + base64.b64encode(encode(product_image(204))).decode()
    body = (f'--b\r\nContent-Disposition: form-data; name="photoData"\r\n\r\n{photo}\r\n--b--\r\n').encode()
    status, out = call(app, event("POST", "/find_similar", None, body, "multipart/form-data; boundary=b"))
    assert status == 200 and out["matches"][0]["entity_id"] == "E4"


# -- names a route does not take: refused, the closest known one named -----------------------------

URL = "https://img.test/2.jpg"
UNKNOWN_QUERIES = [
    ("/find_similar", {"image_url": URL, "topp": "3"}, "unknown parameter 'topp'; did you mean 'top'?"),
    ("/find_similar", {"url": URL}, "unknown parameter 'url'; did you mean 'image_url'?"),  # not "Field required"
    ("/find_similar", {"image_url": URL, "Top": "3"}, "unknown parameter 'Top'; did you mean 'top'?"),
    ("/find_similar", {"image_url": URL, "max_dist": "9"},
     "unknown parameter 'max_dist'; did you mean 'max_distance'?"),
    ("/items", {"limt": "5"}, "unknown parameter 'limt'; did you mean 'limit'?"),
    ("/items/E1", {"includes": "features"}, "unknown parameter 'includes'; did you mean 'include'?"),
    ("/duplicates/scans", {"limits": "1"}, "unknown parameter 'limits'; did you mean 'limit'?"),
    ("/health", {"verbose": "1"}, "unknown parameter 'verbose'; this route takes no query parameters"),
    ("/find_similar", {"image_url": URL, "zzz": "1", "topp": "2"},
     "unknown parameters 'zzz', 'topp' (did you mean 'top'?); "
     "known parameters: entity_id, image_url, marks, max_distance, top"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "query", "message"), UNKNOWN_QUERIES)
def test_an_unknown_query_parameter_is_refused_naming_the_closest_known_one(
    app,  # noqa: ANN001
    path: str,
    query: dict[str, str],
    message: str,
) -> None:
    status, body = call(app, event("GET", path, query))
    assert (status, body["error"]) == (400, {"code": "unknown_parameter", "message": message})


def test_names_are_checked_before_anything_is_done_and_only_on_api_routes(app, settings: Settings) -> None:  # noqa: ANN001
    # Checked before the route runs: a route that would answer 503 here refuses the typo first.
    status, body = call(app, event("GET", "/similar_products", {"image_url": URL, "topp": "3"}))
    assert (status, body["error"]["message"]) == (400, "unknown parameter 'topp'; did you mean 'top'?")
    assert call(app, event("GET", "/similar_products", {"image_url": URL, "top": "3"}))[0] == 503
    status, body = call(app, event("DELETE", "/items/E1", {"force": "1"}))
    assert (status, body["error"]["code"]) == (400, "unknown_parameter")
    assert call(app, event("GET", "/items/E1"))[0] == 200  # still there
    # The page takes any query (a link's tracking tag); a path with no route stays a 404.
    assert app.resolve(event("GET", "/", {"utm_source": "mail"}), None)["statusCode"] == 200
    assert call(app, event("GET", "/nope", {"x": "1"}))[1]["error"]["code"] == "not_found"


def test_thousands_of_made_up_names_get_a_short_answer(app) -> None:  # noqa: ANN001
    query = {f"{i:04d}" + "x" * 2000: "1" for i in range(2000)}
    status, body = call(app, event("GET", "/find_similar", {"image_url": URL, **query}))
    assert (status, body["error"]["code"]) == (400, "unknown_parameter")
    message = body["error"]["message"]
    assert message.startswith("unknown parameters '0000xxx") and "and 1995 more; known parameters" in message
    assert len(message) < 600


JSON = "application/json"
UNKNOWN_FIELDS = [
    ("/items", {"entity_id": "N1", "image_urll": URL}, "unknown field 'image_urll'; did you mean 'image_url'?"),
    ("/items", {"entity_id": "N1", "url": URL}, "unknown field 'url'; did you mean 'image_url'?"),
    ("/items", {"id": "N1", "image_url": URL}, "unknown field 'id'; did you mean 'entity_id'?"),
    ("/find_similar", {"photodata": "aGk="}, "unknown field 'photodata'; did you mean 'photoData'?"),
    ("/imports", {"catalog_ur": "https://img.test/c.csv"}, "unknown field 'catalog_ur'; did you mean 'catalog_url'?"),
    ("/imports", {"item": [{"entity_id": "N1", "image_url": URL}]}, "unknown field 'item'; did you mean 'items'?"),
    ("/imports", {"items": [{"entity_id": "N1", "image": URL}]},
     "items.0: unknown field 'image'; did you mean 'image_url'?"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "message"), UNKNOWN_FIELDS)
def test_an_unknown_body_field_is_refused_naming_the_closest_known_one(
    settings: Settings, path: str, body: dict[str, Any], message: str
) -> None:
    service = build_service(settings, fetcher=FakeFetcher({URL: encode(product_image(202))}))
    imports = build_imports(settings, starter=QueuedOnly())
    app = build_resolver(service, max_body_bytes=MAX_BYTES, imports=imports)
    status, answer = call(app, event("POST", path, None, json.dumps(body).encode(), JSON))
    assert (status, answer["error"]) == (400, {"code": "unknown_parameter", "message": message})
    assert service.parts.store.count() == 0 and imports.recent(10, None)[0] == []  # nothing stored, no job
    known = {"/items": {"entity_id": "N1", "image_url": URL}, "/imports": {"items": [{"entity_id": "N1",
             "image_url": URL}]}}.get(path)  # fmt: skip
    if known:  # the same request with the right names passes
        assert call(app, event("POST", path, None, json.dumps(known).encode(), JSON))[0] in (201, 202)


def test_a_results_csv_is_a_503_where_it_can_be_neither_streamed_nor_written(settings: Settings) -> None:
    """A resolver called as Lambda calls it (no streaming, here no context either) over imports with
    no results files: a clear 503, not the whole CSV built in memory."""
    imports = build_imports(settings, starter=QueuedOnly())
    app = build_resolver(build_service(settings), max_body_bytes=MAX_BYTES, imports=imports)
    status, job = call(app, event("POST", "/imports", None, json.dumps({"items": [{"entity_id": "N1",
                       "image_url": URL}]}).encode(), JSON))  # fmt: skip
    assert status == 202
    status, answer = call(app, event("GET", f"/imports/{job['job_id']}/results", {"format": "csv"}))
    assert (status, answer["error"]["code"]) == (503, "store_unavailable")


# -- the catalog's pages, uploads of records, the duplicate report -------------------------------


def test_the_catalog_page_by_page_and_searched(app) -> None:  # noqa: ANN001
    status, first = call(app, event("GET", "/items", {"limit": "2"}))
    assert status == 200 and [i["entity_id"] for i in first["items"]] == ["E0", "E1"]
    assert "features" not in first["items"][0] and first["next_cursor"]
    status, rest = call(app, event("GET", "/items", {"limit": "10", "cursor": first["next_cursor"]}))
    assert [i["entity_id"] for i in rest["items"]] == ["E2", "E3", "E4"] and rest["next_cursor"] is None
    status, found = call(app, event("GET", "/items", {"q": "sku3"}))
    assert (status, [i["entity_id"] for i in found["items"]], found["next_cursor"]) == (200, ["E3"], None)
    assert len(call(app, event("GET", "/items"))[1]["items"]) == 5  # 20 by default


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"cursor": "abcde"}, {"cursor": "not base64!"},
                                   {"q": "x" * 201}])  # fmt: skip
def test_a_bad_page_request_is_a_400(app, query: dict[str, str]) -> None:  # noqa: ANN001
    status, body = call(app, event("GET", "/items", query))
    assert (status, body["error"]["code"]) == (400, "invalid_request"), query


def test_any_well_formed_cursor_is_a_position(app) -> None:  # noqa: ANN001
    status, page = call(app, event("GET", "/items", {"cursor": base64.urlsafe_b64encode(b"E2").decode().rstrip("=")}))
    assert status == 200 and [i["entity_id"] for i in page["items"]] == ["E3", "E4"]
    assert call(app, event("GET", "/items", {"cursor": "__8"}))[0] == 200  # not UTF-8: still somewhere


def test_an_uploaded_record_is_stored_with_the_address_it_is_published_at(app) -> None:  # noqa: ANN001
    data = encode(product_image(205))
    status, item = call(app, event("PUT", "/items/U 1", {"sku": "UP", "image_url": "https://img.test/u1.jpg"},
                                   data, "image/jpeg"))  # fmt: skip
    assert status == 201 and (item["entity_id"], item["sku"], item["image_url"]) == (
        "U 1",
        "UP",
        "https://img.test/u1.jpg",
    )
    status, bare = call(app, event("PUT", "/items/U2", None, data, "application/octet-stream"))
    assert status == 201 and bare["image_url"] == "" and bare["sku"] == ""
    status, out = call(app, event("POST", "/find_similar", {"top": "1"}, data, "image/jpeg"))
    assert out["matches"][0]["entity_id"] in {"U 1", "U2"} and out["matches"][0]["verdict"] == "duplicate"
    for path, query, body, code in [("/items/U3", None, b"not an image", "unsupported_media_type"),
                                    ("/items/a%b", None, data, "invalid_request"),
                                    ("/items/U3", {"image_url": "ftp://x"}, data, "invalid_request")]:  # fmt: skip
        assert call(app, event("PUT", path, query, body, "image/jpeg"))[1]["error"]["code"] == code, path


def test_the_duplicate_report_is_404_until_one_is_published(app, settings: Settings) -> None:  # noqa: ANN001
    status, body = call(app, event("GET", "/duplicates"))
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert "python -m dupcheck duplicates" in body["error"]["message"]
    report = {"pipeline": "p", "records": 5, "elapsed_s": 0.5, "written_by": "a newer writer",
              "groups": [{"items": ["E1", "E2"], "pairs": [{"a": "E1", "b": "E2", "verdict": "duplicate",
                                                            "match_percent": 96.9, "edit": "cropped"}]}]}  # fmt: skip
    path = settings.data_dir / "duplicates" / "duplicates.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(report))
    # As written, fields it does not know included, read through the decisions (none: every group open).
    group = report["groups"][0]
    read = {**report, "open_groups": 1, "groups": [{**group, "pairs": [{**group["pairs"][0], "reviewed": False}],
                                                     "settled": {}, "decisions": [], "open": True}]}  # fmt: skip
    assert call(app, event("GET", "/duplicates")) == (200, read)
    path.write_text('{"pipeline": ')  # a writer that did not write whole: the store's fault, not a bug
    assert call(app, event("GET", "/duplicates"))[0] == 503


# -- the web app -----------------------------------------------------------------------------------


def _web(app, path: str, requested: str | None = None) -> dict[str, Any]:  # noqa: ANN001
    ev = event("GET", path)
    ev["requestContext"]["path"] = requested or path
    response = app.resolve(ev, None)
    headers = {k: v[0] for k, v in response["multiValueHeaders"].items()}
    return {**response, "headers": headers}


@pytest.mark.parametrize(("requested", "base"), [("/", "/"), ("/v1/", "/v1/"), ("/v1", "/v1/")])
def test_the_page_links_its_files_relative_to_where_it_was_asked_for(app, requested: str, base: str) -> None:  # noqa: ANN001
    response = _web(app, "/", requested)
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert response["body"].count("<base href=") == 1 and f'<base href="{base}">' in response["body"]
    assert '<script type="module" src="web/app.js">' in response["body"]


def test_the_web_files_are_served_as_text_with_a_strict_policy(app) -> None:  # noqa: ANN001
    served = {name: _web(app, f"/web/{name}") for name in ("app.js", "style.css", "words.js")}
    assert served["app.js"]["headers"]["Content-Type"] == "text/javascript; charset=utf-8"
    assert served["style.css"]["headers"]["Content-Type"] == "text/css; charset=utf-8"
    for name, response in served.items():
        assert response["statusCode"] == 200 and response["isBase64Encoded"] is False, name
        assert response["body"] == (web.WEB_DIR / name).read_text(), name
        policy = response["headers"]["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response["headers"]["X-Content-Type-Options"] == "nosniff"
    for missing in ("/web/nope.js", "/web/..%2Fapi%2F__init__.py", "/web/index.htm", "/web/index.html"):
        response = _web(app, missing)
        assert (response["statusCode"], json.loads(response["body"])["error"]["code"]) == (404, "not_found"), missing


def test_every_file_the_page_loads_is_served() -> None:
    """The page's links and the scripts' imports name files of dupcheck/web (no CDN, no build)."""
    names = set(web.files())
    page = web.files()[web.PAGE][1]
    linked = set(re.findall(r'(?:src|href)="web/([^"]+)"', page))
    imported = {m for _, (_, text) in web.files().items() for m in re.findall(r'from "\./([^"]+)"', text)}
    assert linked == {"app.js", "style.css"} and linked | imported <= names
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing from elsewhere


def test_an_image_url_the_caller_got_wrong_is_a_4xx_saying_why(settings: Settings) -> None:
    """An unknown host (faked at the resolver: nothing is looked up) and a refused connection
    (faked in the connection layer) are the caller's to fix: 422, never a 502 that would count
    as the service failing."""

    def resolver(host: str, port: int) -> list[str]:
        if host == "shop.test":
            return ["93.184.216.34"]
        raise OSError(f"no such host {host}")

    def refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    service = build_service(settings, fetcher=HttpImageFetcher(resolver=resolver))
    app = build_resolver(service, max_body_bytes=MAX_BYTES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(urllib3.util.connection, "create_connection", refuse)
        for url, says in (("https://no-such-host.test/a.jpg", "does not resolve"),
                          ("https://shop.test/a.jpg", "refused the connection")):  # fmt: skip
            for ev in (event("GET", "/find_similar", {"image_url": url}),
                       event("POST", "/items", body=json.dumps({"entity_id": "A1", "image_url": url}).encode(),
                             content_type="application/json")):  # fmt: skip
                status, body = call(app, ev)
                assert (status, body["error"]["code"]) == (422, "image_unreachable"), (url, ev["httpMethod"])
                assert says in body["error"]["message"]


def test_duplicate_scans_are_started_listed_and_followed_and_answer_503_where_not_set_up(
    app,
    settings: Settings,  # noqa: ANN001
) -> None:
    status, body = call(app, event("POST", "/duplicates/scans"))  # a resolver built without scans
    assert (status, body["error"]["code"]) == (503, "store_unavailable")
    scans = build_scans(settings)  # nothing runs them here: they stay queued
    with_scans = build_resolver(build_service(settings), max_body_bytes=MAX_BYTES, scans=scans)
    status, started = call(with_scans, event("POST", "/duplicates/scans"))
    assert status == 202 and started["status"] == "queued" and started["result"] is None
    status, conflict = call(with_scans, event("POST", "/duplicates/scans"))
    assert (status, conflict["error"]["code"]) == (409, "conflict")
    status, page = call(with_scans, event("GET", "/duplicates/scans", {"limit": "1"}))
    assert status == 200 and [s["scan_id"] for s in page["scans"]] == [started["scan_id"]]
    assert call(with_scans, event("GET", f"/duplicates/scans/{started['scan_id']}"))[1]["status"] == "queued"
    status, missing = call(with_scans, event("GET", "/duplicates/scans/" + "0" * 32))
    assert (status, missing["error"]["code"]) == (404, "not_found")
    assert call(with_scans, event("GET", "/duplicates/scans/not-an-id"))[0] == 400


def test_a_scan_keeps_the_marks_it_was_started_with_or_the_services(settings: Settings) -> None:
    """Issue 83: a scan reads a mark on the product as its `marks` says (the job keeps it, and
    the report's run is given it); none named, the service's setting; a value of no setting is 400."""
    # (the service's setting, the call's, the scan's)
    cases = [("photo", None, "photo"), ("product", None, "product"), ("photo", "product", "product"),
             ("product", "photo", "photo")]  # fmt: skip
    for configured, asked, kept in cases:
        setup = settings.model_copy(
            update={"marks": configured, "data_dir": settings.data_dir / f"{configured}-{asked}"}
        )
        resolver = build_resolver(build_service(setup), max_body_bytes=MAX_BYTES, scans=build_scans(setup))
        status, bad = call(resolver, event("POST", "/duplicates/scans", {"marks": "prints"}))
        assert (status, bad["error"]["code"]) == (400, "invalid_request") and "marks" in bad["error"]["message"]
        status, started = call(resolver, event("POST", "/duplicates/scans", {"marks": asked} if asked else None))
        assert status == 202 and started["marks"] == kept
        assert call(resolver, event("GET", f"/duplicates/scans/{started['scan_id']}"))[1]["marks"] == kept


@pytest.mark.parametrize("size", [(100_000, 1), (1, 100_000)])
def test_a_picture_of_one_pixel_by_100000_is_answered_on_every_image_route(app, size: tuple[int, int]) -> None:  # noqa: ANN001
    """A 375-byte 100000 x 1 PNG was a 500 on every image route (its reduction was 0 px high);
    1 x 100000 was invalid_image."""
    buffer = io.BytesIO()
    Image.new("L", size, 120).save(buffer, "PNG")
    data = buffer.getvalue()
    assert len(data) < 1_000
    status, found = call(app, event("POST", "/find_similar", {"top": "1"}, data, "image/png"))
    assert status == 200 and found["query"]["hash"]
    status, stored = call(
        app, event("PUT", "/items/THIN", {"image_url": "https://img.test/thin.png"}, data, "image/png")
    )
    assert status == 201 and stored["entity_id"] == "THIN"


def test_too_much_decoding_at_once_is_a_503_with_retry_after(app) -> None:  # noqa: ANN001
    from dupcheck.core.pictures import imaging

    saved = imaging.BUDGET
    imaging.BUDGET = imaging.DecodeBudget(max_decode_bytes=64 * imaging.MB, total_bytes=64 * imaging.MB, wait_s=0.2)
    try:
        with imaging.BUDGET.admitted(64 * imaging.MB):  # another request's large picture, being decoded
            response = app.resolve(event("POST", "/find_similar", None, encode(product_image(205)), "image/jpeg"), None)
        assert response["statusCode"] == 503
        assert json.loads(response["body"])["error"]["code"] == "server_busy"
        headers = {
            **(response.get("headers") or {}),
            **{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
        }
        assert int(headers["Retry-After"]) > 0
        status, _ = call(app, event("POST", "/find_similar", None, encode(product_image(205)), "image/jpeg"))
        assert status == 200  # room again once it is done
    finally:
        imaging.BUDGET = saved


# -- the duplicate gate (core/catalog/gate.py) -------------------------------------------------------------


def turned(seed: int, degrees: float = 5.0) -> bytes:
    """A catalog picture turned by a few degrees: a duplicate the gate must notice."""
    picture = product_image(seed)
    return encode(picture.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=picture.getpixel((0, 0))))


def post_item(app, entity_id: str, url: str, query: dict[str, str] | None = None, **body: str):  # noqa: ANN001, ANN201
    payload = json.dumps({"entity_id": entity_id, "sku": "S", "image_url": url, **body}).encode()
    return call(app, event("POST", "/items", query, payload, "application/json"))


def count(app) -> int:  # noqa: ANN001
    return call(app, event("GET", "/health"))[1]["records"]


def test_post_item_warns_of_a_duplicate_and_stores_it(app) -> None:  # noqa: ANN001
    status, out = post_item(app, "N1", "https://img.test/2.jpg")  # E2's picture, under a new id
    assert status == 201 and out["entity_id"] == "N1"
    assert out["on_duplicate"] == "warn" and out["checked"] is True and out["is_duplicate"] is True
    best = out["duplicates"][0]
    assert best["entity_id"] == "E2" and best["verdict"] == "duplicate" and best["edit_summary"] == "no visible edit"
    assert all(m["verdict"] == "duplicate" for m in out["duplicates"])
    assert call(app, event("GET", "/items/N1"))[0] == 200 and count(app) == 6


def test_post_item_new_picture_has_no_duplicates(app) -> None:  # noqa: ANN001
    status, out = post_item(app, "N1", "https://img.test/5.jpg")
    assert status == 201 and out["checked"] is True and out["duplicates"] == [] and out["is_duplicate"] is False


def test_reject_stores_nothing_and_answers_409_with_the_matches(app) -> None:  # noqa: ANN001
    for query, body in (({"on_duplicate": "reject"}, {}), ({"on_duplicate": "warn"}, {"on_duplicate": "reject"})):
        status, out = post_item(app, "N1", "https://img.test/3.jpg", query, **body)
        assert status == 409 and out["error"]["code"] == "duplicate_image"
        assert "E3" in out["error"]["message"] and out["error"]["matches"][0]["entity_id"] == "E3"
        assert out["error"]["matches"][0]["edits"] == []
        assert call(app, event("GET", "/items/N1"))[0] == 404 and count(app) == 5


def test_reject_lets_a_new_picture_in(app) -> None:  # noqa: ANN001
    status, out = post_item(app, "N1", "https://img.test/5.jpg", {"on_duplicate": "reject"})
    assert status == 201 and out["on_duplicate"] == "reject" and out["duplicates"] == []


def test_allow_skips_the_check_and_says_so(app) -> None:  # noqa: ANN001
    status, out = post_item(app, "N1", "https://img.test/3.jpg", {"on_duplicate": "allow"})
    assert status == 201 and out["on_duplicate"] == "allow" and out["checked"] is False and out["duplicates"] == []


def test_re_registering_an_item_is_not_its_own_duplicate(app) -> None:  # noqa: ANN001
    status, out = post_item(app, "E3", "https://img.test/3.jpg", {"on_duplicate": "reject"})
    assert status == 201 and out["duplicates"] == [] and count(app) == 5


def test_put_item_warns_and_rejects_a_turned_copy(app) -> None:  # noqa: ANN001
    data = turned(201)  # E1's picture, 5 degrees round
    status, out = call(app, event("PUT", "/items/T1", {"on_duplicate": "reject"}, data, "image/jpeg"))
    assert status == 409 and out["error"]["matches"][0]["entity_id"] == "E1"
    assert out["error"]["matches"][0]["edit_summary"]
    assert call(app, event("GET", "/items/T1"))[0] == 404
    status, out = call(app, event("PUT", "/items/T1", None, data, "image/jpeg"))
    assert status == 201 and out["duplicates"][0]["entity_id"] == "E1"
    assert "rotat" in (out["duplicates"][0]["edit_summary"] or "")


@pytest.mark.parametrize(("query", "body"), [({"on_duplicate": "maybe"}, {}), (None, {"on_duplicate": "skip"})])
def test_bad_policy_is_a_400_and_stores_nothing(app, query, body) -> None:  # noqa: ANN001
    status, out = post_item(app, "N1", "https://img.test/5.jpg", query, **body)
    assert status == 400 and out["error"]["code"] == "invalid_request" and "on_duplicate" in out["error"]["message"]
    # The message offers what an item takes, as core/models.py's GATE_RULES writes it: never `skip`.
    quoted = [f"'{policy.value}'" for policy in ITEM_POLICIES]
    assert f"Input should be {', '.join(quoted[:-1])} or {quoted[-1]}" in out["error"]["message"]
    assert count(app) == 5


def test_the_default_policy_comes_from_settings(settings: Settings) -> None:
    images = {f"https://img.test/{i}.jpg": encode(product_image(200 + i)) for i in range(2)}
    service = build_service(settings.model_copy(update={"on_duplicate": "reject"}), fetcher=FakeFetcher(images))
    service.registrar.register("E0", "S", "https://img.test/0.jpg")
    app = build_resolver(service, max_body_bytes=MAX_BYTES)
    status, out = post_item(app, "N1", "https://img.test/0.jpg")
    assert status == 409 and out["error"]["code"] == "duplicate_image"
    assert post_item(app, "N1", "https://img.test/0.jpg", {"on_duplicate": "warn"})[0] == 201


def test_a_refused_upload_without_an_address_keeps_no_picture(settings: Settings, tmp_path: Path) -> None:
    from dupcheck.adapters.local_files import LocalKeptImages
    from dupcheck.core.catalog.kept_images import KeptImageLifecycle

    data = encode(product_image(300))
    service = build_service(settings, fetcher=FakeFetcher({}))
    service.registrar.register_bytes(entity_id="K", sku="", image_url="https://img.test/k.jpg", data=data)
    kept = KeptImageLifecycle(LocalKeptImages(tmp_path / "kept"), None)
    app = build_resolver(service, max_body_bytes=MAX_BYTES, images=kept)
    status, out = call(app, event("PUT", "/items/K2", {"on_duplicate": "reject"}, turned(300), "image/jpeg"))
    assert (status, out["error"]["code"]) == (409, "duplicate_image")
    assert not list((tmp_path / "kept").rglob("*.*"))  # refused: nothing kept, nothing stored
    status, out = call(app, event("PUT", "/items/K2", None, turned(300), "image/jpeg"))  # warn: kept and stored
    assert status == 201 and "/images/" in out["image_url"] and out["duplicates"][0]["entity_id"] == "K"
    assert len(list((tmp_path / "kept").rglob("*.*"))) == 1


def test_marks_takes_the_table_s_values_and_refuses_another(app) -> None:  # noqa: ANN001
    status, out = call(app, event("GET", "/find_similar", {"image_url": "https://img.test/1.jpg", "marks": "print"}))
    quoted = [f"'{marks.value}'" for marks in Marks]
    assert status == 400 and out["error"]["code"] == "invalid_request"
    assert f"marks: Input should be {', '.join(quoted[:-1])} or {quoted[-1]}" in out["error"]["message"]
    for marks in Marks:
        status, out = call(app, event("GET", "/find_similar", {"image_url": "https://img.test/1.jpg", "marks": marks}))
        assert status == 200 and out["matches"][0]["entity_id"] == "E1"
