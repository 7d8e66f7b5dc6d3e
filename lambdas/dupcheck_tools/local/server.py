"""The local HTTP server: waitress serving `LocalApp` (app.py), plus the index follower.

Why waitress: a production WSGI server in pure Python (no compiler, runs on every platform a
laptop or a notebook has) whose own settings give most limits an HTTP server needs: it reads a
request fully, under `max_request_body_size` and `max_request_header_size`, before a worker
thread sees it, so a slow or endless upload holds no thread; idle connections close after
`channel_timeout`; it caps connections (`connection_limit`), keeps them alive, answers HEAD
without a body and writes each response in one piece with TCP_NODELAY (the home-made server's
44 ms Nagle stall is gone). Its worker threads are why the resolver keeps its event per thread
(api/resolver.py): Powertools keeps it on a class.

Limits waitress lacks are added on its extension points (`_Server`, a TcpWSGIServer, and its
`_Channel`), because its one idle timeout (`channel_timeout`) is reset by every byte and covers a
connection that never sent one: 120 connections trickling a byte every 10 s, or 240 that sent
nothing, held all its connections (at `connection_limit` it stops accepting), and every other
client waited.
* A deadline for the first byte, from accept (DUPCHECK_SERVER_FIRST_BYTE_DEADLINE): a connection
  that has said nothing by then is closed.
* A deadline for a request to arrive, from its first byte: its headers within
  DUPCHECK_SERVER_HEADER_DEADLINE, the whole request within DUPCHECK_SERVER_REQUEST_DEADLINE,
  however steadily it trickles. Past it the request is answered 408 and its connection closed
  (both deadlines checked every second, by waitress's own maintenance pass).
* At the connection limit (DUPCHECK_SERVER_CONNECTIONS) an idle connection makes room for a new
  one, as nginx reuses its idle ones: the longest silent one (it never sent a byte), else the
  longest-idle keep-alive one, is closed. One reading or being answered is never closed for it.
* Connections per client (DUPCHECK_SERVER_CONNECTIONS_PER_CLIENT), an IPv4 address or an IPv6
  /64 (the least a provider gives one customer): one more is answered 503 with Retry-After and
  closed at once, so one client cannot take the server's connections from the others.
Behind a reverse proxy these are the proxy's to enforce (docs/api.md, the local server's guard).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error

from dupcheck.adapters.local_products import LocalProductIndex
from dupcheck.bootstrap import build_kept_image_lifecycle, build_product_search
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import error_body
from dupcheck.core.pictures import imaging
from dupcheck.core.pictures.budget import MB
from dupcheck.core.ports import ImageFetcher
from dupcheck.core.settings import Settings
from dupcheck_tools.local.address import ServerRecord, base_url
from dupcheck_tools.local.app import BODY_FRAMING_BYTES, Guard, LocalApp, catalog_budget_of, too_large_code
from dupcheck_tools.local.housekeeping import Housekeeping
from dupcheck_tools.local.imports import ImportWorker
from dupcheck_tools.local.memory import Activity, IdleTrim
from dupcheck_tools.local.scans import ScanWorker
from dupcheck_tools.local.sync import IndexFollower

logger = logging.getLogger(__name__)

CHANNEL_TIMEOUT_S = 30  # an idle or stalled connection is closed after this long
MAX_HEADER_BYTES = 64 * 1024
MAINTENANCE_S = 1  # how often waitress looks over its connections (deadlines, idle ones)
# At the limit a connection silent this long is closed before any idle keep-alive one: a client
# sends its request as soon as it connects (one round trip), a silent socket costs its maker nothing.
SILENT_GRACE_S = 1.0
ROOM_WARNING_EVERY_S = 60  # at the connection limit, how often to log the idle connections closed
REFUSED_RETRY_AFTER_S = 5
# How long a stop waits for the import and scan workers (a stop within 10 s): what is not
# written by then is done again by the next server, as after a kill -9.
WORKERS_STOP_S = 5
# waitress's own refusals (and the request deadline's), by status, as the API's error codes (413: the
# route's, `too_large_code`: a catalog's or an image's).
_CODES = {400: "invalid_request", 408: "request_timeout", 431: "headers_too_large"}


class _RequestTimeout(Error):
    code = 408
    reason = "Request Timeout"


class _JsonErrorTask(ErrorTask):
    """What waitress refuses itself (a malformed request, a body or headers over its limits) is
    answered in the API's error format: JSON `{"error": {"code", "message"}}`."""

    def execute(self) -> None:
        error = self.request.error
        if error.code == 413:  # a body over the server's limit: the route says whose
            method, path = (str(getattr(self.request, name, "") or "") for name in ("command", "path"))
            code = too_large_code(method, path)
        else:
            code = _CODES.get(error.code, "internal_error")
        body = json.dumps(error_body(code, f"{error.reason}: {error.body}"))
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body.encode())
        self.write(body.encode())


