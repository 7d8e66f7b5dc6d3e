"""End to end: the local server (waitress) over real sockets, a loopback image server, the real
fetcher; its guard, its limits, concurrency and the index following other processes' writes."""

from __future__ import annotations

import contextlib
import errno
import gc
import http.client
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from pydantic import SecretStr

from dupcheck.api import uploads
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.settings import Settings
from dupcheck_tools.local import memory
from dupcheck_tools.local.server import SILENT_GRACE_S, LocalServer, client_key
from dupcheck_tools.local.sync import IndexFollower
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer

ROOT = Path(__file__).parents[2]


def request(
    url: str, method: str = "GET", body: bytes | None = None, content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:  # fmt: skip
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}, dict(response.headers)
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else {}, dict(err.headers)


def serve(service: DupcheckService, settings: Settings, **overrides: Any) -> LocalServer:
    server = LocalServer(service, settings.model_copy(update={"port": 0, **overrides}))
    server.start_in_thread()
    return server


@pytest.fixture
def server(service: DupcheckService, settings: Settings) -> Iterator[LocalServer]:
    srv = serve(service, settings)
    yield srv
    srv.shutdown()


def register(server: LocalServer, image_server: ImageServer, entity_id: str, seed: int) -> None:
    url = image_server.add(f"/catalog/{seed}.jpg", encode(product_image(seed)))
    item = json.dumps({"entity_id": entity_id, "sku": f"SKU-{seed}", "image_url": url}).encode()
    status, created, _ = request(f"{server.url}/items", "POST", item, "application/json")
    assert status == 201, created


def test_register_find_remove_over_http(server: LocalServer, image_server: ImageServer) -> None:
    for i in range(6):
        register(server, image_server, f"P{i}", 300 + i)
    copy_url = image_server.add("/query/copy.jpg", encode(product_image(302).resize((260, 260)), "JPEG", quality=55))
    status, body, _ = request(f"{server.url}/find_similar?image_url={quote(copy_url)}&top=3")
    assert status == 200 and body["is_duplicate"] and body["matches"][0]["entity_id"] == "P2"

    assert request(f"{server.url}/items/P2", "DELETE")[0] == 204
    status, body, _ = request(f"{server.url}/find_similar?image_url={quote(copy_url)}&top=3")
    assert status == 200 and "P2" not in [m["entity_id"] for m in body["matches"]]

    status, body, _ = request(f"{server.url}/find_similar?top=1", "POST", encode(product_image(304)), "image/jpeg")
    assert status == 200 and body["matches"][0]["entity_id"] == "P4"


def test_error_statuses_over_http(server: LocalServer, image_server: ImageServer) -> None:
    image_server.add("/text", b"plain text, not an image", content_type="image/jpeg")
    image_server.add("/gone", b"", status=404)
    cases = {
        f"/find_similar?image_url={quote(image_server.base_url + '/text')}": (415, "unsupported_media_type"),
        f"/find_similar?image_url={quote(image_server.base_url + '/gone')}": (422, "image_unreachable"),
        f"/find_similar?image_url={quote('http://169.254.169.254/latest/')}": (403, "url_not_allowed"),
        f"/find_similar?image_url={quote('file:///etc/passwd')}": (400, "invalid_request"),  # not http(s)
        "/find_similar?image_url=x&top=500": (400, "invalid_request"),
        "/items/missing": (404, "not_found"),
    }
    for path, expected in cases.items():
        status, body, _ = request(server.url + path)
        assert (status, body["error"]["code"]) == expected, path


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "BREW"])
def test_a_method_a_route_lacks_is_405_with_allow(server: LocalServer, method: str) -> None:
    status, body, headers = request(f"{server.url}/health", method)
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    assert headers["Allow"] == "GET, HEAD, OPTIONS"


def test_head_answers_like_get_without_a_body_and_options_lists_methods(server: LocalServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=10)
    connection.request("HEAD", "/health")
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b""
    assert int(response.getheader("Content-Length")) > 0  # the length GET would send
    connection.request("OPTIONS", "/items/A1")
    response = connection.getresponse()
    response.read()
    assert response.status == 204 and response.getheader("Allow") == "DELETE, GET, HEAD, OPTIONS, PUT"


def test_shutdown_stops_the_server_whose_wake_up_pipe_is_already_closed(
    service: DupcheckService, settings: Settings
) -> None:
    """A teardown once found the loop's trigger pipe closed (EBADF): shutdown still ends the
    loop and closes the listener instead of raising."""
    srv = serve(service, settings)
    port = int(srv.url.rsplit(":", 1)[1])

    def closed_pipe(thunk: object = None) -> None:  # what waitress's os.write raised then
        raise OSError(errno.EBADF, "Bad file descriptor")

    srv._server.trigger.pull_trigger = closed_pipe  # type: ignore[method-assign]
    srv.shutdown()
    assert srv._thread is not None and not srv._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_trailing_slash_and_stage_prefix_reach_the_same_route(server: LocalServer) -> None:
    for path in ("/health/", "/v1/health", "/v1/health/"):
        status, body, _ = request(server.url + path)
        assert status == 200 and body["status"] == "ok", path


