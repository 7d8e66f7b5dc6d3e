"""Download images from untrusted URLs without becoming a proxy into our own network (SSRF).

Anyone can send dupcheck an image URL, so a naive `GET` would let them read the instance
metadata service, internal admin pages or anything else the Lambda can reach. This adapter:

* accepts only http/https URLs without credentials (`user:pass@` is refused with 403,
  because credentials would be sent to a host we do not control and logged in URLs);
* resolves the host once, refuses if ANY resolved address is loopback, private, link-local,
  multicast, reserved (documentation, benchmarking... each named as what it is), unspecified,
  shared (100.64/10) or an IPv4-mapped / 6to4 / NAT64 / Teredo embedding of one, and refuses numeric spellings (`http://2130706433/`,
  `http://0x7f.1/`) by parsing them the way `inet_aton` does;
* connects to the address it checked, sending the original `Host` header and (https) SNI,
  with certificate verification on, so a second DNS answer cannot rebind the target;
* follows at most `max_redirects` redirects itself, checking every hop the same way;
* streams the body under a byte cap, with connect/read timeouts and an overall deadline.

The image type is not taken from `Content-Type`: the decoder sniffs the bytes later.
Proxy environment variables are deliberately ignored (a proxy would defeat the address check).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

from dupcheck.core.errors import (
    ImageTooLarge,
    ImageUnreachable,
    InvalidRequest,
    UpstreamError,
    UpstreamTimeout,
    UrlNotAllowed,
)
from dupcheck.core.settings import MB, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

USER_AGENT = "dupcheck/0.1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_net = ipaddress.ip_network

# Refused even with allow_loopback: link-local holds the cloud metadata services
# (169.254.169.254, ECS 169.254.170.2, AWS IPv6 fd00:ec2::254), which hand out the
# function's IAM credentials. A demo switch must never be able to leak those.
_ALWAYS_BLOCKED = (_net("169.254.0.0/16"), _net("fe80::/10"), _net("fd00:ec2::254/128"))
# What allow_loopback opens up, and nothing more: demos and tests serve images from this
# machine; no demo needs the private networks around it (RFC 1918, CGNAT, unique-local).
_LOOPBACK = (_net("127.0.0.0/8"), _net("::1/128"))
_SHARED = _net("100.64.0.0/10")
# Special-purpose ranges `ipaddress` counts as private (`is_private`) that hold no private network:
# refused all the same, and named as what they are (IANA's special-purpose registries, RFC 6890).
_SPECIAL = (
    (_net("192.0.2.0/24"), "reserved documentation (TEST-NET-1, 192.0.2.0/24)"),
    (_net("198.51.100.0/24"), "reserved documentation (TEST-NET-2, 198.51.100.0/24)"),
    (_net("203.0.113.0/24"), "reserved documentation (TEST-NET-3, 203.0.113.0/24)"),
    (_net("2001:db8::/32"), "reserved documentation (2001:db8::/32)"),
    (_net("198.18.0.0/15"), "reserved benchmarking (198.18.0.0/15)"),
    (_net("2001:2::/48"), "reserved benchmarking (2001:2::/48)"),
    (_net("192.0.0.0/24"), "reserved protocol-assignment (192.0.0.0/24)"),
    (_net("0.0.0.0/8"), 'reserved "this network" (0.0.0.0/8)'),
    (_net("255.255.255.255/32"), "broadcast"),
    (_net("240.0.0.0/4"), "reserved (240.0.0.0/4)"),
    (_net("100::/64"), "reserved discard-only (100::/64)"),
)
_NAT64 = _net("64:ff9b::/96")
_NAT64_LOCAL = _net("64:ff9b:1::/48")  # RFC 8215 local-use prefix: site-specific, never public
# One inet_aton component: hex (0x...), octal (leading 0) or decimal; `int()` alone would also
# accept "+1", " 1" and "1_0", which no resolver treats as numbers.
_NUM_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
# Checked on every URL, so built once (a backfill parses hundreds a second): whitespace and
# control characters are refused; every printable ASCII character is sent as it is.
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_PRINTABLE_ASCII = "".join(chr(i) for i in range(0x21, 0x7F))


_BUSY = frozenset({408, 429})  # 4xx statuses that say "not now" rather than "not here"


class UpstreamStatusError(UpstreamError):
    """The image host answered a 5xx, 408 or 429: it failed or is busy, and a retry may pass (a
    502 `upstream_error` to our callers; backfill and imports retry it). Any other 4xx is the
    address's fault: `ImageUnreachable` (422)."""

    def __init__(self, message: str, upstream_status: int) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


