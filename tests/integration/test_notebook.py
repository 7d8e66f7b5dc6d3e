"""notebooks/backfill.ipynb runs headless in a fresh virtualenv built from the install line its
first cell documents, never in the dev venv, so a dependency the package forgets to declare
fails here (as `No module named 'numpy'` once did on SageMaker). The line's arguments are given
to `uv pip install` (pip's arguments, from uv's cache: seconds instead of most of a minute).

AWS is a moto server on 127.0.0.1 that the kernel reaches through AWS_ENDPOINT_URL (moto is not
in the fresh venv). The records table is made by a CloudFormation stack, so it has a generated
name that the notebook must read from the stack's TableName output. The catalog is read from an
s3:// URI, and its relative small_image paths are joined to IMAGE_BASE_URL; images come from the
loopback image server. The catalog holds one picture twice (E6 is E0's), which the notebook's
duplicate report, run on the same table, finds and shows inline, keeping E0, the smaller id, although
E0's picture is served a second late, so that E6 is written first.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.catalog import write_catalog
from dupcheck_tools.duplicates import KEEP_RULE
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer, Reply

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "backfill.ipynb"
REGION = "us-east-1"
KERNEL = "dupcheck-fresh"
# The stack as far as the notebook sees it: a records table with a generated name, and its output.
STACK_TEMPLATE = {
    "Resources": {"Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
        "AttributeDefinitions": [{"AttributeName": "entity_id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "entity_id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
    }}},
    "Outputs": {"TableName": {"Value": {"Ref": "Table"}}},
}  # fmt: skip


def documented_install() -> list[str]:
    """The arguments of the notebook's `pip install` line, which docs/backfill.md must repeat."""
    source = nbformat.read(NOTEBOOK, as_version=4).cells[0].source
    found = re.findall(r"^\S*pip install (.+)$", source, re.M)
    assert len(found) == 1, "the notebook's first cell gives exactly one install line"
    assert f"pip install {found[0]}" in (ROOT / "docs" / "backfill.md").read_text(), "backfill.md repeats it"
    return shlex.split(found[0])


@pytest.fixture(scope="module")
def fresh_kernel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float | str]:
    """A virtualenv with nothing but the documented install, and a Jupyter kernel spec for it."""
    folder = tmp_path_factory.mktemp("fresh")
    python = folder / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", str(python),
                    *documented_install()], cwd=ROOT, check=True, timeout=600)  # fmt: skip
    seconds = time.monotonic() - start
    probe = subprocess.run([str(python), "-c", "import moto"], capture_output=True)
    assert probe.returncode != 0, "the fresh venv must not see the dev venv's packages"
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(folder / "jupyter"), "--name", KERNEL],
                   check=True, capture_output=True)  # fmt: skip
    print(f"fresh venv: documented install in {seconds:.1f} s")
    return {"jupyter_path": str(folder / "jupyter" / "share" / "jupyter"), "install_s": seconds}