class _Channel(HTTPChannel):
    """waitress's connection, with the API's error format, the client it is counted under and the
    moments it was accepted and the request being read began."""

    error_task_class = _JsonErrorTask
    request_began = 0.0  # time.monotonic() of the first byte of the request being read
    heard_from = False  # whether the client has sent a byte yet

    def __init__(self, server: _Server, sock: socket.socket, addr: Any, adj: Adjustments, map: Any = None) -> None:
        self.accepted_at = time.monotonic()
        self.client = client_key(_host(addr))
        super().__init__(server, sock, addr, adj, map)

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_began = time.monotonic()
        self.heard_from = self.heard_from or bool(data)
        return bool(super().received(data))

    @property
    def idle(self) -> bool:
        """Nothing being read, answered or sent: closing it loses nothing (waitress's own test
        for its idle timeout, plus a request half read and an answer not yet sent)."""
        busy = self.request is not None or self.requests or self.total_outbufs_len
        return not (busy or self.will_close or self.close_when_flushed)


class _Server(TcpWSGIServer):
    """waitress's TCP server, with deadlines for a connection's first byte and each request, idle
    connections closed to make room at the limit, and a limit of connections per client (module
    docstring); once a spell of work is over, it gives its memory back (memory.py)."""

    channel_class = _Channel
    active_channels: dict[int, _Channel]
    next_channel_cleanup: float  # waitress's: when its maintenance pass runs next

    def __init__(self, application: Any, *, first_byte_deadline_s: float, header_deadline_s: float,
                 request_deadline_s: float, per_client: int, adj: Adjustments,
                 background: Sequence[Activity] = ()) -> None:  # fmt: skip
        self.first_byte_deadline_s = first_byte_deadline_s
        self.header_deadline_s, self.request_deadline_s = header_deadline_s, request_deadline_s
        self.per_client = per_client
        self.room_made = 0  # idle connections closed for new ones since the last warning
        self.room_warned_at = 0.0
        self.tasks_added = 0  # requests handed to the threads, for the idle trim
        self.background = background  # the import and scan workers' jobs: picture work for the idle trim
        self.idle_trim = IdleTrim(pictures=imaging.BUDGET.started)  # the decodes before it, none of its work
        super().__init__(application, adj=adj, sockinfo=adj.listen[0])

    def add_task(self, task: Any) -> None:
        self.tasks_added += 1
        super().add_task(task)

    def readable(self) -> bool:
        """waitress's, except at the connection limit: while an idle connection can make room,
        the server goes on accepting (handle_accept closes one); waitress stops until one closes."""
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        if not self.accepting:
            return False
        return self._open() < self.adj.connection_limit or any(c.idle for c in self.active_channels.values())

    def _open(self) -> int:
        """Entries of waitress's map (its listener and wake-up pipe too, as its limit counts them)
        that are not closing."""
        if len(self._map) < self.adj.connection_limit:
            return len(self._map)  # the usual case, counted at once
        return len(self._map) - sum(1 for channel in self.active_channels.values() if channel.will_close)

    def _make_room(self, newcomer: _Channel) -> None:
        """Close one idle connection for `newcomer`: the longest-silent one (silent for SILENT_GRACE_S
        at least), else the longest-idle one."""
        now, idle = time.monotonic(), [c for c in self.active_channels.values() if c.idle and c is not newcomer]
        if not idle:
            return  # all busy since readable() asked: over the limit by one, until one closes
        victim = min(idle, key=lambda c: (c.heard_from or now - c.accepted_at < SILENT_GRACE_S, c.last_activity))
        victim.will_close = True
        self.room_made += 1
        if now - self.room_warned_at >= ROOM_WARNING_EVERY_S:
            logger.warning("at the connection limit (%d): %d idle connections closed for new ones",
                           self.adj.connection_limit, self.room_made)  # fmt: skip
            self.room_made, self.room_warned_at = 0, now

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
        except OSError:
            return
        if accepted is None:
            return
        conn, addr = accepted
        client = client_key(_host(addr))
        if sum(1 for channel in self.active_channels.values() if channel.client == client) >= self.per_client:
            _refuse(conn, self.per_client)
            return
        try:
            self.set_socket_options(conn)
        except OSError:
            conn.close()
            return
        newcomer = self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)
        if self._open() > self.adj.connection_limit:
            self._make_room(newcomer)  # marked to close, closed by the loop (waitress's way)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        dispatcher = self.task_dispatcher
        decodes = imaging.BUDGET  # read each time: bootstrap's `configure` may replace it
        self.idle_trim.tick(requests=self.tasks_added, answering=bool(dispatcher.active_count or dispatcher.queue),
                            pictures=decodes.started + sum(jobs.ended for jobs in self.background),
                            decoding=decodes.in_use > 0)  # fmt: skip
        moment = time.monotonic()
        for channel in list(self.active_channels.values()):
            if not channel.heard_from:
                if moment - channel.accepted_at > self.first_byte_deadline_s:
                    channel.will_close = True  # it said nothing: nothing to answer
                continue
            request = getattr(channel, "request", None)
            if request is None or channel.requests or channel.will_close or channel.close_when_flushed:
                continue  # nothing being read, or a response is being made
            deadline = self.request_deadline_s if request.headers_finished else self.header_deadline_s
            if moment - channel.request_began > deadline:
                self._time_out(channel, "its headers" if not request.headers_finished else "the request", deadline)

    def _time_out(self, channel: _Channel, what: str, deadline: float) -> None:
        """Answer 408 (an error task, as waitress answers a malformed request) and close."""
        with channel.requests_lock:
            partial, channel.request = channel.request, None
            timed_out = channel.parser_class(self.adj)
            timed_out.error = _RequestTimeout(f"{what} did not arrive within {deadline:g} s of its first byte")
            timed_out.version = partial.version if partial is not None else None
            timed_out.completed = True
            channel.requests.append(timed_out)
        if partial is not None:
            partial.close()
        self.add_task(channel)