def test_the_prototypes_call_with_the_stage_prefix_and_the_key(
    service: DupcheckService, settings: Settings, image_server: ImageServer
) -> None:
    """docs/migration.md: an old client changes its base URL (+ /v1) and adds x-api-key; its
    `GET /find_similar/?image_url=..&top=3`, trailing slash and all, is answered."""
    server = serve(service, settings, api_key=SecretStr("k3y"))
    try:
        url = image_server.add("/catalog/1.jpg", encode(product_image(1)))
        service.registrar.register("1001", "MH01", url)
        query = f"/v1/find_similar/?image_url={quote(url)}&top=3"
        status, body, _ = request(server.url + query)
        assert status == 403 and body["error"]["code"] == "forbidden"
        status, body, _ = request(server.url + query, headers={"x-api-key": "k3y"})
        assert status == 200 and body["is_duplicate"]
        assert {k: body["matches"][0][k] for k in ("entity_id", "sku", "image_url", "verdict")} == {
            "entity_id": "1001",
            "sku": "MH01",
            "image_url": url,
            "verdict": "duplicate",
        }
    finally:
        server.shutdown()


def test_unknown_host_names_are_refused_ip_and_localhost_are_not(service: DupcheckService, settings: Settings) -> None:
    server = serve(service, settings, server_names=("dupcheck.internal",))
    try:
        port = server.url.rsplit(":", 1)[1]
        for host, expected in [("attacker.example", 403), (f"attacker.example:{port}", 403), ("localhost", 200),
                               (f"127.0.0.1:{port}", 200), ("[::1]", 200), ("dupcheck.internal", 200)]:  # fmt: skip
            status, body, _ = request(f"{server.url}/health", headers={"Host": host})
            assert status == expected, (host, body)
            if status == 403:
                assert body["error"]["code"] == "forbidden_host"
    finally:
        server.shutdown()


def test_cross_site_writes_are_refused(server: LocalServer, image_server: ImageServer) -> None:
    url = image_server.add("/x.jpg", encode(product_image(1)))
    item = json.dumps({"entity_id": "X1", "image_url": url}).encode()
    host = server.url.removeprefix("http://")
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://attacker.example"}, {"Origin": "null"}):  # fmt: skip
        status, body, _ = request(f"{server.url}/items", "POST", item, "application/json", headers)
        assert (status, body["error"]["code"]) == (403, "cross_site_request"), headers
        assert request(f"{server.url}/items/X1", "DELETE", headers=headers)[0] == 403
    assert request(f"{server.url}/items/X1")[0] == 404  # nothing was written
    # The page the server serves itself, and clients that are not browsers, may write.
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": f"http://{host}"}, {}):
        assert request(f"{server.url}/items", "POST", item, "application/json", headers)[0] == 201
    # A cross-site form post is the attack: multipart/form-data needs no preflight.
    form = b'--b\r\nContent-Disposition: form-data; name="entity_id"\r\n\r\nX1\r\n--b--\r\n'
    status, _, _ = request(f"{server.url}/items", "POST", form, "multipart/form-data; boundary=b",
                           {"Origin": "http://attacker.example"})  # fmt: skip
    assert status == 403


def test_the_api_key_is_needed_when_set(service: DupcheckService, settings: Settings) -> None:
    server = serve(service, settings, api_key=SecretStr("s3cret"))
    try:
        for path in ("/items/A1", "/find_similar?image_url=https%3A%2F%2Fshop.test%2Fa.jpg"):
            status, body, _ = request(server.url + path)
            assert (status, body["error"]["code"]) == (403, "forbidden"), path
            assert request(server.url + path, headers={"x-api-key": "wrong"})[0] == 403
        assert request(f"{server.url}/items/A1", headers={"x-api-key": "s3cret"})[0] == 404  # through the key
        assert request(f"{server.url}/health")[0] == 200  # open, as on AWS
        assert request(f"{server.url}/openapi.json")[0] == 200
        for page in ("/", "/v1/", "/web/app.js", "/web/style.css"):  # the web app: its calls bring the key
            assert urllib.request.urlopen(server.url + page, timeout=10).status == 200, page
        for closed in ("/items", "/duplicates", "/webapp.js", "/v1/items"):
            assert request(server.url + closed)[0] == 403, closed
    finally:
        server.shutdown()


