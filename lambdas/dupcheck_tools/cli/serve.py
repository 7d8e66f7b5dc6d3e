"""`serve` and `demo`: the HTTP API on the embedded store (dupcheck_tools.local)."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.ports import LoadingIndex
from dupcheck.core.settings import Settings
from dupcheck_tools.cli.common import UsageError, int_between, settings_for
from dupcheck_tools.exit_codes import ExitCode

if TYPE_CHECKING:
    from dupcheck_tools.local.sync import IndexFollower

DEMO_DATA_DIR = Path("demo-data")  # `make run`'s store: not ./data, the one a shop's catalog goes to


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="serve the HTTP API and the web app on the embedded store",
        description="Serves the API (docs/api.md) and the web app at http://HOST:PORT/ over the embedded store "
        "in --data-dir, until Ctrl-C. It answers at once; the index loads in the background (GET /health says "
        "index_ready; find_similar answers 503 until then). Other processes' writes to the same store (add, "
        "backfill) are searchable within a second.",
    )  # fmt: skip
    _address_arguments(serve)
    serve.set_defaults(run=run_serve)

    demo = commands.add_parser(
        "demo", help="index a generated demo catalog in a store of its own and serve it (make run)",
        description="Generates a demo catalog (26 product pictures, two of them copies) into a store of its own, "
        f"{DEMO_DATA_DIR}/ (or --data-dir; never DUPCHECK_DATA_DIR, the store serve, add and backfill use), "
        "indexes it, writes its duplicate report and serves it with the web app, printing curl commands that "
        "find a duplicate and a new product. What `make run` runs; Ctrl-C stops.",
    )  # fmt: skip
    _address_arguments(demo)
    demo.set_defaults(run=run_demo)


def _address_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default DUPCHECK_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int_between(0, 65535), help="port (default DUPCHECK_PORT or 8000; 0: any free)")


def _address(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}


def run_serve(args: argparse.Namespace) -> int:
    from dupcheck_tools.local.sync import IndexFollower

    settings = settings_for(args, **_address(args))
    # The index loads in the background (the follower, local/sync.py): the server answers at
    # once, /health says `index_ready`, and find_similar answers 503 until it is. It starts
    # loading now, while the server's own modules are imported (the HTTP API's, ~0.5 s).
    service = build_service(settings, load_index=False)
    follower = IndexFollower.for_service(service)
    if follower is not None:
        follower.start()
    return _serve(service, settings, follower=follower)


def demo_settings(args: argparse.Namespace) -> Settings:
    """The demo's settings: its own store (DEMO_DATA_DIR, or --data-dir), never DUPCHECK_DATA_DIR's;
    loopback URLs allowed, as its query images are served by this very server."""
    return settings_for(args, allow_loopback_urls=True, **_address(args),
                        **({} if args.data_dir else {"data_dir": DEMO_DATA_DIR}))  # fmt: skip


def check_demo_store(service: DupcheckService, data_dir: Path) -> None:
    """Refuse a store that holds records besides the demo's: the demo would add 26 to a real catalog."""
    from dupcheck_tools.local.demo import DEMO_IDS

    others = service.parts.store.count() - len(service.parts.store.get_many(list(DEMO_IDS)))
    if others > 0:
        raise UsageError(f"{data_dir} holds {others:,} records besides the demo's: the demo adds its 26 to the store "
                         f"it runs on; give it a folder of its own (--data-dir, default {DEMO_DATA_DIR})")  # fmt: skip


def run_demo(args: argparse.Namespace) -> int:
    from dupcheck_tools.local.demo import build_demo, curl_examples

    settings = demo_settings(args)
    service = build_service(settings)
    check_demo_store(service, settings.data_dir)
    demo_dir = settings.data_dir / "demo"

    def announce(base_url: str) -> None:
        demo = build_demo(service, demo_dir, base_url)
        print(
            f"\ndupcheck demo: {demo.items} catalog images indexed in {settings.data_dir}/ (a store of its own: "
            f"`serve`, `add` and `backfill` use {Settings.from_env().data_dir}/), serving on {base_url}"
        )
        print(f"Web app: {base_url}/   (check a picture, browse the catalog, see its duplicate groups)")
        print("Try:\n  " + "\n  ".join(curl_examples(demo, base_url)))
        print(f"API docs: {base_url}/docs   (Ctrl-C stops)\n", flush=True)

    return _serve(service, settings, static_dir=demo_dir, on_ready=announce)


def _serve(
    service: DupcheckService, settings: Settings, *, static_dir: Path | None = None,
    on_ready: Callable[[str], None] | None = None, follower: IndexFollower | None = None,
) -> int:  # fmt: skip
    from dupcheck_tools.local.server import LocalServer

    try:
        server = LocalServer(service, settings, static_dir=static_dir, follower=follower)
    except OSError as exc:
        raise UsageError(cannot_listen(settings, exc)) from exc
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        """SIGTERM (systemd's stop) or SIGINT (Ctrl-C, sent to the whole process group; the pool
        processes ignore both): stop cleanly; a second one leaves at once, which is safe too:
        the next start resumes whatever was running, as after a kill -9."""
        if stop.is_set():
            os._exit(ExitCode.INTERRUPTED)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start_in_thread()
    loading = index_loading(service)
    if on_ready:
        on_ready(server.url)
    else:
        print(serving_line(service, server.url, loading=loading), flush=True)
    while not stop.wait(0.5):
        if loading and not index_loading(service):
            loading = False
            print(f"index ready: {service.parts.index.count():,} hashes indexed", flush=True)
    print("stopping: jobs and scans left running resume at the next start", flush=True)
    server.shutdown()
    return ExitCode.OK


def index_loading(service: DupcheckService) -> bool:
    return isinstance(service.parts.index, LoadingIndex) and not service.parts.index.ready


def serving_line(service: DupcheckService, url: str, *, loading: bool) -> str:
    """What `serve` says once it listens: the index's count, or that it is still loading it."""
    if loading:
        records = service.parts.store.approximate_count()
        return (f"dupcheck serving on {url} (loading the index of {records:,} records; GET /health says when it is "
                f"ready); web app: {url}/")  # fmt: skip
    return f"dupcheck serving on {url} ({service.parts.index.count():,} hashes indexed); web app: {url}/"


def cannot_listen(settings: Settings, exc: OSError) -> str:
    """Why the server cannot listen where it was asked to, and what to do, in one sentence."""
    where = f"{settings.host}:{settings.port}"
    other = f"--port {settings.port + 1 if 0 < settings.port < 65535 else 8001}"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot serve on {where}: the port is in use (another dupcheck server?); stop that server, or "
                f"choose another port: {other}, or DUPCHECK_PORT={settings.port + 1} make run")  # fmt: skip
    if exc.errno == errno.EACCES:
        return f"cannot serve on {where}: this user may not use port {settings.port}; choose one above 1023: {other}"
    return (f"cannot serve on {where}: {exc.strerror or exc}; check --host (DUPCHECK_HOST) names an address "
            "of this machine")  # fmt: skip
