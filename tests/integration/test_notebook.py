"""notebooks/backfill.ipynb runs headless (nbclient, the venv's python3 kernel) against moto
(DynamoDB + S3, started inside the kernel by an injected first cell) and a loopback image server.

The catalog is read from an s3:// URI, so the notebook's S3 path is exercised too.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from support.catalogs import good_rows, write_catalog
from support.image_server import ImageServer, Reply

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "backfill.ipynb"
TABLE = "dupcheck-notebook"
REGION = "us-east-1"

MOTO_SETUP = """
from moto import mock_aws
_moto = mock_aws()
_moto.start()  # in-process mock inside this kernel: every boto3 call below goes to moto
import boto3
from dupcheck.adapters.dynamodb_store import create_table
create_table(boto3.client("dynamodb", region_name={region!r}), {table!r})
_s3 = boto3.client("s3", region_name={region!r})
_s3.create_bucket(Bucket="catalogs")
_s3.upload_file({catalog!r}, "catalogs", "exports/catalog.csv")
"""

DUMP_TABLE = """
import json
from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore
_records = {{r.entity_id: r.hash.hex for r in DynamoDBRecordStore({table!r}, region={region!r}).scan()}}
print("TABLE=" + json.dumps(_records, sort_keys=True))
"""


@pytest.mark.slow
def test_notebook_backfills_an_s3_catalog_into_dynamodb(
    image_server: ImageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "DUPCHECK_ALLOW_LOOPBACK_URLS": "true",  # the kernel inherits this environment
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    rows = good_rows(image_server, 6) + [("BAD", "s", image_server.route("/x.txt", Reply(200, b"text", "text/plain")))]
    catalog = write_catalog(tmp_path / "catalog.csv", rows)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    params[0].source = "\n".join([
        'CATALOG = "s3://catalogs/exports/catalog.csv"',
        f"TABLE = {TABLE!r}",
        f"REGION = {REGION!r}",
        "WORKERS = 4",
        'TARGET = "dynamodb"',
        f"FAILURES = {str(tmp_path / 'failures.csv')!r}",
    ])  # fmt: skip
    nb.cells.insert(0, nbformat.v4.new_code_cell(MOTO_SETUP.format(region=REGION, table=TABLE, catalog=str(catalog))))
    nb.cells.append(nbformat.v4.new_code_cell(DUMP_TABLE.format(table=TABLE, region=REGION)))

    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    table = json.loads(next(line for line in text.splitlines() if line.startswith("TABLE="))[len("TABLE="):])
    assert sorted(table) == [f"E{i}" for i in range(6)]
    assert "exit status: 1" in text
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("| done | 6 |" in m and "| failed | 1 |" in m for m in markdown)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the throughput plot is displayed"
    assert "BAD" in (tmp_path / "failures.csv").read_text()
    assert all(image_server.counts()[f"/img/{i}.jpg"] == 1 for i in range(6))
