"""HttpImageFetcher against a real HTTP(S) server on 127.0.0.1: statuses, limits, redirects,
connection reuse, threads and TLS. Nothing leaves the loopback interface."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import urllib3.util.connection

from dupcheck.adapters.http_fetcher import HttpImageFetcher, UpstreamStatusError
from dupcheck.core.errors import ImageTooLarge, ImageUnreachable, UpstreamError, UpstreamTimeout, UrlNotAllowed

SLOW_PEER_S = 30.0  # how long the slow routes hold on unless a test's end releases them
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append(
                {"path": self.path, "host": self.headers["Host"], "ua": self.headers["User-Agent"],
                 "port": self.client_address[1]}
            )  # fmt: skip
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            getattr(self, "route_" + parts[0].replace("-", "_"), self.route_404)(*parts[1:], **query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def route_404(self, *args: str, **kw: str) -> None:
        self.reply(404, b"not here")

    def route_image(self) -> None:
        self.reply(200, IMAGE, Content_Type="text/plain")  # type must not matter

    def route_status(self, code: str) -> None:
        self.reply(int(code), b"upstream says no")

    def route_slow(self) -> None:  # answers only after SLOW_PEER_S, unless the test releases it first
        if not self.server.release.wait(SLOW_PEER_S):
            self.server.answered_slow.set()
            self.reply(200, IMAGE)
        self.close_connection = True

    def route_drip(self) -> None:  # a byte every 0.05 s for SLOW_PEER_S: each well within the read timeout
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        with self.server.counting_written(self.path) as written:
            for _ in range(int(SLOW_PEER_S / 0.05)):
                self.wfile.write(b"x")
                written[0] += 1
                if self.server.release.wait(0.05):
                    break
        self.close_connection = True

    def route_stream(self, size: str) -> None:  # close-delimited body, no Content-Length
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        remaining = int(size)
        with self.server.counting_written(self.path) as written:
            while remaining > 0:
                n = min(remaining, 65536)
                self.wfile.write(b"y" * n)
                written[0] += n
                remaining -= n
        self.close_connection = True

    def route_biglength(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        self.wfile.write(b"z" * 10)
        self.close_connection = True

    def route_truncated(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"z" * 10)
        self.close_connection = True

    def route_hangup(self) -> None:
        self.close_connection = True

    def route_redirect(self, to: str, code: str = "302") -> None:
        self.reply(int(code), Location=to)

    def route_noloc(self) -> None:
        self.reply(302)

    def route_chain(self, n: str) -> None:
        if int(n) == 0:
            self.route_image()
        else:
            self.reply(301, Location=f"/chain/{int(n) - 1}")

    def route_relative(self, *path: str) -> None:
        self.reply(302, Location="../../image")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 drops SYNs under 8 concurrent clients; the retry after
    # ~1 s then exceeds the tests' 0.5 s connect timeout.
    request_queue_size = 64

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # set at a test's end: the slow routes stop holding on
        self.answered_slow = threading.Event()
        self.written: dict[str, int] = {}  # bytes each finished body route wrote before it ended
        self.finished = threading.Condition(self.lock)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response (cap, timeout, TLS refusal) are expected here

    @contextlib.contextmanager
    def counting_written(self, path: str) -> Iterator[list[int]]:
        """Count the bytes a route manages to write to `path`'s client; recorded once the route
        ends (finished, or the client hung up: the write that found it gone raised)."""
        written = [0]
        try:
            yield written
        finally:
            with self.finished:
                self.written[path] = written[0]
                self.finished.notify_all()

    def written_to(self, path: str) -> int:
        """The bytes written to `path`'s client, once its route has ended."""
        with self.finished:
            assert self.finished.wait_for(lambda: path in self.written, timeout=60), f"{path} never ended"
            return self.written[path]

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def base(server: Server) -> Iterator[str]:
    server.seen.clear()
    server.written.clear()
    server.release.clear()
    server.answered_slow.clear()
    yield f"http://127.0.0.1:{server.port}"
    server.release.set()  # a slow route still holding on ends now: no thread outlives its test


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test whose fetcher would dial beyond 127.0.0.0/8."""
    real = urllib3.util.connection.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        assert ipaddress.ip_address(address[0]).is_loopback, f"tried to connect to {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)


def loopback_resolver(host: str, port: int) -> list[str]:
    table = {"images.test": ["127.0.0.1"], "evil.test": ["10.0.0.1"], "two.test": ["127.0.0.2", "127.0.0.1"]}
    if host not in table:
        raise OSError(f"unknown test host {host}")
    return table[host]


def make(**kwargs: Any) -> HttpImageFetcher:
    kwargs.setdefault("allow_loopback", True)
    kwargs.setdefault("resolver", loopback_resolver)
    kwargs.setdefault("read_timeout", 0.3)
    kwargs.setdefault("connect_timeout", 0.5)
    return HttpImageFetcher(**kwargs)


def test_fetches_the_body_with_our_user_agent(server: Server, base: str) -> None:
    assert make().fetch(f"{base}/image") == IMAGE
    assert server.seen[-1]["ua"] == "dupcheck/0.1"


def test_loopback_server_is_refused_without_allow_loopback(server: Server, base: str) -> None:
    with pytest.raises(UrlNotAllowed):
        make(allow_loopback=False).fetch(f"{base}/image")
    with pytest.raises(UrlNotAllowed):
        make(allow_loopback=False).fetch(f"http://images.test:{server.port}/image")
    assert server.seen == []


def test_connects_to_the_checked_address_with_the_original_host_header(server: Server, base: str) -> None:
    assert make().fetch(f"http://images.test:{server.port}/image") == IMAGE
    assert server.seen[-1]["host"] == f"images.test:{server.port}"


def test_falls_back_to_the_next_checked_address_when_one_refuses(server: Server, base: str) -> None:
    # two.test -> 127.0.0.2 (nothing listens there on this port), then 127.0.0.1
    assert make().fetch(f"http://two.test:{server.port}/image") == IMAGE


@pytest.mark.parametrize("code", [429, 500, 503])
def test_a_failing_or_busy_host_is_a_502_keeping_the_status(base: str, code: int) -> None:
    with pytest.raises(UpstreamStatusError) as info:
        make().fetch(f"{base}/status/{code}")
    assert info.value.status == 502
    assert info.value.upstream_status == code
    assert str(code) in info.value.message


def test_an_address_the_host_does_not_have_is_the_callers_422(base: str) -> None:
    with pytest.raises(ImageUnreachable) as info:
        make().fetch(f"{base}/status/404")
    assert (info.value.status, info.value.code, info.value.retryable) == (422, "image_unreachable", False)
    assert "HTTP 404 (Not Found)" in info.value.message


def test_slow_response_times_out(base: str, server: Server) -> None:
    """The peer never answers while the test runs: the fetcher gives up on its own read timeout,
    long before the fetcher's default read timeout (what an ignored setting would wait)."""
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        make(read_timeout=0.3).fetch(f"{base}/slow")
    assert info.value.status == 504
    assert not server.answered_slow.is_set()  # it gave up while the peer held its answer back
    assert time.monotonic() - start < HttpImageFetcher().read_timeout  # 10 s: 0.3 s governed, with room


