"""`python -m dupcheck`: serve, demo, find, add, remove, index-dir (and the batch commands).

Every command builds the same service through `bootstrap`, from the same `DUPCHECK_*`
settings as the server; errors print as the API's JSON error body and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dupcheck.bootstrap import build_service
from dupcheck.core.errors import DupcheckError
from dupcheck.core.imaging import sniff_format
from dupcheck.core.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return Settings.from_env(**overrides)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


# -- commands ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = _settings(args, **overrides)
    service = build_service(settings)
    return _serve(service, settings)


def cmd_demo(args: argparse.Namespace) -> int:
    from dupcheck_tools.local.demo import build_demo, curl_examples

    # The demo's query images are served by this very server on loopback.
    settings = _settings(args, allow_private_urls=True)
    service = build_service(settings)
    demo_dir = settings.data_dir / "demo"

    def announce(base_url: str) -> None:
        demo = build_demo(service, demo_dir, base_url)
        print(f"\ndupcheck demo: {demo.items} catalog images indexed, serving on {base_url}")
        print("Try:\n  " + "\n  ".join(curl_examples(demo, base_url)))
        print(f"API docs: {base_url}/docs   (Ctrl-C stops)\n", flush=True)

    return _serve(service, settings, static_dir=demo_dir, on_ready=announce)


def _serve(
    service: Any, settings: Settings, *, static_dir: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    from dupcheck_tools.local.server import LocalServer

    server = LocalServer(
        service, host=settings.host, port=settings.port,
        max_body_bytes=settings.max_image_bytes, static_dir=static_dir,
    )
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    thread = server.start_in_thread()
    if on_ready:
        on_ready(server.url)
    else:
        print(f"dupcheck serving on {server.url} ({service.index.count()} hashes indexed)", flush=True)
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.shutdown()
    server.server_close()
    return EXIT_OK


def cmd_find(args: argparse.Namespace) -> int:
    service = build_service(_settings(args))
    path = Path(args.image)
    if path.is_file():
        result = service.find_similar_bytes(path.read_bytes(), args.top, args.max_distance)
    else:
        result = service.find_similar(args.image, args.top, args.max_distance)
    _print_json(result.to_dict())
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    service = build_service(_settings(args))
    path = Path(args.image)
    if path.is_file():
        record = service.register_bytes(
            entity_id=args.entity_id, sku=args.sku, image_url=path.resolve().as_uri(), data=path.read_bytes()
        )
    else:
        record = service.register(args.entity_id, args.sku, args.image)
    _print_json(record.to_dict())
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    service = build_service(_settings(args))
    service.remove(args.entity_id)
    _print_json({"removed": args.entity_id})
    return EXIT_OK


def cmd_index_dir(args: argparse.Namespace) -> int:
    service = build_service(_settings(args))
    files = sorted(p for p in Path(args.directory).iterdir() if p.is_file() and not p.name.startswith("."))
    done, failed = 0, []
    for path in files:
        data = path.read_bytes()
        if sniff_format(data[:16]) is None:
            failed.append({"file": path.name, "error": "not a supported image"})
            continue
        try:
            service.register_bytes(
                entity_id=path.stem, sku=path.stem, image_url=path.resolve().as_uri(), data=data
            )
            done += 1
        except DupcheckError as exc:
            failed.append({"file": path.name, "error": exc.message})
    _print_json({"indexed": done, "failed": failed})
    return EXIT_OK if not failed else EXIT_FAILED


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dupcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="embedded store folder (default: DUPCHECK_DATA_DIR or ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests and progress")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the HTTP API on the embedded store")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default DUPCHECK_PORT or 8000)")
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="index a generated demo catalog and serve it (make run)")
    demo.set_defaults(run=cmd_demo)

    find = commands.add_parser("find", help="find catalog images similar to one URL or file; prints JSON")
    find.add_argument("image", help="an image URL or a local file")
    find.add_argument("--top", type=int, default=None, help="how many matches (1-100, default 5)")
    find.add_argument("--max-distance", type=int, default=None, help="drop matches farther than this")
    find.set_defaults(run=cmd_find)

    add = commands.add_parser("add", help="register one catalog image (URL or file)")
    add.add_argument("--entity-id", required=True)
    add.add_argument("--sku", default="")
    add.add_argument("image", help="an image URL or a local file")
    add.set_defaults(run=cmd_add)

    remove = commands.add_parser("remove", help="remove one catalog image")
    remove.add_argument("entity_id")
    remove.set_defaults(run=cmd_remove)

    index_dir = commands.add_parser("index-dir", help="register every image in a folder (entity_id = file stem)")
    index_dir.add_argument("directory")
    index_dir.set_defaults(run=cmd_index_dir)

    for name, module_name in EXTRA_COMMANDS:
        module = __import__(module_name, fromlist=["add_arguments"])
        sub = commands.add_parser(name, help=module.__doc__.splitlines()[0] if module.__doc__ else name)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


# Batch commands live in their own modules: (command, module with add_arguments() and run()).
EXTRA_COMMANDS: list[tuple[str, str]] = [
    ("backfill", "dupcheck_tools.backfill"),
    ("reindex", "dupcheck_tools.reindex"),
    ("evaluate", "dupcheck_tools.evaluation"),
]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(json.dumps({"error": {"code": "invalid_settings", "message": str(exc)}}), file=sys.stderr)
        return EXIT_USAGE
    except DupcheckError as exc:
        print(json.dumps(exc.to_body()), file=sys.stderr)
        return EXIT_FAILED
