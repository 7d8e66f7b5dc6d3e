"""`find`, `add`, `remove` and `index-dir`: one image or one folder, through the same service as
the server (same settings, same store)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from dupcheck.bootstrap import build_kept_image_lifecycle, build_service
from dupcheck.core.catalog.gate import policy_of
from dupcheck.core.catalog.kept_images import KeptImageLifecycle
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import DupcheckError
from dupcheck.core.models import DEFAULT_POLICY, ITEM_POLICIES, MAX_TOP, Match, policies_meaning
from dupcheck.core.pictures.imaging import sniff_format
from dupcheck.core.settings import Settings
from dupcheck_tools.cli.common import (
    UsageError,
    add_marks_argument,
    int_between,
    print_json,
    settings_for,
    show_progress,
)
from dupcheck_tools.exit_codes import ExitCode

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    find = commands.add_parser("find", help="find catalog images similar to one URL or file; prints JSON")
    find.add_argument("image", help="an image URL or a local file")
    find.add_argument("--top", type=int_between(1, MAX_TOP), default=None, metavar="N",
                      help=f"how many matches (1-{MAX_TOP}, default 5)")  # fmt: skip
    find.add_argument("--max-distance", type=int_between(0, 64), default=None, metavar="BITS",
                      help="drop matches whose hash distance is larger (0-64)")  # fmt: skip
    add_marks_argument(find)
    find.set_defaults(run=run_find)

    add = commands.add_parser("add", help="register one catalog image (URL or file)")
    add.add_argument("--entity-id", required=True)
    add.add_argument("--sku", default="")
    add.add_argument("image", help="an image URL or a local file")
    add.add_argument("--features", action="store_true", help="also print the stored verification views (~5 KB)")
    add.add_argument("--base-url", default=None, metavar="URL",
                     help="the API's address, where a file's kept image is served (default: the server running "
                     "on the data dir, else http://DUPCHECK_HOST:DUPCHECK_PORT, 127.0.0.1:8000)")  # fmt: skip
    add.add_argument("--on-duplicate", choices=[p.value for p in ITEM_POLICIES], default=None,
                     help=f"the duplicate gate: {policies_meaning(ITEM_POLICIES)}; a refused picture exits 1; "
                     f"default DUPCHECK_ON_DUPLICATE, {DEFAULT_POLICY.value}")  # fmt: skip
    add_marks_argument(add)
    add.set_defaults(run=run_add)

    remove = commands.add_parser("remove", help="remove one catalog image")
    remove.add_argument("entity_id")
    remove.set_defaults(run=run_remove)

    index_dir = commands.add_parser(
        "index-dir", help="register every image in a folder (entity_id = file stem), each checked for duplicates",
        description="Registers every picture of a folder as `add` does a file (its picture kept, entity_id and SKU "
        "the file's stem), each through the duplicate gate. Prints {indexed, duplicates, failed, base_url}: "
        "`duplicates` lists each file stored although the catalog already held its picture, with the ids it "
        "duplicates. Exit 0: every picture registered, 1: some failed (or, with reject, were refused).",
    )  # fmt: skip
    index_dir.add_argument("directory")
    index_dir.add_argument("--on-duplicate", choices=[p.value for p in ITEM_POLICIES], default=None,
                           help=f"the duplicate gate: {policies_meaning(ITEM_POLICIES)}; a refused picture is listed "
                           f"in failed; default DUPCHECK_ON_DUPLICATE, {DEFAULT_POLICY.value}")  # fmt: skip
    add_marks_argument(index_dir)
    index_dir.add_argument("--base-url", default=None, metavar="URL",
                           help="the API's address, where the kept images are served (default: the server "
                           "running on the data dir, else http://DUPCHECK_HOST:DUPCHECK_PORT)")  # fmt: skip
    index_dir.add_argument(
        "--no-progress", action="store_true", help="no progress bar on stderr (there is none when it is not a terminal)"
    )
    index_dir.set_defaults(run=run_index_dir)


def local_file(image: str) -> Path | None:
    """The file `image` names, None for an http(s) URL; anything else is a usage error (a missing
    file must not be reported as a URL with a scheme dupcheck refuses)."""
    path = Path(image)
    if path.is_file():
        return path
    if urlsplit(image).scheme.lower() in ("http", "https"):
        return None
    if path.exists():
        raise UsageError(f"not a file: {image}")
    raise UsageError(f"no such file: {image} (give an image file or an http(s) URL)")


def run_find(args: argparse.Namespace) -> int:
    path = local_file(args.image)
    service = build_service(settings_for(args))
    if path is not None:
        result = service.lookups.find_similar_bytes(path.read_bytes(), args.top, args.max_distance)
    else:
        result = service.lookups.find_similar(args.image, args.top, args.max_distance)
    print_json(result.to_dict())
    return ExitCode.OK


def run_add(args: argparse.Namespace) -> int:
    path = local_file(args.image)
    settings = settings_for(args)
    service = build_service(settings)
    policy = policy_of(args.on_duplicate, service.parts.on_duplicate)
    if path is not None:  # a file has no address: its picture is kept, as an upload's is
        pictures = kept_pictures_for(service, settings)
        done = service.registrar.register_kept(
            entity_id=args.entity_id,
            sku=args.sku,
            data=path.read_bytes(),
            pictures=pictures,
            base_url=kept_base(args, settings),
            on_duplicate=policy,
        )
    else:
        done = service.registrar.register_url_checked(args.entity_id, args.sku, args.image, on_duplicate=policy)
    # Imported here: the API package (Powertools and its OpenAPI models) was about half of every
    # command's start, backfill's included, and only this command prints the API's item body.
    from dupcheck.api.schemas import RegisteredOut

    out = RegisteredOut.of_registration(done).model_dump()
    if args.features:
        out["features"] = done.record.to_dict()["features"]
    print_json(out)
    return ExitCode.OK


def kept_pictures_for(service: DupcheckService, settings: Settings) -> KeptImageLifecycle:
    pictures = service.parts.kept or build_kept_image_lifecycle(settings, service.parts.store)
    if pictures is None:
        raise UsageError("this store keeps no pictures (on AWS: the stack's imports bucket, DUPCHECK_IMPORTS_BUCKET):"
                         " give the picture's published address instead of a file")  # fmt: skip
    return pictures


def kept_base(args: argparse.Namespace, settings: Settings) -> str:
    """Where the kept images of `add FILE` and `index-dir` are served, which their records'
    image_url start with: --base-url, else the server running on the data dir (it records where
    it answers: local/address.py), else DUPCHECK_HOST:DUPCHECK_PORT, which a terminal is told."""
    from dupcheck_tools.local.address import base_url, running_server

    if args.base_url:
        return str(args.base_url)
    if running := running_server(settings.data_dir):
        return running
    guess = base_url(settings.host, settings.port or 8000)
    if sys.stderr.isatty():
        print(f"note: no dupcheck server is running on {settings.data_dir}: the kept images' address is "
              f"{guess}/images/... (DUPCHECK_HOST, DUPCHECK_PORT); serve them there, or give --base-url with the "
              "address your server answers at", file=sys.stderr, flush=True)  # fmt: skip
    return guess


def run_remove(args: argparse.Namespace) -> int:
    service = build_service(settings_for(args))
    service.records.remove(args.entity_id)
    print_json({"removed": args.entity_id})
    return ExitCode.OK


def run_index_dir(args: argparse.Namespace) -> int:
    folder = Path(args.directory)
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}" if not folder.exists() else f"not a folder: {folder}")
    settings = settings_for(args)
    service = build_service(settings)
    pictures, base = kept_pictures_for(service, settings), kept_base(args, settings)
    policy = policy_of(args.on_duplicate, service.parts.on_duplicate)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    done, duplicates, failed = 0, [], []
    for path in tqdm(files, unit="img", disable=not show_progress(args), dynamic_ncols=True):
        data = path.read_bytes()
        if sniff_format(data[:16]) is None:
            failed.append({"file": path.name, "error": "not a supported image"})
            continue
        try:
            registered = service.registrar.register_kept(
                entity_id=path.stem, sku=path.stem, data=data, pictures=pictures, base_url=base, on_duplicate=policy
            )
        except DupcheckError as exc:  # a refused duplicate (reject) too: its message names what it duplicates
            failed.append({"file": path.name, "error": exc.message})
            continue
        done += 1
        if registered.duplicates:
            duplicates.append(duplicate_line(path.name, path.stem, registered.duplicates))
        log.info("indexed %s (%d of %d)", path.name, done + len(failed), len(files))
    print_json({"indexed": done, "duplicates": duplicates, "failed": failed, "on_duplicate": policy.value,
                "base_url": base})  # fmt: skip
    return ExitCode.OK if not failed else ExitCode.FAILED


def duplicate_line(name: str, entity_id: str, matches: Sequence[Match]) -> dict[str, Any]:
    """A file stored although the catalog held its picture: the ids it duplicates, the best first,
    and how the best differs ("mirrored", "no visible edit")."""
    best = matches[0]
    return {"file": name, "entity_id": entity_id, "duplicate_of": [m.entity_id for m in matches],
            "match_percent": best.match_percent, "edit": best.edit_summary or ""}  # fmt: skip