def status_error(status: int) -> UpstreamError:
    """What an image host's error status means for the caller (module docstring of core/errors.py)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "an unknown status"
    if 400 <= status < 500 and status not in _BUSY:
        return ImageUnreachable(f"the image host answered HTTP {status} ({reason}) for this address; check that "
                                "the picture is there")  # fmt: skip
    return UpstreamStatusError(f"the image host answered HTTP {status} ({reason}); try again later", status)


def parse_numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse a host the way `inet_aton` does (`127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1`).

    Resolvers accept these spellings, so they must be recognised as addresses, not names."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUM_PART.fullmatch(p) for p in parts):
        return None
    *head, last = [_numeric_part(p) for p in parts]
    # Leading parts are single bytes; the last one fills all remaining bytes.
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _numeric_part(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)  # inet_aton reads a bare "0x" as zero
    return int(part, 8) if part[0] == "0" else int(part)


def refusal_reason(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why the fetcher must not connect to `ip`, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return refusal_reason(ip.ipv4_mapped, allow_loopback)
        # Transition addresses carry an IPv4 address that decides where packets end up.
        embedded = [v4 for v4 in (ip.sixtofour, *(ip.teredo or ())) if v4 is not None]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if embedded:
            for v4 in embedded:
                if reason := refusal_reason(v4, allow_loopback):
                    return f"embeds a {reason} IPv4 address"
            # All embedded addresses are public: e.g. NAT64 on IPv6-only networks reaching
            # IPv4-only hosts, which `ipaddress` would otherwise call "reserved".
            return None
        if ip in _NAT64_LOCAL:
            return "local NAT64"
    if any(ip in net for net in _ALWAYS_BLOCKED):
        return "link-local/metadata"
    if allow_loopback and any(ip in net for net in _LOOPBACK):
        return None
    checks = (
        (ip.is_unspecified, "unspecified"), (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"), (ip.is_multicast, "multicast"),
    )  # fmt: skip
    if reason := next((reason for hit, reason in checks if hit), None):
        return reason
    if special := next((name for net, name in _SPECIAL if ip.version == net.version and ip in net), None):
        return special
    checks = (
        (ip.is_private, "private"), (ip.is_reserved, "reserved"),
        (ip.version == 4 and ip in _SHARED, "shared"), (not ip.is_global, "non-global"),
    )  # fmt: skip
    return next((reason for hit, reason in checks if hit), None)


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to, in the system's preferred order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class HttpImageFetcher:
    """`ImageFetcher` over urllib3; thread-safe (one instance can serve a whole batch).

    `allowed_hosts`, when non-empty, admits only those hosts: exact, case-insensitive names,
    or ".example.com" for subdomains of example.com (list "example.com" too for the apex). It
    narrows, never widens: a listed host still has its addresses checked. `allow_loopback` opens
    127.0.0.0/8 and ::1 for demos and tests, nothing else; link-local (metadata) stays shut.
    `resolver(host, port) -> [ip, ...]` replaces DNS in tests; `ca_certs` adds a trust anchor.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        allowed_hosts: tuple[str, ...] | list[str] = (),
        max_bytes: int = 20 * MB,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        deadline: float = 20.0,
        max_redirects: int = 5,
        resolver: Resolver | None = None,
        max_pools: int = 64,
        pool_maxsize: int = 16,
        ca_certs: str | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.allowed_hosts = frozenset(h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip())
        self.max_bytes = max_bytes
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.max_redirects = max_redirects
        self._resolve = resolver or system_resolver
        # PoolManager keys pools by (scheme, ip, port, SNI host; plain http shares a pool per
        # ip:port since Host is a per-request header), keeps at most `max_pools` (least recently
        # used are closed) and is thread-safe. Its own redirect/retry logic is
        # bypassed: we call the pools directly with redirect=False, retries=False.
        tls: dict[str, Any] = {"ca_certs": ca_certs} if ca_certs else {}
        self._pools = urllib3.PoolManager(num_pools=max_pools, maxsize=pool_maxsize, block=False, retries=False, **tls)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, max_bytes: int | None = None, deadline: float | None = None
    ) -> HttpImageFetcher:
        """The settings' fetcher; `max_bytes` and `deadline` replace theirs for larger downloads
        than an image (an import's catalog), under the same address checks."""
        return cls(
            allow_loopback=settings.allow_loopback_urls,
            allowed_hosts=settings.allowed_hosts,
            max_bytes=max_bytes or settings.max_image_bytes,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=deadline or settings.fetch_deadline,
            max_redirects=settings.max_redirects,
        )

    def close(self) -> None:
        self._pools.clear()

    def fetch(self, url: str) -> bytes:
        """Download `url` and return its body.

        Raises InvalidRequest (400) for a malformed URL; UrlNotAllowed (403) for another scheme,
        credentials in the URL, a host outside `allowed_hosts` or a refused address (on any
        hop); ImageTooLarge (413) past `max_bytes`; ImageUnreachable (422) for what the address
        itself gets wrong: a host that does not resolve or refuses the connection, a TLS failure,
        a 4xx, a redirect that leads nowhere; UpstreamStatusError (502) for a 5xx, 408 or 429 and
        UpstreamError (502) for a connection broken mid-download; UpstreamTimeout (504) for
        connect/read timeouts or the overall deadline.
        """
        deadline = time.monotonic() + self.deadline
        for hop in range(self.max_redirects + 1):
            try:
                scheme, host, port, target = self._parse(url)
            except InvalidRequest as exc:
                if hop == 0:
                    raise
                # The address leads nowhere usable: the caller needs the picture's final address.
                raise ImageUnreachable(f"the image host redirected to a malformed address; {_FINAL}") from exc
            addresses = self._checked_addresses(host, port)
            resp = self._request(scheme, host, port, target, addresses, deadline)
            if resp.status in _REDIRECTS:
                location = resp.headers.get("Location")
                _discard(resp)
                if not location:
                    raise ImageUnreachable(f"the image host answered {resp.status} without a Location; {_FINAL}")
                try:
                    url = urljoin(url, location.strip())
                except ValueError as exc:  # e.g. "http://[::1/"
                    raise ImageUnreachable(f"the image host redirected to a malformed address; {_FINAL}") from exc
                continue
            if not 200 <= resp.status < 300:
                _discard(resp)
                raise status_error(resp.status)
            return self._read_body(resp, deadline)
        raise ImageUnreachable(f"the address redirects more than {self.max_redirects} times; {_FINAL}")

    def _parse(self, url: str) -> tuple[str, str, int, str]:
        """Split and validate a URL: (scheme, canonical host, port, request target)."""
        if not isinstance(url, str) or not url or _CONTROL_OR_SPACE.search(url):
            raise InvalidRequest("image URL is empty or contains whitespace/control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
            host = (parts.hostname or "").rstrip(".")
        except ValueError as exc:
            raise InvalidRequest(f"malformed image URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UrlNotAllowed(f"URL scheme {scheme or '(none)'!r} is not allowed; use http or https")
        if not host:
            raise InvalidRequest("image URL has no host")
        if parts.username is not None or parts.password is not None:
            raise UrlNotAllowed("URLs with credentials (user:password@) are not allowed")
        if ":" in host:  # only bracketed IPv6 literals leave a colon in hostname
            try:
                host = str(ipaddress.IPv6Address(host))
            except ValueError as exc:
                raise InvalidRequest("malformed IPv6 address in image URL") from exc
        elif (v4 := parse_numeric_ipv4(host)) is not None:
            host = str(v4)  # canonical spelling for checks, Host header and SNI
        else:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise InvalidRequest("malformed host name in image URL") from exc
        if self.allowed_hosts and not self._host_allowed(host):
            raise UrlNotAllowed(f"host {host} is not in the allowed host list")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # http.client only sends ASCII; percent-encode anything else, keep existing escapes.
        target = quote(target, safe=_PRINTABLE_ASCII)
        return scheme, host, port or (443 if scheme == "https" else 80), target

    def _host_allowed(self, host: str) -> bool:
        if host in self.allowed_hosts:
            return True
        return any(entry.startswith(".") and host.endswith(entry) for entry in self.allowed_hosts)

    def _checked_addresses(self, host: str, port: int) -> list[str]:
        """Resolve once and refuse if any address is refused: we may connect to any of them."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            names = [host]
        else:
            try:
                names = self._resolve(host, port)
            except (OSError, UnicodeError) as exc:
                raise ImageUnreachable(f"the image host {host} does not resolve; check the address's host name",
                                       retryable=True) from exc  # fmt: skip
            if not names:
                raise ImageUnreachable(f"the image host {host} has no addresses; check the address's host name",
                                       retryable=True)  # fmt: skip
        addresses: list[str] = []
        for name in names:
            try:
                ip = ipaddress.ip_address(name.split("%", 1)[0])  # drop an IPv6 zone id
            except ValueError as exc:
                raise ImageUnreachable(f"the image host {host} resolved to an invalid address",
                                       retryable=True) from exc  # fmt: skip
            if reason := refusal_reason(ip, self.allow_loopback):
                # The address itself is not echoed: it would map internal DNS for the caller.
                hint = _LOOPBACK_HINT if reason == "loopback" else ""
                raise UrlNotAllowed(f"host {host} resolves to a {reason} address, which is not allowed{hint}")
            addresses.append(str(ip))
        return addresses

    def _request(
        self, scheme: str, host: str, port: int, target: str, addresses: list[str], deadline: float
    ) -> urllib3.BaseHTTPResponse:
        """GET `target` from the first checked address that accepts a connection."""
        default_port = 443 if scheme == "https" else 80
        host_header = f"[{host}]" if ":" in host else host
        if port != default_port:
            host_header += f":{port}"
        headers = {
            "Host": host_header,
            "User-Agent": USER_AGENT,
            "Accept": "image/*",
            "Accept-Encoding": "identity",  # no transparent gunzip: no decompression bomb here
        }
        # Verify the certificate against the URL's host although we connect to an IP.
        tls = {"server_hostname": host, "assert_hostname": host} if scheme == "https" else {}
        error: Exception = ImageUnreachable(f"could not connect to {host}", retryable=True)
        for address in addresses:
            remaining = _remaining(deadline)
            connect_s, read_s = min(self.connect_timeout, remaining), min(self.read_timeout, remaining)
            timeout = urllib3.Timeout(connect=connect_s, read=read_s)
            pool = self._pools.connection_from_host(address, port, scheme, pool_kwargs=tls)
            try:
                return pool.urlopen(
                    "GET", target, headers=headers, timeout=timeout, redirect=False, retries=False,
                    preload_content=False, decode_content=False, assert_same_host=False,
                )  # fmt: skip
            except NewConnectionError as exc:  # refused/unreachable: try the next checked address
                error = ImageUnreachable(f"{host} refused the connection on port {port}; check the address, or try "
                                         "again once its server is up", retryable=True)  # fmt: skip
                error.__cause__ = exc
            except ConnectTimeoutError as exc:
                raise _too_slow(f"{host} did not accept a connection on port {port} within {connect_s:.3g} s",
                                "check the address's host and port") from exc  # fmt: skip
            except ReadTimeoutError as exc:
                raise _too_slow(
                    f"{host} accepted the connection but sent no answer within {read_s:.3g} s",
                    "check that the address serves the picture (open it in a browser)",
                ) from exc
            except SSLError as exc:
                raise ImageUnreachable(f"TLS error talking to {host}: its certificate is not valid for this address "
                                       "(or the connection is not TLS)") from exc  # fmt: skip
            except (HTTPError, OSError) as exc:
                raise UpstreamError(f"connection to {host} failed") from exc
        raise error

    def _read_body(self, resp: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        """Read the body under the byte cap and the deadline, then return the connection."""
        length = resp.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > self.max_bytes:
            _discard(resp)
            raise ImageTooLarge(f"image is {int(length)} bytes; the limit is {self.max_bytes}")
        chunks: list[bytes] = []
        total = 0
        complete = False
        try:
            while True:
                # Shrink the socket timeout so a slow drip cannot outlive the deadline.
                sock = getattr(resp.connection, "sock", None)
                if sock is not None:
                    sock.settimeout(min(self.read_timeout, _remaining(deadline)))
                # read1: return what has arrived; read() would wait to fill the whole chunk.
                chunk = resp.read1(_CHUNK, decode_content=False)
                if not chunk:
                    complete = True
                    break
                total += len(chunk)
                if total > self.max_bytes:
                    raise ImageTooLarge(f"image exceeds the limit of {self.max_bytes} bytes")
                chunks.append(chunk)
        except ReadTimeoutError as exc:
            raise _too_slow(f"the image host stopped sending the picture for {self.read_timeout:g} s") from exc
        except (HTTPError, OSError) as exc:
            raise UpstreamError("connection broke while reading the image") from exc
        finally:
            if complete:
                resp.release_conn()  # fully read: the connection goes back to the pool
            else:
                _discard(resp)
        return b"".join(chunks)


_FINAL = "use the picture's final address"
# Said only where loopback is what was refused: the one switch that opens it (demos and tests).
_LOOPBACK_HINT = (
    " (a server that fetches from this machine for a demo or a test sets DUPCHECK_ALLOW_LOOPBACK_URLS=true)"
)


def _too_slow(what: str, check: str = "") -> UpstreamTimeout:
    """A 504 saying what was too slow and what to do: what to check, if anything, then try again."""
    return UpstreamTimeout(f"{what}; {check + ', or ' if check else ''}try again later (a retry may pass)")


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _too_slow("the download took longer than its time limit: the image host is slow (or the picture large)")
    return remaining


def _discard(resp: urllib3.BaseHTTPResponse) -> None:
    """Drop a response without reading its (possibly huge) body; the socket is closed."""
    resp.close()
    resp.release_conn()
