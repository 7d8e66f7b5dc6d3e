"""HttpImageFetcher URL and address policy, without any network.

Every test runs with `urllib3.util.connection.create_connection` replaced by a recorder that
raises `ConnectAttempted`: a refused URL must fail before any connection, and an allowed one
shows exactly which (address, port) the fetcher would have connected to.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
import urllib3.util.connection

from dupcheck.adapters.http_fetcher import (
    HttpImageFetcher,
    UpstreamStatusError,
    parse_numeric_ipv4,
    refusal_reason,
    status_error,
)
from dupcheck.core.errors import ImageUnreachable, InvalidRequest, UpstreamTimeout, UrlNotAllowed
from dupcheck.core.ports import ImageFetcher
from dupcheck.core.settings import Settings

DNS: dict[str, list[str]] = {
    "evil.test": ["10.0.0.1"],
    "rebind.test": ["93.184.216.34", "127.0.0.1"],
    "meta.test": ["169.254.169.254"],
    "mapped.test": ["2606:2800:220:1::1", "::ffff:169.254.169.254"],
    "cgnat.test": ["100.64.1.2"],
    "public.test": ["93.184.216.34"],
    "dual.test": ["2606:2800:220:1::1", "93.184.216.34"],
    "cdn.example.com": ["93.184.216.35"],
    "img.cdn.example.com": ["93.184.216.35"],
    "example.com": ["93.184.216.34"],
    "evilexample.com": ["93.184.216.36"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError(f"unknown test host {host}")
    return DNS[host]


class ConnectAttempted(Exception):
    pass


@pytest.fixture(autouse=True)
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []

    def record(address: tuple[str, int], *args: Any, **kwargs: Any) -> None:
        seen.append(address)
        raise ConnectAttempted(address)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", record)
    return seen


def make(**kwargs: Any) -> HttpImageFetcher:
    kwargs.setdefault("resolver", fake_resolver)
    return HttpImageFetcher(**kwargs)


BLOCKED = [
    # loopback and its numeric spellings
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://127.0.0.1./",
    "https://127.0.0.1:8443/x",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # deprecated IPv4-compatible form
    # private / shared / unique-local
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://0xa000001/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    # link-local and cloud metadata
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::ffff:169.254.169.254]/",
    # multicast, reserved, broadcast, unspecified, documentation
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://192.0.2.1/",
    "http://[2001:db8::1]/",
    # transition embeddings of blocked IPv4
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64 prefix
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[2001:0:a00:1:8000:63bf:a2c4:c9bd]/",  # Teredo, server 10.0.0.1
    # host names resolving to blocked addresses (any one is enough)
    "http://evil.test/",
    "http://rebind.test/",
    "http://meta.test/",
    "http://mapped.test/",
    "http://cgnat.test/",
    "http://EVIL.test./",
]


@pytest.mark.parametrize("url", BLOCKED)
def test_blocked_addresses_are_refused_before_connecting(url: str, attempts: list[tuple[str, int]]) -> None:
    with pytest.raises(UrlNotAllowed) as info:
        make().fetch(url)
    assert info.value.status == 403
    assert attempts == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://meta.test/",
        "http://[fe80::1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        # Private networks around the machine: a demo needs none of them.
        "http://evil.test/",
        "http://cgnat.test/",
        "https://192.168.1.1/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://[fd12:3456::1]/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_metadata_and_private_ranges_stay_refused_with_allow_loopback(
    url: str, attempts: list[tuple[str, int]]
) -> None:
    with pytest.raises(UrlNotAllowed):
        make(allow_loopback=True).fetch(url)
    assert attempts == []  # refused before any connection


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.1:8080/a", ("127.0.0.1", 8080)),
        ("http://2130706433/", ("127.0.0.1", 80)),
        ("http://[::1]:81/", ("::1", 81)),
        ("http://[::ffff:127.0.0.1]/", ("::ffff:7f00:1", 80)),
        ("http://127.255.0.9/", ("127.255.0.9", 80)),
    ],
)
def test_allow_loopback_opens_this_machine(
    url: str, expected: tuple[str, int], attempts: list[tuple[str, int]]
) -> None:
    with pytest.raises(ConnectAttempted):
        make(allow_loopback=True).fetch(url)
    assert attempts == [expected]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://public.test/img.png", ("93.184.216.34", 80)),
        ("https://public.test/img.png", ("93.184.216.34", 443)),
        ("http://93.184.216.34:8080/", ("93.184.216.34", 8080)),
        ("http://1572395042/", ("93.184.216.34", 80)),
        ("http://dual.test/", ("2606:2800:220:1::1", 80)),
        ("http://[64:ff9b::5db8:d822]/", ("64:ff9b::5db8:d822", 80)),  # NAT64 of a public address
        ("http://[2002:5db8:d822::1]/", ("2002:5db8:d822::1", 80)),  # 6to4 of a public address
        ("HTTP://Public.TEST/", ("93.184.216.34", 80)),
    ],
)
def test_public_addresses_connect_to_the_checked_address(
    url: str, expected: tuple[str, int], attempts: list[tuple[str, int]]
) -> None:
    with pytest.raises(ConnectAttempted):
        make().fetch(url)
    assert attempts == [expected]


@pytest.mark.parametrize(
    "url",
    ["ftp://public.test/a.png", "file:///etc/passwd", "gopher://public.test/", "data:image/png;base64,AA==",
     "javascript:alert(1)", "//public.test/a.png", "public.test/a.png"],
)  # fmt: skip
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        make().fetch(url)


@pytest.mark.parametrize(
    "url",
    ["http://user:pass@public.test/", "http://user@public.test/", "https://:pw@public.test/",
     "http://public.test@127.0.0.1/"],
)  # fmt: skip
def test_credentials_in_url_are_refused(url: str, attempts: list[tuple[str, int]]) -> None:
    with pytest.raises(UrlNotAllowed, match="credentials"):
        make().fetch(url)
    assert attempts == []


@pytest.mark.parametrize(
    "url",
    ["", "   ", "http://", "http:///path", "https://:443/", "http://[::1/", "http://public.test:99999/",
     "http://public.test:port/", "http://pub lic.test/", "http://public.test/a\nb", "http://[nothex]/",
     "http://" + "a" * 64 + ".test/"],
)  # fmt: skip
def test_malformed_urls_are_invalid_requests(url: str, attempts: list[tuple[str, int]]) -> None:
    with pytest.raises(InvalidRequest) as info:
        make().fetch(url)
    assert info.value.status == 400
    assert attempts == []


def test_a_host_that_does_not_resolve_is_the_callers_422_saying_what_to_check(
    attempts: list[tuple[str, int]],
) -> None:
    """The caller's bad URL is a 4xx: a 502 would count as the service failing (and page its
    operator). A batch may still retry it: a name can start resolving."""
    with pytest.raises(ImageUnreachable) as info:
        make().fetch("http://no-such-host.test/")
    assert (info.value.status, info.value.code) == (422, "image_unreachable") and info.value.retryable
    assert info.value.message == "the image host no-such-host.test does not resolve; check the address's host name"
    assert attempts == []


def test_resolver_returning_nothing_is_unreachable() -> None:
    with pytest.raises(ImageUnreachable, match="has no addresses") as info:
        make(resolver=lambda host, port: []).fetch("http://public.test/")
    assert info.value.status == 422


def test_a_refused_connection_is_the_callers_422(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public address (faked at the resolver) whose port refuses: the connection layer is
    faked to refuse, so nothing leaves this machine."""

    def refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", refuse)
    with pytest.raises(ImageUnreachable) as info:
        make().fetch("http://dual.test:8080/a.jpg")  # both of its addresses refuse
    assert (info.value.status, info.value.code) == (422, "image_unreachable") and info.value.retryable
    assert info.value.message.startswith("dual.test refused the connection on port 8080; check the address")


