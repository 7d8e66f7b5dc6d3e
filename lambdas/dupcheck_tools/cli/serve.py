"""`serve` and `demo`: the HTTP API on the embedded store (dupcheck_tools.local)."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dupcheck.bootstrap import build_service
from dupcheck.core.service import DupcheckService
from dupcheck.core.settings import Settings
from dupcheck_tools.cli.common import settings_for
from dupcheck_tools.exit_codes import ExitCode


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the HTTP API on the embedded store")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default DUPCHECK_PORT or 8000)")
    serve.set_defaults(run=run_serve)

    demo = commands.add_parser("demo", help="index a generated demo catalog and serve it (make run)")
    demo.set_defaults(run=run_demo)


def run_serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings_for(args, **overrides)
    # The index loads in the background (the follower, local/sync.py): the server answers at
    # once, /health says `index_ready`, and find_similar answers 503 until it is.
    return _serve(build_service(settings, load_index=False), settings)


def run_demo(args: argparse.Namespace) -> int:
    from dupcheck_tools.local.demo import build_demo, curl_examples

    # The demo's query images are served by this very server on loopback.
    settings = settings_for(args, allow_loopback_urls=True)
    service = build_service(settings)
    demo_dir = settings.data_dir / "demo"

    def announce(base_url: str) -> None:
        demo = build_demo(service, demo_dir, base_url)
        print(f"\ndupcheck demo: {demo.items} catalog images indexed, serving on {base_url}")
        print(f"Web app: {base_url}/   (check a picture, browse the catalog, see its duplicate groups)")
        print("Try:\n  " + "\n  ".join(curl_examples(demo, base_url)))
        print(f"API docs: {base_url}/docs   (Ctrl-C stops)\n", flush=True)

    return _serve(service, settings, static_dir=demo_dir, on_ready=announce)


def _serve(
    service: DupcheckService, settings: Settings, *, static_dir: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> int:  # fmt: skip
    from dupcheck_tools.local.server import LocalServer

    server = LocalServer(service, settings, static_dir=static_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start_in_thread()
    if on_ready:
        on_ready(server.url)
    else:
        print(
            f"dupcheck serving on {server.url} ({service.index.count()} hashes indexed); web app: {server.url}/",
            flush=True,
        )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return ExitCode.OK
