"""One picture, one record, over the local server's HTTP API (docs/api.md, "The duplicate gate").

Many writers at once, as a shop is: eight clients register one new picture in the same moment by
every way in (POST /items, PUT /items/{id} with an address, an upload whose picture the service
keeps, an import job racing POSTs); a delete of a kept image racing the writes that name it; a
job whose pictures age past the sweep; decisions that settle one group two opposite ways at once.
Each round is a new picture, so rounds are independent; each asserts what must hold whatever the
interleaving (one record; the refused writes name it), never a timing.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.local.server import LocalServer
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer
from support.catalogs import EDIT_SEEDS, edited_copies
from support.concurrency import at_once
from support.http import call, wait_for

ROUNDS = 20
WRITERS = 8


@pytest.fixture
def server(settings: Settings) -> Iterator[LocalServer]:
    config = settings.model_copy(update={"port": 0})
    srv = LocalServer(build_service(config), config)
    srv.start_in_thread()
    yield srv
    srv.shutdown()


def done(status_url: str) -> dict:
    """An import job once it is done."""
    return wait_for(lambda: (job := call(status_url)[1])["status"] == "done" and job, timeout=90)  # type: ignore[no-any-return]


def records_named(server: LocalServer, prefix: str) -> list[str]:
    return sorted(r.entity_id for r in server.service.parts.store.scan() if r.entity_id.startswith(prefix))


def one_stored(server: LocalServer, prefix: str, answers: list[tuple[int, Any, Any]]) -> str:
    """Exactly one write stored; every other answered 409 duplicate_image naming it. The id stored."""
    (stored,) = records_named(server, prefix)
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201] + [409] * (len(answers) - 1), [(s, b) for s, b, _ in answers]
    for status, body, _ in answers:
        if status == 409:
            assert body["error"]["code"] == "duplicate_image", body
            assert stored in body["error"]["message"], body
    return stored


def register_json(server: LocalServer, entity_id: str, url: str, policy: str = "reject") -> Callable[[], Any]:
    item = json.dumps({"entity_id": entity_id, "sku": "", "image_url": url}).encode()
    return lambda: call(f"{server.url}/items?on_duplicate={policy}", "POST", item, "application/json")


def put_upload(server: LocalServer, entity_id: str, data: bytes, image_url: str = "") -> Callable[[], Any]:
    query = f"on_duplicate=reject&image_url={image_url}" if image_url else "on_duplicate=reject"
    return lambda: call(f"{server.url}/items/{entity_id}?{query}", "PUT", data, "image/jpeg")


@pytest.mark.parametrize("way", ["post", "put_with_address", "upload_kept"])
def test_eight_writes_of_one_new_picture_at_once_store_one_record(
    server: LocalServer, image_server: ImageServer, way: str
) -> None:
    for round_ in range(ROUNDS):
        data = encode(product_image(2000 + round_))
        url = image_server.add(f"/{way}/{round_}.jpg", data)
        prefix = f"{way}-{round_}-"
        if way == "post":
            calls = [register_json(server, f"{prefix}{i}", url) for i in range(WRITERS)]
        elif way == "put_with_address":
            calls = [put_upload(server, f"{prefix}{i}", data, url) for i in range(WRITERS)]
        else:
            calls = [put_upload(server, f"{prefix}{i}", data) for i in range(WRITERS)]
        one_stored(server, prefix, at_once(calls))
    if way == "upload_kept":  # refused uploads kept nothing: one picture a round, the stored record's
        assert len(list((server.import_worker.settings.data_dir / "images").glob("??/*.jpg"))) == ROUNDS


def test_eight_different_edits_of_one_picture_at_once_store_one_record(
    server: LocalServer, image_server: ImageServer
) -> None:
    for round_ in range(ROUNDS):
        copies = edited_copies(EDIT_SEEDS[round_ % len(EDIT_SEEDS)])
        turn = round_ % len(copies)
        copies = copies[turn:] + copies[:turn]  # another copy claims first
        prefix = f"edit-{round_}-"
        urls = [image_server.add(f"/edit/{round_}/{i}.jpg", encode(c)) for i, c in enumerate(copies)]
        stored = one_stored(server, prefix, at_once([register_json(server, f"{prefix}{i}", u)
                                                     for i, u in enumerate(urls)]))  # fmt: skip
        call(f"{server.url}/items/{stored}", "DELETE")  # the next round of the same picture starts afresh


def test_an_import_with_skip_racing_four_posts_stores_one_record(
    server: LocalServer, image_server: ImageServer
) -> None:
    for round_ in range(ROUNDS):
        data = encode(product_image(3000 + round_))
        prefix = f"imp-{round_}-"
        rows = [(f"{prefix}row{i}", "", image_server.add(f"/imp/{round_}/{i}.jpg", data)) for i in range(5)]
        body = ("entity_id,sku,image_url\n" + "".join(",".join(r) + "\n" for r in rows)).encode()
        posts = [register_json(server, f"{prefix}post{i}", image_server.add(f"/imp/{round_}/p{i}.jpg", data))
                 for i in range(4)]  # fmt: skip
        imported = lambda body=body: call(f"{server.url}/imports?on_duplicate=skip", "POST", body, "text/csv")  # noqa: E731
        answers = at_once([imported, *posts])
        job = done(answers[0][1]["status_url"])
        (stored,) = records_named(server, prefix)
        refused = [a for a in answers[1:] if a[0] == 409]
        assert all(stored in body["error"]["message"] for _, body, _ in refused)
        assert job["done"] + len(answers) - 1 - len(refused) == 1  # one write of all nine was stored
        assert job["skipped"] == 5 - job["done"] and job["failed"] == 0


# -- a server killed mid-write: what its writes in flight leave ---------------------------------------------


def pending_claims(data_dir: Path) -> int:
    """The gate's claims still pending in the records' file, read from outside the server."""
    with closing(sqlite3.connect(f"file:{data_dir / 'dupcheck.sqlite3'}?mode=ro", uri=True, timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM claims WHERE state = 'pending'").fetchone()[0])


def put_warn(url: str, entity_id: str, data: bytes) -> Callable[[], Any]:
    return lambda: call(f"{url}/items/{entity_id}?on_duplicate=warn", "PUT", data, "image/jpeg")


def test_a_server_killed_three_times_during_eight_warns_leaves_no_claim_and_no_answer_names_a_lost_write(
    tmp_path: Path,
) -> None:
    """kill -9 while eight `warn` uploads of one picture are in flight (some claimed, not committed),
    three times, a picture each; started again, eight `warn` uploads of the three pictures at once
    name only records GET /items finds, and no claim is left pending."""
    from support.serving import kill, serve_process

    data_dir = tmp_path / "data"
    pictures = [encode(product_image(9100 + n)) for n in range(3)]
    left = []
    for crash, data in enumerate(pictures):
        proc, url = serve_process(data_dir)
        writers = threading.Thread(target=at_once, args=([put_warn(url, f"crash{crash}-{i}", data)
                                                          for i in range(WRITERS)],))  # fmt: skip
        try:
            writers.start()
            wait_for(lambda: pending_claims(data_dir) > 0, timeout=60, every=0.002)
        finally:
            kill(proc)  # kill -9, with writes claimed and not committed
            writers.join()
        left.append(pending_claims(data_dir))
    assert any(left), left  # the crashes left claims their writers never committed

    proc, url = serve_process(data_dir)
    try:
        after_start = pending_claims(data_dir)  # cleared as the server opened the claims
        answers = at_once([put_warn(url, f"after-{i}", pictures[i % 3]) for i in range(WRITERS)])
        assert [status for status, _, _ in answers] == [201] * WRITERS, answers
        named = [match["entity_id"] for _, body, _ in answers for match in body["duplicates"]]
        missing = sorted({entity_id for entity_id in named if call(f"{url}/items/{entity_id}")[0] == 404})
        after = pending_claims(data_dir)
    finally:
        kill(proc)
    assert named and missing == [], missing  # every id a warn named is stored
    assert (after_start, after) == (0, 0)


# -- kept images: a delete, a sweep and a job's wait against the writes that name them -------------------


def keep(server: LocalServer, seed: int) -> str:
    status, kept, _ = call(f"{server.url}/images", "POST", encode(product_image(seed)), "image/jpeg")
    assert status == 201, kept
    return str(kept["image_url"])


@pytest.mark.parametrize("way", ["post", "put_with_address", "import"])
def test_a_delete_racing_a_write_never_leaves_a_record_whose_picture_is_gone(server: LocalServer, way: str) -> None:
    chance = random.Random(73)
    acknowledged = 0
    for round_ in range(30):
        url = keep(server, 4000 + round_)
        name, entity_id = url.rsplit("/", 1)[1], f"del-{way}-{round_}"
        if way == "post":
            write = register_json(server, entity_id, url, policy="allow")
        elif way == "put_with_address":
            write = put_upload(server, entity_id, encode(product_image(4000 + round_)), url)
        else:
            body = f"entity_id,sku,image_url\n{entity_id},,{url}\n".encode()
            write = lambda body=body: call(f"{server.url}/imports?on_duplicate=allow", "POST", body, "text/csv")  # noqa: E731
        delay = chance.uniform(0, 0.25)

        def delete(name: str = name, delay: float = delay) -> Any:
            time.sleep(delay)
            return call(f"{server.url}/images/{name}", "DELETE")

        written, deleted = at_once([write, delete])
        if way == "import":
            job = done(written[1]["status_url"])
            stored = job["done"] == 1
            if not stored:  # refused for its own reason: its picture was gone
                failures = call(job["failures_url"])[1]["failures"]
                assert [f["code"] for f in failures] in (["kept_image_gone"], ["url_not_allowed"]), failures
        else:
            stored = written[0] in (200, 201)
            if not stored:
                assert written[1]["error"]["code"] == "kept_image_gone", written
        if stored:
            acknowledged += 1
            record = call(f"{server.url}/items/{entity_id}")[1]
            assert call(record["image_url"])[0] == 200, (round_, deleted)  # its picture is there
            assert deleted[0] == 409  # so the delete was refused
        else:
            assert deleted[0] == 204 and call(url)[0] == 404
    assert acknowledged  # the race went both ways in 30 rounds, or the test proves nothing


def test_the_sweep_racing_writes_never_takes_a_picture_a_record_names(server: LocalServer) -> None:
    kept = server.service.parts.kept
    assert kept is not None
    for round_ in range(30):
        url = keep(server, 5000 + round_)
        at_once([register_json(server, f"sweep-{round_}", url, policy="allow"), lambda: kept.sweep(older_than_s=0)])
        status, record, _ = call(f"{server.url}/items/sweep-{round_}")
        if status == 200:
            assert call(record["image_url"])[0] == 200
        else:
            assert call(url)[0] == 404  # swept first: the write said so (kept_image_gone)


def test_a_job_resumed_after_its_pictures_are_two_days_old_fails_no_row(
    settings: Settings, image_server: ImageServer, tmp_path: Path
) -> None:
    """150 kept images named by an import; the server killed mid-job; the pictures two days old (a
    weekend) before it starts again: the sweep leaves them, held by the job, and every row is stored."""
    from support.serving import kill, serve_process

    data_dir = tmp_path / "data"
    proc, url = serve_process(data_dir)
    try:
        pictures = []
        for i in range(150):
            status, kept, _ = call(f"{url}/images", "POST", encode(product_image(6000 + i, (160, 120))), "image/jpeg")
            assert status == 201
            pictures.append(kept["image_url"])
        body = "entity_id,sku,image_url\n" + "".join(f"K{i},,{u}\n" for i, u in enumerate(pictures))
        image_server.delay = 0.02
        status, job, _ = call(f"{url}/imports?on_duplicate=allow", "POST", body.encode(), "text/csv")
        assert status == 202
        wait_for(lambda: call(job["status_url"])[1]["done"] >= 20, timeout=120)
    finally:
        kill(proc)
    old = time.time() - 2 * 86400
    for picture in (data_dir / "images").glob("??/*"):
        os.utime(picture, (old, old))
    proc, url = serve_process(data_dir)
    try:
        resumed = done(f"{url}/imports/{job['job_id']}")
        assert (resumed["done"], resumed["failed"]) == (150, 0)
        for picture in pictures[::15]:
            assert call(picture.replace(picture.split("/images/")[0], url))[0] == 200
    finally:
        kill(proc)


# -- decisions on one group, two opposite ways at once -----------------------------------------------------


def test_two_opposite_keep_decisions_at_once_leave_one_record(server: LocalServer) -> None:
    for round_ in range(30):
        x, y = f"keep-{round_}-x", f"keep-{round_}-y"
        for entity_id, seed in ((x, 7000 + round_), (y, 7000 + round_)):
            status, _, _ = call(f"{server.url}/items/{entity_id}?on_duplicate=allow&image_url=https://shop.test/"
                                f"{entity_id}.jpg", "PUT", encode(product_image(seed)), "image/jpeg")  # fmt: skip
            assert status == 201

        def keep_one(item: str, other: str) -> Callable[[], Any]:
            body = {"decision": "keep", "item": item, "others": [other], "remove_others": True}
            return lambda: call(f"{server.url}/duplicates/decisions", "POST", body)

        answers = at_once([keep_one(x, y), keep_one(y, x)])
        left = records_named(server, f"keep-{round_}-")
        assert len(left) == 1, (left, answers)
        # The other found its record gone: when it read it (404) or when it removed (409); it removed nothing.
        statuses = sorted(a[0] for a in answers)
        assert statuses in ([201, 404], [201, 409]), answers
        refused = next(body for status, body, _ in answers if status != 201)
        assert "in the catalog" in refused["error"]["message"], refused
        listed = call(f"{server.url}/duplicates/decisions?limit=500")[1]["decisions"]
        assert sum(1 for d in listed if d["item"] in (x, y)) == 1  # the refused one is not listed


def test_a_keep_decision_racing_seven_registrations_of_what_it_removes_removes_only_what_it_read(
    server: LocalServer,
) -> None:
    """Eight callers at once, rounds: a keep decision removing seven records, and seven writes each
    registering one of them again with another picture. The decision holds the ids' locks from its
    read to its removal, so each write lands before the read (removed, and its undo brings it
    back) or after the removal (the undo leaves it): after the undo every id holds its new write."""
    for round_ in range(8):
        prefix = f"race-{round_}-"
        keep, others = f"{prefix}k", [f"{prefix}{i}" for i in range(WRITERS - 1)]
        old, new = encode(product_image(7100 + round_)), encode(product_image(7200 + round_))
        for entity_id in (keep, *others):
            status, _, _ = call(f"{server.url}/items/{entity_id}?on_duplicate=allow&image_url=https://shop.test/"
                                f"{entity_id}.jpg", "PUT", old, "image/jpeg")  # fmt: skip
            assert status == 201

        body = {"decision": "keep", "item": keep, "others": others, "remove_others": True}
        again = [partial(call, f"{server.url}/items/{e}?on_duplicate=allow&image_url=https://shop.test/{e}-new.jpg",
                         "PUT", new, "image/jpeg") for e in others]  # fmt: skip
        answers = at_once([partial(call, f"{server.url}/duplicates/decisions", "POST", body), *again])
        assert [a[0] for a in answers] == [201] * WRITERS, answers
        status, undone, _ = call(f"{answers[0][1]['decision_url']}/undo", "POST")
        assert status == 200, undone
        urls = [call(f"{server.url}/items/{entity_id}")[1]["image_url"] for entity_id in others]
        assert urls == [f"https://shop.test/{entity_id}-new.jpg" for entity_id in others], (undone, urls)


def test_undo_of_a_keep_restores_the_record_with_its_picture(server: LocalServer) -> None:
    data = encode(product_image(7777))
    kx = call(f"{server.url}/items/kx?on_duplicate=allow", "PUT", data, "image/jpeg")[1]
    ky = call(f"{server.url}/items/ky?on_duplicate=allow", "PUT", encode(product_image(7778)), "image/jpeg")[1]
    assert kx["image_url"] != ky["image_url"]
    body = {"decision": "keep", "item": "kx", "others": ["ky"], "remove_others": True}
    status, decision, _ = call(f"{server.url}/duplicates/decisions", "POST", body)
    assert status == 201 and decision["removed"] == ["ky"]
    assert call(f"{server.url}/items/ky")[0] == 404
    server.service.parts.kept.sweep(older_than_s=0)  # type: ignore[union-attr]  # held for the decision: not swept
    assert call(ky["image_url"])[0] == 200
    status, undone, _ = call(f"{decision['decision_url']}/undo", "POST")
    assert status == 200 and undone["restored"] == ["ky"]
    restored = call(f"{server.url}/items/ky")[1]
    assert restored["image_url"] == ky["image_url"] and call(restored["image_url"])[0] == 200