def test_a_loopback_refusal_names_the_setting_that_opens_it() -> None:
    with pytest.raises(UrlNotAllowed) as loopback:
        make().fetch("http://127.0.0.1:8000/demo/a.jpg")
    assert "DUPCHECK_ALLOW_LOOPBACK_URLS=true" in loopback.value.message
    for url in ("http://evil.test/", "http://meta.test/"):  # the setting would not open these: not named
        with pytest.raises(UrlNotAllowed) as other:
            make(allow_loopback=True).fetch(url)
        assert "DUPCHECK_ALLOW_LOOPBACK_URLS" not in other.value.message, url


def test_resolver_is_not_consulted_for_ip_literals() -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"]

    with pytest.raises(UrlNotAllowed):
        make(resolver=resolver).fetch("http://0x7f.1/")
    assert calls == []


class TestAllowList:
    def fetcher(self) -> HttpImageFetcher:
        return make(allowed_hosts=("Example.COM", ".cdn.example.com", "93.184.216.34"))

    @pytest.mark.parametrize(
        ("url", "ip"),
        [
            ("http://example.com/a.png", "93.184.216.34"),
            ("http://EXAMPLE.com./a.png", "93.184.216.34"),
            ("http://img.cdn.example.com/a.png", "93.184.216.35"),
            ("http://93.184.216.34/a.png", "93.184.216.34"),
            ("http://1572395042/a.png", "93.184.216.34"),  # canonicalised before matching
        ],
    )
    def test_listed_hosts_pass(self, url: str, ip: str, attempts: list[tuple[str, int]]) -> None:
        with pytest.raises(ConnectAttempted):
            self.fetcher().fetch(url)
        assert attempts == [(ip, 80)]

    @pytest.mark.parametrize(
        "url",
        ["http://public.test/", "http://evilexample.com/", "http://cdn.example.com/",
         "http://example.com.evil.test/", "http://sub.example.com/"],
    )  # fmt: skip
    def test_other_hosts_are_refused_without_resolving(self, url: str) -> None:
        def resolver(host: str, port: int) -> list[str]:
            raise AssertionError("resolved a host outside the allow-list")

        with pytest.raises(UrlNotAllowed, match="allowed host list"):
            make(allowed_hosts=("example.com", ".cdn.example.com"), resolver=resolver).fetch(url)

    def test_allow_list_does_not_bypass_the_address_check(self) -> None:
        with pytest.raises(UrlNotAllowed, match="private"):
            make(allowed_hosts=("evil.test",)).fetch("http://evil.test/")