@pytest.mark.slow
def test_notebook_backfills_an_s3_catalog_into_the_stacks_table_from_a_fresh_venv(
    fresh_kernel: dict[str, str], moto_server: str, image_server: ImageServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server, "DUPCHECK_ALLOW_LOOPBACK_URLS": "true",  # the kernel inherits these
        "JUPYTER_PATH": fresh_kernel["jupyter_path"],
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="Dupcheck", TemplateBody=json.dumps(STACK_TEMPLATE))
    table = cloudformation.describe_stacks(StackName="Dupcheck")["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert table.startswith("Dupcheck-Table-")  # generated: no default in the notebook could know it

    rows = [{"entity_id": f"E{i}", "sku": f"SKU-{i}", "small_image": f"/m/{i}.jpg"} for i in range(7)]
    for i in range(7):
        image_server.image(f"/media/m/{i}.jpg", seed=i % 6)  # E6: E0's picture again
    image_server.delays["/media/m/0.jpg"] = 1.0  # E0 written after E6: its updated_at is the later
    image_server.route("/media/x.txt", Reply(200, b"text", "text/plain"))
    rows.append({"entity_id": "BAD", "sku": "s", "small_image": "/x.txt"})
    catalog = write_catalog(tmp_path / "catalog.csv", rows)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="catalogs")
    s3.upload_file(str(catalog), "catalogs", "exports/catalog.csv")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert "TABLE = None" in params[0].source and "IMAGE_BASE_URL" in params[0].source
    params[0].source += "\n" + "\n".join([  # papermill's way: assignments after the defaults
        'CATALOG = "s3://catalogs/exports/catalog.csv"',
        f"REGION = {REGION!r}",
        f"IMAGE_BASE_URL = {image_server.base_url + '/media'!r}",
        "WORKERS = 4",
        f"FAILURES = {str(tmp_path / 'failures.csv')!r}",
        f"DUPLICATES = {str(tmp_path / 'duplicates')!r}",
    ])  # fmt: skip
    NotebookClient(nb, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"table {table} (output TableName of the stack Dupcheck)" in text
    records = {r.entity_id: r.image_url for r in DynamoDBRecordStore(table, region=REGION).scan()}
    assert records == {f"E{i}": f"{image_server.base_url}/media/m/{i}.jpg" for i in range(7)}
    assert "exit status: 1" in text
    assert "backfill: 1 of 8 rows failed" in text and "1 x unsupported_media_type" in text  # why, under it
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("| done | 7 |" in m and "| failed | 1 |" in m for m in markdown)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the throughput plot is displayed"
    assert "BAD" in (tmp_path / "failures.csv").read_text()
    assert all(image_server.counts()[f"/media/m/{i}.jpg"] == 1 for i in range(7))

    # The duplicate report read the same table and shows its one group inline, pictures and all.
    assert "groups: 1, records to remove: 1, records read: 7" in text
    report = json.loads((tmp_path / "duplicates" / "duplicates.json").read_text())
    # E6 holds E0's picture, file for file: the pictures cannot tell which is the original, and E6
    # was registered first (E0's download was held back): it is kept, and the report says why.
    assert [group["items"] for group in report["groups"]] == [["E6", "E0"]]  # the record to keep first
    assert report["groups"][0]["keep_reason"] == "registered first: the pictures do not tell which is the original"
    assert report["keep_rule"] == KEEP_RULE
    stored = {r.entity_id: r.updated_at for r in DynamoDBRecordStore(table, region=REGION).scan()}
    assert stored["E6"] < stored["E0"]
    html = "".join(o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {}))
    assert "Group 1: 2 records, keep E6" in html
    assert f'<img src="{image_server.base_url}/media/m/6.jpg"' in html and "The same picture" in html


def test_the_notebooks_report_keeps_the_first_registered_of_copies_the_pictures_cannot_tell_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook's duplicate-report cell as it stands, in this process, on a local store where
    E10 holds E9's picture: the one registered first is kept, E10 when it was written before E9
    (its id notwithstanding), E9 when the store is written in the other order."""
    (cell,) = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if "find_duplicates(" in c.source]
    picture, other = encode(product_image(7)), encode(product_image(8))
    for order in (["E10", "E9"], ["E9", "E10"]):
        data = tmp_path / "-".join(order)
        monkeypatch.setenv("DUPCHECK_DATA_DIR", str(data))
        service = build_service(Settings.from_env({}, data_dir=data))
        for entity_id in [*order, "E2"]:
            data_of = other if entity_id == "E2" else picture
            service.registrar.register_bytes(entity_id=entity_id, sku=f"SKU-{entity_id}", data=data_of,
                                             image_url=f"https://cdn.shop.example/{entity_id}.jpg")  # fmt: skip
        written = {r.entity_id: r.updated_at for r in SqliteRecordStore(data / "dupcheck.sqlite3").scan()}
        assert written[order[0]] < written[order[1]]
        shown: list[Any] = []  # what the cell displays (`display` comes from the notebook's first cell)
        namespace = {"TARGET": "local", "TABLE": None, "REGION": REGION, "DUPLICATES": str(data / "report"),
                     "MARKS": None, "FIRST_GROUPS": 10, "display": shown.append}  # fmt: skip
        exec(compile(cell.source, "backfill.ipynb", "exec"), namespace)  # noqa: S102 - the notebook's own cell
        report = json.loads((data / "report" / "duplicates.json").read_text())
        assert [(group["keep"], group["items"]) for group in report["groups"]] == [(order[0], order)]
        assert report["keep_rule"] == KEEP_RULE
        assert f"Group 1: 2 records, keep {order[0]}" in shown[0].data