def _host(addr: Any) -> Any:
    return addr[0] if isinstance(addr, tuple) else addr


def client_key(host: Any) -> str:
    """The client a connection from `host` is counted under: an IPv4 address, or an IPv6
    address's /64 (one customer's share: one host may hold 2^64 addresses)."""
    try:
        address = ipaddress.ip_address(str(host).split("%", 1)[0])  # without an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return str(host)  # not an IP address: a Unix socket's
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1, an IPv4 client of a dual-stack socket
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _refuse(conn: socket.socket, per_client: int) -> None:
    """503 to a connection over its address's limit, then close it: what it sent is read first
    (closing on unread bytes would reset the connection before the answer is read)."""
    body = json.dumps(error_body("too_many_connections", f"at most {per_client} connections from one address at "
                                 "once; reuse one (keep-alive) or wait for one to close")).encode()  # fmt: skip
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            f"\r\nRetry-After: {REFUSED_RETRY_AFTER_S}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    with contextlib.suppress(OSError):
        conn.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            conn.recv(MAX_HEADER_BYTES)
        conn.send(head + body)
        conn.shutdown(socket.SHUT_WR)
    conn.close()


class LocalServer:
    """`start_in_thread()`, then `url`; `shutdown()` stops serving and following."""

    def __init__(
        self, service: DupcheckService, settings: Settings, *, static_dir: Path | None = None,
        catalog_fetcher: ImageFetcher | None = None, follower: IndexFollower | None = None,
    ) -> None:  # fmt: skip
        """`catalog_fetcher` replaces the safe fetcher of import jobs' catalog URLs (tests);
        `follower`: the service's index follower, when the caller started it first (`serve`
        loads the index while this module is imported)."""
        self.service = service
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        guard = Guard(api_key=api_key, server_names=settings.server_names)
        # Import jobs run here, in a worker thread (imports.py); the API records and cancels them.
        self.import_worker = ImportWorker(service, settings, catalog_fetcher=catalog_fetcher)
        # Duplicate scans too (scans.py): the web app's button starts one.
        self.scan_worker = ScanWorker(service, settings)
        # Similar products, where the product model is installed (docs/lab/similar-products.md).
        self.products = build_product_search(settings, service)
        self.app = LocalApp(service, max_body_bytes=settings.max_image_bytes, guard=guard, static_dir=static_dir,
                            imports=self.import_worker.imports,
                            images=service.parts.kept or build_kept_image_lifecycle(settings, service.parts.store),
                            scans=self.scan_worker.scans, products=self.products,
                            catalog_budget=catalog_budget_of(settings.catalog_budget_mb * MB))  # fmt: skip
        # A JSON upload carries the image as base64: a third larger than the image itself; an
        # import's catalog may be larger still.
        max_body = max(settings.max_image_bytes * 4 // 3, settings.max_catalog_bytes) + BODY_FRAMING_BYTES
        adjustments = Adjustments(
            host=settings.host, port=settings.port, threads=settings.server_threads,
            max_request_body_size=max_body, max_request_header_size=MAX_HEADER_BYTES,
            channel_timeout=CHANNEL_TIMEOUT_S, cleanup_interval=MAINTENANCE_S,
            connection_limit=settings.server_connections, ident="dupcheck", expose_tracebacks=False,
            asyncore_use_poll=True,  # select() fails on a descriptor past 1023: the loop's thread died
        )  # fmt: skip
        self._server = _Server(
            self.app, adj=adjustments, first_byte_deadline_s=settings.server_first_byte_deadline,
            header_deadline_s=settings.server_header_deadline,
            request_deadline_s=settings.server_request_deadline, per_client=settings.server_connections_per_client,
            background=(self.import_worker.activity, self.scan_worker.activity),
        )  # fmt: skip
        self.follower = follower if follower is not None else IndexFollower.for_service(service)
        # What a crash left, kept images no record uses, the SQLite files tidied (housekeeping.py).
        self.housekeeping = Housekeeping(service, [self.import_worker.imports.jobs, self.import_worker.checked,
                                                   self.scan_worker.scans.jobs])  # fmt: skip
        self._thread: threading.Thread | None = None
        self._data_dir = settings.data_dir
        self._record: ServerRecord | None = None  # where it answers, for add and index-dir (address.py)
        if not _is_loopback(settings.host) and api_key is None:
            print(
                f"warning: serving on {settings.host} without DUPCHECK_API_KEY: anyone who can reach this "
                "address can read and change the catalog",
                file=sys.stderr,
                flush=True,
            )

    @property
    def url(self) -> str:
        host, port = self._server.effective_host, self._server.effective_port
        return f"http://{'[' + host + ']' if ':' in str(host) else host}:{port}"

    def start_in_thread(self) -> threading.Thread:
        if self.follower is not None:
            self.follower.start()
        self.import_worker.start_thread()
        self.scan_worker.start_thread()
        self.housekeeping.start()
        if self.products is not None and isinstance(self.products.index, LocalProductIndex):
            # Its vectors load in the background, as the hash index does: the first query need not wait.
            threading.Thread(target=self.products.index.warm, name="products-load", daemon=True).start()
        self._thread = threading.Thread(target=self._server.run, name="dupcheck-server", daemon=True)
        self._thread.start()
        self._record = ServerRecord.take(self._data_dir, base_url(self._server.effective_host,
                                                                   self._server.effective_port))  # fmt: skip
        return self._thread

    def shutdown(self) -> None:
        """Stop accepting, finish or cancel what is queued, close every connection; a running import
        writes the rows already hashed, a running scan stops at its next step, and the next server
        resumes them (docs/deploy.md, "Stopping")."""
        if self._record is not None:
            self._record.release()
            self._record = None
        # Both told first, then waited for together, WORKERS_STOP_S at most.
        self.import_worker.request_stop()
        self.scan_worker.request_stop()
        deadline = time.monotonic() + WORKERS_STOP_S
        self.import_worker.stop(timeout=WORKERS_STOP_S)
        self.scan_worker.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.housekeeping.stop()
        if self.follower is not None:
            self.follower.stop()
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

        def close_all() -> None:  # the listener, the trigger and connections
            for channel in list(self._server._map.values()):
                channel.close()

        if self._thread is not None and self._thread.is_alive():
            # Closed by the loop's own thread, woken through waitress's trigger: the loop sees an
            # empty map at once instead of at the end of its 1 s select. A trigger already closed
            # (its pipe gone: EBADF, seen once at a test's teardown) cannot wake the loop: the
            # channels are closed from here, and the loop ends at its next pass.
            try:
                self._server.trigger.pull_trigger(close_all)
            except OSError:
                close_all()
            self._thread.join(timeout=5)
        close_all()


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
