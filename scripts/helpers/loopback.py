"""The picture host the tests and the benchmarks fetch from: an HTTP server on 127.0.0.1, nothing
else. Routes are set by the caller (a path's body, or a scripted run of replies: 503, 503, then the
picture), or come from `found(path)` for routes made on demand (`numbered`: /p/<n>.jpg); every
answer can start `delay` seconds late (a host far away), one path's by its own; GETs are counted;
`hold()` keeps every answer waiting for `release()`. `in_child` runs one in a process of its own,
for a benchmark whose measured code must not share the host's interpreter lock.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dupcheck_tools.samples import encode, product_image


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "image/jpeg"


NOT_FOUND = Reply(404, b"nope", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connects when many fetch at once


class ImageServer:
    """The host (module docstring): `base_url`, then `add`/`route`/`image` a path, `counts()`."""

    def __init__(self, found: Callable[[str], Reply | None] | None = None, *, delay: float = 0.0) -> None:
        self.routes: dict[str, Reply] = {}
        self.scripts: dict[str, list[Reply]] = {}
        self.found = found
        self.hits: Counter[str] = Counter()
        self.delay = delay
        self.delays: dict[str, float] = {}
        self.lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: a fetcher's pool reuses its connections

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                with server.lock:
                    server.hits[path] += 1
                    script = server.scripts.get(path)
                    reply = script.pop(0) if script else server.routes.get(path)
                if reply is None:
                    reply = (server.found(path) if server.found is not None else None) or NOT_FOUND
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
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"

    def image(self, path: str, seed: int) -> str:
        """A generated product picture at `path`; its URL."""
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


def numbered(bodies: Sequence[bytes], prefix: str = "/p/") -> Callable[[str], Reply | None]:
    """Routes `<prefix><n>.jpg` to body n (modulo their count: any number is a picture)."""

    def found(path: str) -> Reply | None:
        number = path.removeprefix(prefix).split(".")[0]
        if not path.startswith(prefix) or not number.isdigit() or not bodies:
            return None
        return Reply(200, bodies[int(number) % len(bodies)])

    return found


def in_child(make: Callable[..., ImageServer], *args: Any) -> tuple[multiprocessing.Process, str]:
    """`make(*args)` (a module-level function: it is sent to a spawned process) serving in a
    process of its own until it is killed; the process and the host's base URL."""
    context = multiprocessing.get_context("spawn")
    ready, port = context.Event(), context.Value("i", 0)
    process = context.Process(target=_serve_in_child, args=(make, args, ready, port), daemon=True)
    process.start()
    if not ready.wait(60):
        process.kill()
        raise RuntimeError("the picture host's process did not start")
    return process, f"http://127.0.0.1:{port.value}"


def _serve_in_child(make: Callable[..., ImageServer], args: Sequence[Any], ready: Any, port: Any) -> None:
    server = make(*args)
    port.value = server.port
    ready.set()
    threading.Event().wait()  # serves on its own thread until the process is killed