def test_slow_drip_is_stopped_by_the_overall_deadline(base: str, server: Server) -> None:
    """Each byte comes in far less than the read timeout, so only the 0.5 s deadline stops the
    download: the peer, dripping for SLOW_PEER_S, finds the client gone long before its end.
    Without the deadline the body would end short (UpstreamError) after SLOW_PEER_S."""
    with pytest.raises(UpstreamTimeout):
        make(read_timeout=5.0, deadline=0.5).fetch(f"{base}/drip")
    assert server.written_to("/drip") < SLOW_PEER_S / 0.05 / 2


def test_streamed_body_without_length_is_cut_at_the_cap(base: str, server: Server) -> None:
    assert len(make(max_bytes=200_000).fetch(f"{base}/stream/200000")) == 200_000
    assert server.written_to("/stream/200000") == 200_000
    with pytest.raises(ImageTooLarge):
        make(max_bytes=199_999).fetch(f"{base}/stream/200000")
    with pytest.raises(ImageTooLarge):  # 2 GB offered; we hang up right after 100 kB
        make(max_bytes=100_000).fetch(f"{base}/stream/{2 * 1024**3}")
    # The peer could write no more than the sockets' buffers hold (a few MB) past what was read:
    # a client that read (or drained) the rest would have taken all 2 GB.
    assert server.written_to(f"/stream/{2 * 1024**3}") < 64 * 1024**2


def test_large_content_length_is_refused_before_reading(base: str) -> None:
    with pytest.raises(ImageTooLarge) as info:
        make(max_bytes=1000).fetch(f"{base}/biglength")
    assert info.value.status == 413


def test_content_length_cap_is_inclusive(base: str) -> None:
    assert make(max_bytes=len(IMAGE)).fetch(f"{base}/image") == IMAGE
    with pytest.raises(ImageTooLarge):
        make(max_bytes=len(IMAGE) - 1).fetch(f"{base}/image")


@pytest.mark.parametrize("path", ["/hangup", "/truncated"])
def test_broken_connections_are_upstream_errors(base: str, path: str) -> None:
    with pytest.raises(UpstreamError) as info:
        make().fetch(base + path)
    assert info.value.status == 502


def test_connection_refused_is_the_callers_422() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ImageUnreachable, match=f"refused the connection on port {port}") as info:
        make().fetch(f"http://127.0.0.1:{port}/image")
    assert info.value.status == 422 and info.value.retryable


def test_redirect_chain_of_max_redirects_is_followed(server: Server, base: str) -> None:
    assert make(max_redirects=5).fetch(f"{base}/chain/5") == IMAGE
    assert [s["path"] for s in server.seen][-1] == "/chain/0"


