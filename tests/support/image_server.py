"""A loopback image server for tests: routes set by the test, scripted replies, a delay.

Nothing leaves 127.0.0.1. Used through the `image_server` fixture in conftest.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dupcheck_tools.samples import encode, product_image


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default backlog of 5 drops connects under concurrent tests


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "image/jpeg"


class ImageServer:
    """ThreadingHTTPServer on 127.0.0.1: routes set by the test, a per-request delay (and one per
    path), scripted replies per path (e.g. 503, 503, then the image), a thread-safe count of GETs
    per path, and `hold()`: requests are counted, then wait for `release()` before their answer."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.scripts: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        self.delay = 0.0
        self.delays: dict[str, float] = {}
        self.lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                with server.lock:
                    server.hits[path] += 1
                    script = server.scripts.get(path)
                    reply = script.pop(0) if script else server.routes.get(path, Reply(404, b"nope", "text/plain"))
                server._open.wait(30)
                if delay := server.delays.get(path, server.delay):
                    time.sleep(delay)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                try:
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def image(self, path: str, seed: int) -> str:
        self.routes[path] = Reply(200, encode(product_image(seed, (320, 240))))
        return self.base_url + path

    def add(self, path: str, body: bytes, status: int = 200, content_type: str = "image/jpeg") -> str:
        return self.route(path, Reply(status, body, content_type))

    def route(self, path: str, reply: Reply) -> str:
        self.routes[path] = reply
        return self.base_url + path

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.hits)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