def test_parse_numeric_ipv4_matches_inet_aton() -> None:
    expected = {
        "127.1": "127.0.0.1",
        "0x7f.1": "127.0.0.1",
        "017700000001": "127.0.0.1",
        "2130706433": "127.0.0.1",
        "1.2.3": "1.2.0.3",
        "0x": "0.0.0.0",
        "10.0x10.010.1": "10.16.8.1",
    }
    for host, ip in expected.items():
        assert parse_numeric_ipv4(host) == ipaddress.IPv4Address(ip), host
    for host in ["256.1.1.1", "4294967296", "1.2.3.4.5", "08", "1_0", "+1", " 1", "1..2", "example.com", ""]:
        assert parse_numeric_ipv4(host) is None, host


def test_refusal_reason_names_the_category() -> None:
    assert refusal_reason(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert refusal_reason(ipaddress.ip_address("100.64.0.1")) == "shared"
    assert refusal_reason(ipaddress.ip_address("169.254.169.254"), allow_loopback=True) == "link-local/metadata"
    assert refusal_reason(ipaddress.ip_address("93.184.216.34")) is None


def test_an_image_hosts_status_is_the_callers_422_or_a_retryable_502() -> None:
    """4xx: the address is wrong (404, 403, 410): the caller's to fix, not retried. 5xx, 408,
    429: the host failed or is busy: a gateway's 502, which batches retry."""
    for status in (400, 401, 403, 404, 410, 451):
        err = status_error(status)
        assert isinstance(err, ImageUnreachable) and (err.status, err.code) == (422, "image_unreachable"), status
        assert not err.retryable and f"HTTP {status}" in err.message
    assert status_error(404).message == (
        "the image host answered HTTP 404 (Not Found) for this address; check that the picture is there"
    )
    for status in (408, 429, 500, 502, 503, 599):
        err = status_error(status)
        assert isinstance(err, UpstreamStatusError) and (err.status, err.code) == (502, "upstream_error"), status
        assert err.retryable and err.upstream_status == status


def test_from_settings_copies_every_limit() -> None:
    settings = Settings(
        allow_loopback_urls=True,
        allowed_hosts="a.test,.b.test",
        max_image_bytes=1234,
        connect_timeout=1.5,
        read_timeout=2.5,
        fetch_deadline=7.0,
        max_redirects=2,
    )
    fetcher = HttpImageFetcher.from_settings(settings)
    assert isinstance(fetcher, ImageFetcher)
    assert fetcher.allow_loopback is True
    assert fetcher.allowed_hosts == {"a.test", ".b.test"}
    assert (fetcher.max_bytes, fetcher.connect_timeout, fetcher.read_timeout) == (1234, 1.5, 2.5)
    assert (fetcher.deadline, fetcher.max_redirects) == (7.0, 2)
    fetcher.close()


def test_defaults_match_settings() -> None:
    fetcher, settings = HttpImageFetcher(), Settings()
    assert fetcher.allow_loopback == settings.allow_loopback_urls
    assert fetcher.max_bytes == settings.max_image_bytes
    assert fetcher.connect_timeout == settings.connect_timeout
    assert fetcher.read_timeout == settings.read_timeout
    assert fetcher.deadline == settings.fetch_deadline
    assert fetcher.max_redirects == settings.max_redirects
    assert fetcher.allowed_hosts == frozenset(settings.allowed_hosts)


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("203.0.113.5", "reserved documentation (TEST-NET-3, 203.0.113.0/24)"),  # issue 86: was "private"
        ("192.0.2.1", "reserved documentation (TEST-NET-1, 192.0.2.0/24)"),
        ("198.51.100.7", "reserved documentation (TEST-NET-2, 198.51.100.0/24)"),
        ("2001:db8::1", "reserved documentation (2001:db8::/32)"),
        ("198.18.0.1", "reserved benchmarking (198.18.0.0/15)"),
        ("240.0.0.1", "reserved (240.0.0.0/4)"),
        ("255.255.255.255", "broadcast"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
    ],
)
def test_a_refused_address_is_named_by_its_range(address: str, named: str, attempts: list[tuple[str, int]]) -> None:
    """The address's special-purpose range as it is: a documentation address is no private network."""
    assert refusal_reason(ipaddress.ip_address(address)) == named
    DNS["named.test"] = [address]
    try:
        with pytest.raises(UrlNotAllowed) as info:
            make().fetch("http://named.test/a.jpg")
    finally:
        del DNS["named.test"]
    assert info.value.message == f"host named.test resolves to a {named} address, which is not allowed"
    assert attempts == []