def test_the_served_contract_declares_the_key_only_when_the_server_needs_one(
    service: DupcheckService, settings: Settings
) -> None:
    """A client generated from a keyless server's /openapi.json sends no key; one generated from
    a keyed server's does. docs/openapi.json is the keyed (AWS) contract."""
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    documents = {}
    for key in (None, SecretStr("s3cret")):
        server = serve(service, settings, api_key=key)
        try:
            documents[key is not None] = request(f"{server.url}/openapi.json")[1]
        finally:
            server.shutdown()
    keyless, keyed = documents[False], documents[True]
    assert keyed == committed and keyed["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"
    assert keyed["security"] == [{"apiKey": []}]
    assert "security" not in keyless and "securitySchemes" not in keyless["components"]
    assert not [op for ops in keyless["paths"].values() for op in ops.values() if "security" in op]
    assert "needs no API key" in keyless["info"]["description"]
    assert keyless["paths"].keys() == keyed["paths"].keys()  # the same routes, the same shapes
    assert keyless["components"]["schemas"] == keyed["components"]["schemas"]


def test_binding_beyond_loopback_without_a_key_warns(
    service: DupcheckService, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    LocalServer(service, settings.model_copy(update={"host": "0.0.0.0", "port": 0})).shutdown()  # noqa: S104
    assert "without DUPCHECK_API_KEY" in capsys.readouterr().err
    LocalServer(service, settings.model_copy(update={"port": 0})).shutdown()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("entity_id", ["a b", "Ünïcödé-ß", "[x]{y}", "a;b,c=d&e+f$g", "tilde~(1)'!*:@", "...", "<>|^"])
def test_every_id_that_can_be_stored_can_be_read_and_removed(
    server: LocalServer, image_server: ImageServer, entity_id: str
) -> None:
    register(server, image_server, entity_id, 7)
    item_url = f"{server.url}/items/{quote(entity_id, safe='')}"
    status, body, _ = request(item_url)
    assert status == 200 and body["entity_id"] == entity_id
    assert request(item_url, "DELETE")[0] == 204
    assert request(item_url)[0] == 404


@pytest.mark.parametrize("entity_id", ["a/b", "what?", "x#y", "50%", "line\nbreak", "tab\there", "..", "€"])
def test_ids_no_url_can_address_are_refused(server: LocalServer, image_server: ImageServer, entity_id: str) -> None:
    url = image_server.add("/x.jpg", encode(product_image(2)))
    item = json.dumps({"entity_id": entity_id, "image_url": url}).encode()
    status, body, _ = request(f"{server.url}/items", "POST", item, "application/json")
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert "entity_id" in body["error"]["message"]
    assert image_server.counts().get("/x.jpg", 0) == 0  # refused before the download


@pytest.mark.parametrize(("escaped", "says"), [("cafe%CC%81", "decomposed Unicode"), ("caf%FF", "not UTF-8")])
def test_ids_that_cannot_be_normalised_are_a_400_over_http(server: LocalServer, escaped: str, says: str) -> None:
    for method in ("GET", "DELETE"):
        status, body, _ = request(f"{server.url}/items/{escaped}", method)
        assert (status, body["error"]["code"]) == (400, "invalid_request") and says in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"[" * 100_000, "application/json"), (b'{"entity_id": 1' + b"1" * 5000 + b"}", "application/json"),
     (b"\xff\xfe{}", "application/json"), (b"x", "multipart/form-data"), (b"entity_id=x", "text/plain")],
)  # fmt: skip
def test_malformed_bodies_are_4xx_never_500(server: LocalServer, body: bytes, content_type: str) -> None:
    status, answer, _ = request(f"{server.url}/items", "POST", body, content_type)
    assert status in (400, 415) and answer["error"]["code"] in ("invalid_request", "unsupported_media_type")


