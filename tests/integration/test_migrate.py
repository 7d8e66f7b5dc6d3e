"""`python -m dupcheck migrate` from the prototype's hash_store: old-shape items (absolute and
relative URLs, a dead URL, a non-image, a picture changed since), read from a moto table or an
export file, written to both targets, and resumed after an interruption.

Images come from the loopback image server; AWS is moto (in process, or a moto server on
127.0.0.1 that a subprocess reaches through AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import imagehash
import pytest
from PIL import Image

from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore, create_table
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.core.fingerprint.hashing import DEFAULT_ALGO
from dupcheck.core.models import HashValue
from dupcheck_tools.cli import main
from dupcheck_tools.exit_codes import ExitCode
from dupcheck_tools.migrate import prototype_phash
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer
from support.aws import REGION, TABLE

OLD_TABLE = "hash_store"


def old_phash(data: bytes) -> str:
    """The prototype's recipe, written with imagehash itself: fit into a 512 px white square, pHash."""
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    picture.thumbnail((512, 512))
    canvas = Image.new("RGB", (512, 512), "white")
    canvas.paste(picture, ((512 - picture.width) // 2, (512 - picture.height) // 2))
    return str(imagehash.phash(canvas))


def old_items(server: ImageServer, n: int = 3) -> list[dict[str, str]]:
    """hash_store items as the prototype wrote them: n good ones (alternately absolute and relative
    to the media base), one whose picture changed since, a dead URL and a non-image."""
    items = []
    for i in range(n):
        server.image(f"/media/catalog/product/p/{i}.jpg", seed=100 + i)
        path = f"/p/{i}.jpg"
        items.append({
            "entity_id": str(1000 + i), "sku": f"MH{i:02d}",
            "small_image": path if i % 2 else server.base_url + "/media/catalog/product" + path,
            "phash": old_phash(server.routes["/media/catalog/product" + path].body),
        })  # fmt: skip
    server.image("/media/catalog/product/new.jpg", seed=200)
    before = encode(product_image(201, (320, 240)))  # what the prototype hashed, long replaced
    server.add("/media/catalog/product/text.txt", b"not a picture", content_type="text/plain")
    items += [
        {"entity_id": "2000", "sku": "CHANGED", "small_image": "/new.jpg", "phash": old_phash(before)},
        {"entity_id": "2001", "sku": "DEAD", "small_image": "/gone.jpg", "phash": "0" * 16},
        {"entity_id": "2002", "sku": "TEXT", "small_image": "/text.txt", "phash": "0" * 16},
    ]
    return items


def create_old_table(client: Any) -> None:
    """The prototype's table: keyed by entity_id, no stream."""
    client.create_table(
        TableName=OLD_TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "entity_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "entity_id", "KeyType": "HASH"}],
    )  # fmt: skip


def as_dynamodb_json(item: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"S": value} for name, value in item.items()}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DUPCHECK_ALLOW_LOOPBACK_URLS", "true")
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # a table's failures file goes to the working folder
    return tmp_path / "data"


@pytest.fixture
def old_table(ddb_client: Any, image_server: ImageServer) -> list[dict[str, str]]:
    """The prototype's table in moto, with old-shape items."""
    create_old_table(ddb_client)
    items = old_items(image_server)
    for item in items:
        ddb_client.put_item(TableName=OLD_TABLE, Item=as_dynamodb_json(item))
    return items


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["migrate", "--hash-workers", "-1", "--workers", "4", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def check_first_run(code: int, summary: dict[str, Any], failures: Path) -> None:
    assert code == ExitCode.FAILED
    assert {k: summary[k] for k in ("rows", "done", "failed", "skipped", "phash_compared", "picture_changed")} == {
        "rows": 6, "done": 4, "failed": 2, "skipped": 0, "phash_compared": 4, "picture_changed": 1,
    }  # fmt: skip
    assert summary["hash_algo"] == DEFAULT_ALGO and summary["failures_file"] == str(failures)
    reasons = {line.split(",")[1]: line.split(",")[3] for line in failures.read_text().splitlines()[1:]}
    assert reasons == {"2001": "image_unreachable", "2002": "unsupported_media_type"}


def check_records(records: dict[str, Any], server: ImageServer) -> None:
    base = server.base_url + "/media/catalog/product"
    assert {e: (r.sku, r.image_url, r.hash_algo) for e, r in records.items()} == {
        "1000": ("MH00", base + "/p/0.jpg", DEFAULT_ALGO),
        "1001": ("MH01", base + "/p/1.jpg", DEFAULT_ALGO),  # small_image was relative
        "1002": ("MH02", base + "/p/2.jpg", DEFAULT_ALGO),
        "2000": ("CHANGED", base + "/new.jpg", DEFAULT_ALGO),
    }


def test_prototype_phash_is_imagehash_on_the_512_canvas() -> None:
    for seed, size in ((1, (320, 240)), (2, (700, 1000)), (3, (512, 512))):
        data = encode(product_image(seed, size))
        assert str(prototype_phash(Image.open(io.BytesIO(data)).convert("RGB"))) == old_phash(data)
    assert (
        HashValue.from_hex(old_phash(encode(product_image(1))))
        - HashValue.from_hex(old_phash(encode(product_image(2))))
        > 4
    ), "two different pictures are far apart, or the changed-picture count means nothing"


def test_migrate_a_table_to_the_local_store_then_resume(
    env: Path, old_table: list[dict[str, str]], image_server: ImageServer, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    base = image_server.base_url + "/media/catalog/product"
    code, summary = migrate(capsys, "--from-table", OLD_TABLE, "--image-base-url", base)
    assert summary["source"] == "table hash_store" and summary["target"] == "local"
    check_first_run(code, summary, tmp_path / "hash_store.failures.csv")
    check_records({r.entity_id: r for r in SqliteRecordStore(env / "dupcheck.sqlite3").scan()}, image_server)

    hits = image_server.counts()
    code, again = migrate(capsys, "--from-table", OLD_TABLE, "--image-base-url", base)
    assert (code, again["skipped"], again["done"], again["failed"]) == (ExitCode.FAILED, 4, 0, 2)
    assert again["phash_compared"] == 0  # nothing downloaded again, so nothing compared again
    changed = {p: n for p, n in image_server.counts().items() if n != hits.get(p)}
    assert changed == {"/media/catalog/product/gone.jpg": 2, "/media/catalog/product/text.txt": 2}


def test_migrate_a_table_to_dynamodb(
    env: Path, old_table: list[dict[str, str]], ddb_client: Any, image_server: ImageServer,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    create_table(ddb_client, TABLE)
    base = image_server.base_url + "/media/catalog/product"
    code, summary = migrate(
        capsys, "--from-table", OLD_TABLE, "--image-base-url", base, "--target", "dynamodb", "--table", TABLE,
        "--failures", str(tmp_path / "f.csv"),
    )  # fmt: skip
    check_first_run(code, summary, tmp_path / "f.csv")
    check_records({r.entity_id: r for r in DynamoDBRecordStore(TABLE, client=ddb_client).scan()}, image_server)


def test_migrate_an_export_file(env: Path, image_server: ImageServer, capsys: pytest.CaptureFixture[str],
                                tmp_path: Path) -> None:  # fmt: skip
    export = tmp_path / "0123-abcd.json.gz"  # a data file of a DynamoDB export to S3
    with gzip.open(export, "wt", encoding="utf-8") as out:
        for item in old_items(image_server):
            out.write(json.dumps({"Item": as_dynamodb_json(item)}) + "\n")
    code, summary = migrate(
        capsys, "--from-file", str(export), "--image-base-url", image_server.base_url + "/media/catalog/product"
    )
    check_first_run(code, summary, tmp_path / "0123-abcd.failures.csv")
    check_records({r.entity_id: r for r in SqliteRecordStore(env / "dupcheck.sqlite3").scan()}, image_server)


def test_migrate_usage_errors_are_one_line(env: Path, mock_aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    for args, expected in (
        (["--from-table", "nope"], "cannot read the table 'nope': ResourceNotFoundException"),
        (["--from-file", "missing.json"], "catalog file not found: missing.json"),
    ):
        assert main(["migrate", *args]) == ExitCode.USAGE
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in json.loads(err[0])["error"]["message"]
    with pytest.raises(SystemExit) as exc:
        main(["migrate", "--from-table", "a", "--from-file", "b"])
    assert exc.value.code == ExitCode.USAGE


# -- a subprocess through AWS_ENDPOINT_URL, interrupted, then resumed -------------------------------


@pytest.mark.slow
def test_migrate_through_aws_endpoint_url_resumes_after_sigterm(
    moto_server: str, image_server: ImageServer, tmp_path: Path
) -> None:
    import boto3

    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server)
    create_old_table(client)
    for i in range(30):
        path = f"/m/{i}.jpg"
        image_server.image(path, seed=300 + i)
        item = {"entity_id": f"P{i}", "sku": f"S{i}", "small_image": path,
                "phash": old_phash(image_server.routes[path].body)}  # fmt: skip
        client.put_item(TableName=OLD_TABLE, Item=as_dynamodb_json(item))
    data_dir = tmp_path / "data"
    env = dict(os.environ, AWS_ENDPOINT_URL=moto_server, DUPCHECK_ALLOW_LOOPBACK_URLS="true",
               DUPCHECK_DATA_DIR=str(data_dir))  # fmt: skip
    cmd = [sys.executable, "-m", "dupcheck", "migrate", "--from-table", OLD_TABLE, "--image-base-url",
           image_server.base_url, "--workers", "2", "--per-host", "2", "--hash-workers", "-1"]  # fmt: skip

    image_server.delay = 0.15
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = data_dir / "dupcheck.sqlite3"
    deadline = time.monotonic() + 60
    while not store.exists() or SqliteRecordStore(store).count() < 5:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    first = json.loads(out.strip().splitlines()[-1])
    assert first["interrupted"] and first["done"] == SqliteRecordStore(store).count() < 30
    assert err == "", "no progress bar and no traceback when stderr is not a terminal"

    image_server.delay = 0.0
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitCode.OK, done.stderr
    second = json.loads(done.stdout.strip().splitlines()[-1])
    assert (second["skipped"], second["done"], second["failed"]) == (first["done"], 30 - first["done"], 0)
    assert second["picture_changed"] == first["picture_changed"] == 0
    assert first["phash_compared"] + second["phash_compared"] >= 30
    assert SqliteRecordStore(store).count() == 30