def test_a_host_that_never_answers_is_a_504_saying_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that accepts the connection and sends nothing (faked: one end of a socket pair nobody
    writes to), and one that never accepts it: each a 504 that says what to check and that a retry
    may pass. Nothing leaves this machine."""
    held: list[socket.socket] = []

    def silent(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        ours, theirs = socket.socketpair()
        held.append(theirs)  # kept open: the host "accepted" and never writes
        return ours

    monkeypatch.setattr(urllib3.util.connection, "create_connection", silent)
    try:
        with pytest.raises(UpstreamTimeout) as silence:
            make(read_timeout=0.2).fetch("http://public.test:8080/a.jpg")
    finally:
        for sock in held:
            sock.close()
    assert (silence.value.status, silence.value.code) == (504, "upstream_timeout")
    assert silence.value.message == (
        "public.test accepted the connection but sent no answer within 0.2 s; check that the address serves the "
        "picture (open it in a browser), or try again later (a retry may pass)"
    )

    def never(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", never)
    with pytest.raises(UpstreamTimeout) as unanswered:
        make(connect_timeout=0.5).fetch("http://public.test:8080/a.jpg")
    assert unanswered.value.message == (
        "public.test did not accept a connection on port 8080 within 0.5 s; check the address's host and port, "
        "or try again later (a retry may pass)"
    )
