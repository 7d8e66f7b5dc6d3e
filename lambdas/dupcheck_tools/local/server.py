"""The local HTTP server: waitress serving `LocalApp` (app.py), plus the index follower.

Why waitress: a production WSGI server in pure Python (no compiler, runs on every platform a
laptop or a notebook has) whose own settings give the limits an HTTP server needs: it reads a
request fully, under `max_request_body_size` and `max_request_header_size`, before a worker
thread sees it, so a slow or endless upload holds no thread; idle connections close after
`channel_timeout`; it caps connections, keeps them alive, answers HEAD without a body and
writes each response in one piece with TCP_NODELAY (the home-made server's 44 ms Nagle stall is
gone). Its worker threads are why the resolver keeps its event per thread (api/resolver.py):
Powertools keeps it on a class.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask

from dupcheck.bootstrap import build_kept_images
from dupcheck.core.errors import error_body
from dupcheck.core.ports import ImageFetcher
from dupcheck.core.service import DupcheckService
from dupcheck.core.settings import Settings
from dupcheck_tools.local.app import BODY_FRAMING_BYTES, Guard, LocalApp
from dupcheck_tools.local.imports import ImportWorker
from dupcheck_tools.local.scans import ScanWorker
from dupcheck_tools.local.sync import IndexFollower

logger = logging.getLogger(__name__)

CHANNEL_TIMEOUT_S = 30  # an idle or stalled connection is closed after this long
MAX_HEADER_BYTES = 64 * 1024
# waitress's own refusals, by status, as the API's error codes.
_CODES = {400: "invalid_request", 413: "image_too_large", 431: "headers_too_large"}


class _JsonErrorTask(ErrorTask):
    """What waitress refuses itself (a malformed request, a body or headers over its limits) is
    answered in the API's error format: JSON `{"error": {"code", "message"}}`."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps(error_body(_CODES.get(error.code, "internal_error"), f"{error.reason}: {error.body}"))
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body.encode())
        self.write(body.encode())


class _Channel(HTTPChannel):  # waitress's extension point for the error task
    error_task_class = _JsonErrorTask


class LocalServer:
    """`start_in_thread()`, then `url`; `shutdown()` stops serving and following."""

    def __init__(
        self, service: DupcheckService, settings: Settings, *, static_dir: Path | None = None,
        catalog_fetcher: ImageFetcher | None = None,
    ) -> None:  # fmt: skip
        """`catalog_fetcher` replaces the safe fetcher of import jobs' catalog URLs (tests)."""
        self.service = service
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        guard = Guard(api_key=api_key, server_names=settings.server_names)
        # Import jobs run here, in a worker thread (imports.py); the API records and cancels them.
        self.import_worker = ImportWorker(service, settings, catalog_fetcher=catalog_fetcher)
        # Duplicate scans too (scans.py): the web app's button starts one.
        self.scan_worker = ScanWorker(service, settings)
        self.app = LocalApp(service, max_body_bytes=settings.max_image_bytes, guard=guard, static_dir=static_dir,
                            imports=self.import_worker.imports, images=build_kept_images(settings),
                            scans=self.scan_worker.scans)  # fmt: skip
        # A JSON upload carries the image as base64: a third larger than the image itself; an
        # import's catalog may be larger still.
        max_body = max(settings.max_image_bytes * 4 // 3, settings.max_catalog_bytes) + BODY_FRAMING_BYTES
        self._server = create_server(
            self.app, host=settings.host, port=settings.port, threads=settings.server_threads,
            max_request_body_size=max_body, max_request_header_size=MAX_HEADER_BYTES,
            channel_timeout=CHANNEL_TIMEOUT_S, ident="dupcheck", expose_tracebacks=False,
        )  # fmt: skip
        self._server.channel_class = _Channel
        self.follower = IndexFollower.for_service(service)
        self._thread: threading.Thread | None = None
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
        self._thread = threading.Thread(target=self._server.run, name="dupcheck-server", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop accepting, finish or cancel what is queued, close every connection; a running import
        writes the rows in flight, a running scan stops at its next step, and the next server
        resumes them."""
        self.import_worker.stop()
        self.scan_worker.stop()
        if self.follower is not None:
            self.follower.stop()
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

        def close_all() -> None:  # the listener, the trigger and connections
            for channel in list(self._server._map.values()):
                channel.close()

        if self._thread is not None and self._thread.is_alive():
            # Closed by the loop's own thread, woken through waitress's trigger: the loop sees an
            # empty map at once instead of at the end of its 1 s select.
            self._server.trigger.pull_trigger(close_all)
            self._thread.join(timeout=5)
        close_all()


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