def test_too_many_redirects_is_unreachable(base: str) -> None:
    with pytest.raises(ImageUnreachable, match="redirects more than 5 times"):
        make(max_redirects=5).fetch(f"{base}/chain/6")
    with pytest.raises(ImageUnreachable, match="redirects more than 0 times"):
        make(max_redirects=0).fetch(f"{base}/chain/1")


def test_relative_redirect_is_resolved_against_the_current_url(server: Server, base: str) -> None:
    assert make().fetch(f"{base}/relative/a/b") == IMAGE
    assert server.seen[-1]["path"] == "/image"


def test_redirect_to_another_host_sends_that_hosts_header(server: Server, base: str) -> None:
    target = f"http://images.test:{server.port}/image"
    assert make().fetch(f"{base}/redirect?to={target}&code=307") == IMAGE
    assert server.seen[-1]["host"] == f"images.test:{server.port}"


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/",
     "ftp://images.test/image", "file:///etc/passwd", "http://user:pw@images.test/image"],
)  # fmt: skip
def test_redirect_targets_are_rechecked(server: Server, base: str, target: str) -> None:
    with pytest.raises(UrlNotAllowed):
        make().fetch(f"{base}/redirect?to={target}")
    assert len(server.seen) == 1  # only the first hop reached anything


def test_redirect_out_of_the_allow_list_is_refused(server: Server) -> None:
    fetcher = make(allowed_hosts=("images.test",))
    start = f"http://images.test:{server.port}"
    assert fetcher.fetch(f"{start}/redirect?to=/image") == IMAGE
    with pytest.raises(UrlNotAllowed, match="allowed host list"):
        fetcher.fetch(f"{start}/redirect?to=http://127.0.0.1:{server.port}/image")


@pytest.mark.parametrize(
    "target",
    ["http://0.0.0.0:{port}/image", "http://0:{port}/image", "http://2852039166/", "http://192.0.2.1/",
     "http://224.0.0.1/", "http://[::]:{port}/image"],
)  # fmt: skip
def test_redirect_to_ranges_allow_loopback_does_not_open_is_refused(server: Server, base: str, target: str) -> None:
    with pytest.raises(UrlNotAllowed):
        make().fetch(f"{base}/redirect?to={target.format(port=server.port)}")
    assert len(server.seen) == 1


def test_redirect_without_location_is_unreachable(base: str) -> None:
    with pytest.raises(ImageUnreachable, match="Location"):
        make().fetch(f"{base}/noloc")


@pytest.mark.parametrize("location", ["http://[::1/", "http://[oops]/x", "https://[::ffff:1.2.3]:80/"])
def test_redirect_to_a_malformed_url_is_unreachable(server: Server, base: str, location: str) -> None:
    """Not the caller's malformed URL (400): the address it gave leads nowhere usable (422)."""
    with pytest.raises(ImageUnreachable, match="malformed") as caught:
        make().fetch(f"{base}/redirect?to={quote(location, safe='')}")
    assert caught.value.status == 422 and len(server.seen) == 1


def test_connections_are_reused(server: Server, base: str) -> None:
    fetcher = make()
    for _ in range(5):
        assert fetcher.fetch(f"{base}/image") == IMAGE
    assert len({s["port"] for s in server.seen}) == 1
    fetcher.close()


def test_concurrent_fetches_from_eight_threads(server: Server, base: str) -> None:
    fetcher = make(read_timeout=2.0, pool_maxsize=4, max_pools=2)
    urls = [f"{base}/image", f"http://images.test:{server.port}/image", f"{base}/chain/2"] * 16
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetcher.fetch, urls))
    assert results == [IMAGE] * len(urls)
    fetcher.close()


# --- TLS: verification stays on, against the URL's host name although we dial an IP ---


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    srv = Server(tls=context)
    yield srv, cert_path
    srv.stop()


def test_https_verifies_the_certificate_for_the_url_host(tls_server: tuple[Server, Path]) -> None:
    srv, cert = tls_server
    assert make(ca_certs=str(cert)).fetch(f"https://images.test:{srv.port}/image") == IMAGE
    assert srv.seen[-1]["host"] == f"images.test:{srv.port}"


def test_https_with_an_untrusted_certificate_fails(tls_server: tuple[Server, Path]) -> None:
    srv, _ = tls_server
    with pytest.raises(ImageUnreachable, match="TLS"):
        make().fetch(f"https://images.test:{srv.port}/image")


def test_https_with_a_certificate_for_another_name_fails(tls_server: tuple[Server, Path]) -> None:
    srv, cert = tls_server
    # the certificate names images.test, not the address in the URL
    with pytest.raises(ImageUnreachable, match="TLS"):
        make(ca_certs=str(cert)).fetch(f"https://127.0.0.1:{srv.port}/image")