def test_a_multipart_body_of_20000_parts_is_refused_at_once(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused at the part past the limit: the parser never gets to the other 19,983."""
    begun: list[int] = []
    begin = uploads._Parts._begin

    def counted(parts: Any) -> None:  # the parser's part-begin callback, counted
        begun.append(1)
        begin(parts)

    monkeypatch.setattr(uploads._Parts, "_begin", counted)
    part = b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'
    status, body, _ = request(f"{server.url}/find_similar", "POST", part * 20_000 + b"--b--\r\n",
                              "multipart/form-data; boundary=b")  # fmt: skip
    assert (status, body["error"]["code"]) == (400, "invalid_request") and "parts" in body["error"]["message"]
    assert len(begun) == uploads.MAX_PARTS + 1


def raw_exchange(server: LocalServer, payload: bytes, timeout: float = 10) -> bytes:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_content_length_minus_one_is_a_400_not_a_read_to_the_end(server: LocalServer) -> None:
    answer = raw_exchange(server, b"POST /find_similar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n"
                                  b"Connection: close\r\n\r\n" + b"x" * 1000)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 400")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "invalid_request"


def test_an_oversized_body_is_refused_without_reading_it(service: DupcheckService, settings: Settings) -> None:
    server = serve(service, settings, max_image_bytes=10_000)
    try:
        status, body, _ = request(f"{server.url}/find_similar", "POST", b"\xff\xd8\xff" + b"0" * 100_000, "image/jpeg")
        assert (status, body["error"]["code"]) == (413, "image_too_large")
        assert request(f"{server.url}/health")[0] == 200  # and the server is still serving
    finally:
        server.shutdown()


def connect_from(server: LocalServer, source: str) -> socket.socket:
    """A connection to the server from `source`, another loopback address (127.0.0.0/8 is all
    this machine's): a client the server tells apart from the test's own 127.0.0.1."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))


def test_half_sent_requests_hold_no_thread(server: LocalServer) -> None:
    stalled = [connect_from(server, f"127.0.0.{2 + i % 4}") for i in range(40)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /find_similar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\npartial")
        assert request(f"{server.url}/health")[0] == 200  # 40 stalled uploads, 8 threads: still answered
        # ... while all 40 still wait for their bodies (the request deadline is 120 s): none was
        # cut to free a thread for it
        assert all(_closed(sock) is None for sock in stalled)
    finally:
        for sock in stalled:
            sock.close()


def _trickle(sockets: list[socket.socket], stop: threading.Event, every: float) -> None:
    """Send each socket's request a byte at a time, `every` seconds apart, until `stop`: every byte
    resets waitress's idle timer."""
    request = b"POST /find_similar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\nX-Slow: " + b"a" * 10_000
    for position in range(len(request)):
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.sendall(request[position : position + 1])
        if stop.wait(every):
            return


def _closed(sock: socket.socket) -> bytes | None:
    """What the server said before closing `sock`, or None while it is still open."""
    sock.settimeout(0.05)
    try:
        answer = sock.recv(65536)
    except TimeoutError:
        return None
    except OSError:
        return b""
    if answer:
        with contextlib.suppress(OSError, TimeoutError):
            sock.settimeout(1)
            while more := sock.recv(65536):
                answer += more
    return answer


def test_trickling_clients_are_cut_at_the_header_deadline_and_others_are_answered_meanwhile(
    service: DupcheckService, settings: Settings
) -> None:
    """120 connections from 120 addresses, each trickling its headers a byte at a time: they fill
    the server's connections, yet no byte extends their deadline. Each is answered 408 and closed
    at it, and a healthy client waits no longer than that."""
    header_deadline = 2.0
    srv = serve(service, settings, server_connections=100, server_header_deadline=header_deadline,
                server_request_deadline=4.0)  # fmt: skip
    stop = threading.Event()
    slow = [connect_from(srv, f"127.0.{1 + i // 200}.{2 + i % 200}") for i in range(120)]
    trickler = threading.Thread(target=_trickle, args=(slow, stop, 0.5), daemon=True)
    try:
        trickler.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert request(f"{srv.url}/health")[0] == 200
        # Their headers would take 10,000 half-seconds: only their deadline can have made room.
        # The bound is that deadline with a wide margin, not how fast this machine answers.
        assert time.monotonic() - started < 5 * header_deadline
        # Every trickler is cut, none lingers: those past the connection limit were accepted as
        # the first were cut, and their deadline runs from then.
        answers: dict[int, bytes] = {}
        deadline = time.monotonic() + 15 * header_deadline
        while len(answers) < len(slow) and time.monotonic() < deadline:
            answers.update(
                (i, a) for i, sock in enumerate(slow) if i not in answers and (a := _closed(sock)) is not None
            )
        assert len(answers) == len(slow)
        told = [a for a in answers.values() if a]
        assert told and all(a.split(b" ", 2)[1] == b"408" and b'"request_timeout"' in a for a in told)
        assert request(f"{srv.url}/health")[0] == 200  # every connection they held is free again
    finally:
        stop.set()
        for sock in slow:
            sock.close()
        srv.shutdown()


def test_connections_past_descriptor_1023_are_answered(service: DupcheckService, settings: Settings) -> None:
    """A busy process's sockets number past 1023, where select() fails (and took the server's
    loop with it): the server polls instead, and answers."""
    srv = serve(service, settings)
    # Every descriptor up to 1023 taken, once the server is up and whatever an earlier test left for
    # the collector is closed (a descriptor freed below would be the next connection's).
    gc.collect()
    taken = [os.open(os.devnull, os.O_RDONLY)]
    while taken[-1] <= 1023:
        taken.append(os.open(os.devnull, os.O_RDONLY))
    try:
        sock = connect_from(srv, "127.0.0.4")
        assert sock.fileno() > 1023
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(64).split(b" ", 2)[1] == b"200"
        sock.close()
        assert request(f"{srv.url}/health")[0] == 200
    finally:
        srv.shutdown()
        for fd in taken:
            os.close(fd)


def test_a_trickled_body_is_cut_at_the_request_deadline(service: DupcheckService, settings: Settings) -> None:
    request_deadline = 2.0
    srv = serve(service, settings, server_request_deadline=request_deadline)
    started = time.monotonic()  # before the connection: the server's clock cannot start earlier
    sock = connect_from(srv, "127.0.0.3")
    try:
        sock.sendall(b"POST /find_similar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
        # The body would take 1,000 bytes x ~0.1 s: only the deadline ends it within 5 deadlines.
        while (answer := _closed(sock)) is None and time.monotonic() - started < 5 * request_deadline:
            sock.sendall(b"x")  # a byte every ~0.1 s: the idle timer never runs out
            time.sleep(0.05)
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 ") and b"the request did not arrive" in answer
        assert time.monotonic() - started >= request_deadline  # not cut before its deadline
    finally:
        sock.close()
        srv.shutdown()


def test_one_client_cannot_take_every_connection(service: DupcheckService, settings: Settings) -> None:
    """The review's attack: 120 half-sent requests from one address, trickling. Past the
    per-client limit each new one is answered 503 at once, and other clients are answered
    throughout (waitress's 100 connections were all taken: /health timed out for 55 s)."""
    srv = serve(service, settings, server_connections_per_client=8, server_header_deadline=30.0)
    stop = threading.Event()
    slow = [connect_from(srv, "127.0.0.9") for _ in range(120)]
    trickler = threading.Thread(target=_trickle, args=(slow, stop, 1.0), daemon=True)
    try:
        trickler.start()
        answers: dict[int, bytes] = {}
        waited = time.monotonic() + 15  # 112 answered at once; 8 kept until their 30 s deadline
        while len(answers) < 112 and time.monotonic() < waited:
            answers.update(
                (i, a) for i, sock in enumerate(slow) if i not in answers and (a := _closed(sock)) is not None
            )
        held = [sock for i, sock in enumerate(slow) if i not in answers]
        assert len(answers) == 112 and all(_closed(sock) is None for sock in held)
        assert all(a.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 5" in a and b"too_many_connections" in a
                   for a in answers.values() if a)  # fmt: skip
        for _ in range(5):
            assert request(f"{srv.url}/health")[0] == 200
            assert all(_closed(sock) is None for sock in held)  # answered while the 8 still hold theirs
            time.sleep(0.3)
    finally:
        stop.set()
        for sock in slow:
            sock.close()
        srv.shutdown()


def _reopen_closed(sockets: list[socket.socket], srv: LocalServer, stop: threading.Event) -> None:
    """Keep `sockets` open and silent: one the server closes is opened again at once, from the same address."""
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                closed: socket.socket = key.fileobj  # type: ignore[assignment]
                selector.unregister(closed)
                source = closed.getsockname()[0]
                closed.close()
                with contextlib.suppress(OSError):
                    sockets[sockets.index(closed)] = again = connect_from(srv, source)
                    selector.register(again, selectors.EVENT_READ)


def _health_within(srv: LocalServer, source: str, limit_s: float) -> bool:
    """Whether /health, asked on a new connection from `source`, is answered 200 within `limit_s`."""
    started = time.monotonic()
    try:
        with connect_from(srv, source) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            sock.settimeout(limit_s)
            return sock.recv(64).startswith(b"HTTP/1.1 200 ") and time.monotonic() - started <= limit_s
    except OSError:  # a timeout included
        return False


def test_silent_connections_cannot_lock_other_clients_out(service: DupcheckService, settings: Settings) -> None:
    """The review's attack (issue 67): 240 connections that never send a byte, 16 from each of 15
    addresses (each under the per-address cap), opened again as soon as they are closed. They
    are closed at the first-byte deadline, and at the connection limit a silent one makes room
    for a new client: /health from another address is answered within half the first-byte
    deadline, so before a deadline could have made room (it waited for the 30 s idle timeout: 0
    of 30 answered; waiting for the deadline instead would answer about half)."""
    first_byte_deadline = 4.0
    srv = serve(service, settings, server_first_byte_deadline=first_byte_deadline)  # limits: 200, 16 per address
    stop = threading.Event()
    silent = [connect_from(srv, f"127.0.0.{2 + i // 16}") for i in range(240)]
    reopener = threading.Thread(target=_reopen_closed, args=(silent, srv, stop), daemon=True)
    try:
        reopener.start()
        time.sleep(0.5)
        answered = 0
        for _ in range(30):  # over more than two first-byte deadlines
            answered += _health_within(srv, "127.0.0.17", first_byte_deadline / 2)
            time.sleep(0.3)
        assert answered >= 29
    finally:
        stop.set()
        reopener.join(timeout=5)
        for sock in silent:
            sock.close()
        srv.shutdown()


def _wait_closed(sock: socket.socket, within_s: float = 5.0) -> bytes | None:
    """What the server said before closing `sock`, waiting up to `within_s`; None if still open."""
    deadline = time.monotonic() + within_s
    while (answer := _closed(sock)) is None and time.monotonic() < deadline:
        pass
    return answer


def _ask_health(sock: socket.socket) -> bytes:
    """/health on an open connection, kept alive; the status line's code."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
        if not (more := sock.recv(65536)):
            return b"closed"
        answer += more
    return answer.split(b" ", 2)[1]


def _length(answer: bytes) -> int:
    head = answer.partition(b"\r\n\r\n")[0].decode().lower()
    return next(int(line.split(":")[1]) for line in head.split("\r\n") if line.startswith("content-length:"))


def test_a_silent_connection_is_closed_at_the_first_byte_deadline_and_only_a_silent_one(
    service: DupcheckService, settings: Settings
) -> None:
    srv = serve(service, settings, server_first_byte_deadline=1.0)
    silent, early, kept_alive = (connect_from(srv, f"127.0.0.{n}") for n in (2, 3, 4))
    try:
        early.sendall(b"GET /hea")  # its first byte in time: the header deadline (10 s) is its limit now
        assert _ask_health(kept_alive) == b"200"
        assert _wait_closed(silent) == b""  # closed, with nothing to answer
        time.sleep(1.5)  # past the deadline for the two that spoke
        early.sendall(b"lth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        early.settimeout(10)
        assert early.recv(64).split(b" ", 2)[1] == b"200"
        assert _ask_health(kept_alive) == b"200"  # idle between requests: waitress's idle timeout applies
    finally:
        for sock in (silent, early, kept_alive):
            sock.close()
        srv.shutdown()


def test_at_the_limit_a_silent_then_an_idle_connection_makes_room_never_a_busy_one(
    service: DupcheckService, settings: Settings
) -> None:
    """10 connections (a limit of 12 counts waitress's listener and wake-up pipe): one kept alive,
    idle the longest; three with half their headers sent; six silent for over a second. Each new
    client closes the longest-silent connection; once none is silent, the longest-idle kept-alive
    one; the busy ones are answered."""
    srv = serve(service, settings, server_connections=12, server_first_byte_deadline=60.0)
    kept = connect_from(srv, "127.0.0.2")
    busy = [connect_from(srv, "127.0.0.3") for _ in range(3)]
    newcomers: list[socket.socket] = []
    silent: list[socket.socket] = []
    try:
        assert _ask_health(kept) == b"200"
        for sock in busy:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.")
        silent += [connect_from(srv, "127.0.0.4") for _ in range(6)]
        time.sleep(SILENT_GRACE_S + 0.3)  # every connection accepted, the busy ones' bytes read
        for i in range(6):
            newcomers.append(connect_from(srv, "127.0.0.5"))
            assert _ask_health(newcomers[-1]) == b"200"
            assert _wait_closed(silent[i]) == b""
            assert all(_closed(sock) is None for sock in silent[i + 1 :])
        assert _closed(kept) is None
        newcomers.append(connect_from(srv, "127.0.0.5"))
        assert _ask_health(newcomers[-1]) == b"200"
        assert _wait_closed(kept) == b""  # idle longer than any newcomer
        assert all(_closed(sock) is None for sock in newcomers)
        for sock in busy:
            sock.sendall(b"0.0.1\r\nConnection: close\r\n\r\n")
            sock.settimeout(10)
            assert sock.recv(64).split(b" ", 2)[1] == b"200"
    finally:
        for sock in (kept, *busy, *silent, *newcomers):
            sock.close()
        srv.shutdown()


@pytest.mark.parametrize(
    ("host", "client"),
    [("127.0.0.2", "127.0.0.2"), ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
     ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"), ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
     ("::ffff:192.0.2.7", "192.0.2.7"), ("fe80::1%eth0", "fe80::/64"), ("::1", "::/64"), ("", "")],
)  # fmt: skip
def test_clients_are_counted_by_ipv4_address_and_ipv6_slash_64(host: str, client: str) -> None:
    assert client_key(host) == client


def test_connections_from_one_ipv6_client_are_counted_together(service: DupcheckService, settings: Settings) -> None:
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("this machine has no IPv6 loopback")
    srv = serve(service, settings, host="::1", server_connections_per_client=2)
    port = int(srv.url.rsplit(":", 1)[1])
    held = [socket.create_connection(("::1", port), timeout=10) for _ in range(2)]
    try:
        with socket.create_connection(("::1", port), timeout=10) as third:
            answer = _wait_closed(third)
        assert answer is not None and answer.startswith(b"HTTP/1.1 503 ") and b"too_many_connections" in answer
        assert all(_closed(sock) is None for sock in held)
    finally:
        for sock in held:
            sock.close()
        srv.shutdown()


def test_the_server_gives_memory_back_once_idle_after_requests(
    service: DupcheckService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """malloc_trim (dupcheck_tools/local/memory.py) runs once the requests stop, once each time."""
    trims: list[float] = []
    monkeypatch.setattr(memory, "give_back_memory", lambda: trims.append(time.monotonic()))
    srv = serve(service, settings)

    def trims_reach(count: int) -> bool:
        deadline = time.monotonic() + 15
        while len(trims) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return len(trims) == count

    try:
        assert request(f"{srv.url}/health")[0] == 200
        assert trims_reach(1)
        time.sleep(memory.TRIM_AFTER_IDLE_S + 1.5)
        assert len(trims) == 1  # idle since: nothing more to give back
        assert request(f"{srv.url}/items")[0] == 200
        assert trims_reach(2)
    finally:
        srv.shutdown()


def test_a_server_polled_every_half_second_gives_back_what_its_uploads_left(
    service: DupcheckService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web app polls a running import or scan every second, so the requests never stop; what
    the pictures left is given back once none has been decoded for TRIM_AFTER_IDLE_S, once, and
    the polls alone trim nothing more (issue 86)."""
    trims: list[float] = []
    monkeypatch.setattr(memory, "give_back_memory", lambda: trims.append(time.monotonic()))
    srv = serve(service, settings)
    stop, polls = threading.Event(), []

    def poll() -> None:
        while not stop.is_set():
            polls.append(request(f"{srv.url}/health")[0])
            stop.wait(0.5)

    poller = threading.Thread(target=poll)
    try:
        poller.start()
        time.sleep(memory.TRIM_AFTER_IDLE_S + 1.5)
        assert trims == []  # polls only, still coming: nothing given back
        for i in range(3):
            body = encode(product_image(700 + i))
            assert request(f"{srv.url}/items/P{i}?sku=P", "PUT", body, "image/jpeg")[0] == 201
        uploaded = time.monotonic()
        deadline = uploaded + 15
        while not trims and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(trims) == 1 and trims[0] - uploaded >= memory.TRIM_AFTER_IDLE_S
        time.sleep(memory.TRIM_AFTER_IDLE_S + 1.5)
        assert len(trims) == 1  # the polls went on: nothing more to give back
    finally:
        stop.set()
        poller.join(timeout=10)
        srv.shutdown()
    assert polls and set(polls) == {200}


def test_concurrent_requests_are_all_answered(server: LocalServer, image_server: ImageServer) -> None:
    for i in range(4):
        register(server, image_server, f"C{i}", 400 + i)

    def query(i: int) -> tuple[int, str]:
        url = quote(f"{image_server.base_url}/catalog/{400 + i % 4}.jpg")
        status, body, _ = request(f"{server.url}/find_similar?image_url={url}&top=1")
        return status, body["matches"][0]["entity_id"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(query, range(48)))
    assert results == [(200, f"C{i % 4}") for i in range(48)]


def test_of_concurrent_deletes_of_one_id_exactly_one_succeeds(server: LocalServer, image_server: ImageServer) -> None:
    def delete(barrier: threading.Barrier) -> int:
        barrier.wait(timeout=10)
        return request(f"{server.url}/items/D1", "DELETE")[0]

    for attempt in range(5):
        register(server, image_server, "D1", 500)
        barrier = threading.Barrier(8)

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(delete, [barrier] * 8))
        assert statuses == [204] + [404] * 7, attempt


def test_register_and_remove_races_leave_index_and_store_agreeing(
    server: LocalServer, service: DupcheckService, image_server: ImageServer
) -> None:
    url = image_server.add("/race.jpg", encode(product_image(600)))
    item = json.dumps({"entity_id": "R1", "image_url": url}).encode()

    def write(i: int) -> int:
        if i % 2:
            return request(f"{server.url}/items", "POST", item, "application/json")[0]
        return request(f"{server.url}/items/R1", "DELETE")[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(40)))
    record = service.parts.store.get("R1")
    assert service.parts.index.count() == service.parts.store.count()
    if record is not None:
        assert "R1" in {hit.entity_id for hit in service.parts.index.search([record.hash], 5)}


@pytest.mark.slow
def test_writes_of_another_process_are_applied_by_the_followers_next_poll(
    service: DupcheckService, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promise (docs/architecture.md): the follower applies other processes' writes every
    0.5 s. Counted in the follower's polls, not in seconds: the first poll to begin once the
    CLI's write is committed applies it (or one under way then), whatever the machine's speed."""
    polls: list[tuple[int, int | None]] = []  # per poll, in order: the store's version as it began, ids applied
    poll = IndexFollower.poll

    def counted(follower: IndexFollower) -> int:
        turn = len(polls)
        polls.append((follower.store.latest_change(), None))
        applied = poll(follower)
        polls[turn] = (polls[turn][0], applied)
        return applied

    monkeypatch.setattr(IndexFollower, "poll", counted)
    srv = serve(service, settings)
    env = {**os.environ, "DUPCHECK_DATA_DIR": str(settings.data_dir)}

    def applied_at_once(*cli: str) -> bool:
        """Run the CLI; whether its write was applied by the follower's first poll to begin with
        the write committed, or by one under way then."""
        assert srv.follower is not None
        earlier = len(polls)  # polls begun before the CLI started: not this write's
        subprocess.run([sys.executable, "-m", "dupcheck", *cli], check=True, env=env, capture_output=True,
                       timeout=60)  # fmt: skip
        committed = srv.follower.store.latest_change()
        waited = time.monotonic() + 60  # a hang guard only: 120 polls
        while not (saw := [t for t, (version, n) in enumerate(polls) if version >= committed and n is not None]):
            assert time.monotonic() < waited, "the follower made no poll after the CLI's write"
            time.sleep(0.05)
        return any(n for _, n in polls[earlier : saw[0] + 1])

    picture = tmp_path / "new.jpg"
    picture.write_bytes(encode(product_image(700)))
    try:
        assert srv.follower is not None and srv.follower.poll_s <= 0.5
        loaded = time.monotonic() + 60  # a hang guard only
        while not polls or polls[0][1] is None:  # the first poll loads the index: a write made
            assert time.monotonic() < loaded  # before it would be loaded with it, not applied
            time.sleep(0.05)
        assert applied_at_once("add", "--entity-id", "CLI1", str(picture))
        status, body, _ = request(f"{srv.url}/find_similar?top=1", "POST", picture.read_bytes(), "image/jpeg")
        assert status == 200 and body["matches"][0]["entity_id"] == "CLI1"
        health = request(f"{srv.url}/health")[1]
        assert health["records"] == health["indexed"] == 1
        assert applied_at_once("remove", "CLI1")
        assert request(f"{srv.url}/health")[1]["indexed"] == 0
    finally:
        srv.shutdown()


@pytest.mark.slow
def test_make_run_demo_serves_and_its_curls_work(tmp_path: Path) -> None:
    """What `make run` starts: the demo command, on a free port, answering its printed queries
    (similar products on, as `make run` has them: `make venv` installs the model)."""
    env = {**os.environ, "DUPCHECK_DATA_DIR": str(tmp_path / "data"), "DUPCHECK_PORT": "0", "DUPCHECK_PRODUCTS": "auto"}
    proc = subprocess.Popen([sys.executable, "-m", "dupcheck", "demo"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            lines.append(line)
            if line.startswith("API docs:") or proc.poll() is not None:
                break
        curls = [ln.strip() for ln in lines if ln.strip().startswith("curl")]
        assert len(curls) == 4, "".join(lines)
        status, dup, _ = request(curls[0].split("'")[1])
        assert status == 200 and dup["is_duplicate"] and dup["matches"][0]["entity_id"] == "demo-03"
        status, distinct, _ = request(curls[1].split("'")[1])
        assert status == 200 and not distinct["is_duplicate"]
        upload = curls[2].split("@")[1].split(" ")[0]
        post_url = curls[2].rsplit("'", 2)[1]
        status, posted, _ = request(post_url, "POST", Path(upload).read_bytes(), "image/jpeg")
        assert status == 200 and posted["matches"][0]["entity_id"] == "demo-03"
        status, alike, _ = request(curls[3].split("'")[1])
        assert status == 200 and len(alike["products"]) == 3 and 0 < alike["products"][0]["similarity"] <= 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class SlowRows:
    """A store whose index rows arrive only when the test says so: a big catalog loading."""

    def __init__(self, store: Any) -> None:
        self.store, self.release = store, threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def index_codes(self, hash_algos: Any, bits: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.release.wait(30)
        return self.store.index_codes(hash_algos, bits)  # type: ignore[no-any-return]


def test_the_server_answers_while_its_index_loads_and_loses_no_write(
    settings: Settings, image_server: ImageServer
) -> None:
    from dupcheck.adapters.sqlite_store import SqliteRecordStore
    from dupcheck.bootstrap import build_service
    from dupcheck.core.catalog.records import build_entry
    from dupcheck.core.fingerprint.hashing import get_pipeline

    store = SqliteRecordStore(settings.sqlite_path)
    for seed in (810, 811):
        url = f"https://shop.example/{seed}.jpg"
        data = encode(product_image(seed))
        entry = build_entry(get_pipeline(), data, entity_id=f"OLD{seed}", sku="", image_url=url, max_pixels=10**7)
        store.put(entry.record)
    slow = SlowRows(store)
    service = build_service(settings, store=slow, load_index=False)
    server = serve(service, settings)
    try:
        status, health, _ = request(f"{server.url}/health")
        assert status == 200 and health["status"] == "starting" and health["index_ready"] is False
        query = encode(product_image(810).resize((300, 225)), "JPEG", quality=70)
        status, body, _ = request(f"{server.url}/find_similar?top=1", "POST", query, "image/jpeg")
        assert status == 503 and body["error"]["code"] == "index_unavailable"
        register(server, image_server, "NEW812", 812)  # a write while loading

        slow.release.set()
        deadline = time.monotonic() + 10
        while not request(f"{server.url}/health")[1]["index_ready"]:
            assert time.monotonic() < deadline, "the index never became ready"
            time.sleep(0.05)
        deadline = time.monotonic() + 5
        while request(f"{server.url}/health")[1]["indexed"] != 3:  # the write is replayed after the load
            assert time.monotonic() < deadline, "a write made while the index loaded was lost"
            time.sleep(0.05)
        status, body, _ = request(f"{server.url}/find_similar?top=1", "POST", query, "image/jpeg")
        assert status == 200 and body["matches"][0]["entity_id"] == "OLD810"
        status, body, _ = request(f"{server.url}/find_similar?top=1", "POST", encode(product_image(812)), "image/jpeg")
        assert status == 200 and body["matches"][0]["entity_id"] == "NEW812"
    finally:
        server.shutdown()
