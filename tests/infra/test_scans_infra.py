"""The duplicate scans' part of the template: their queue and its DLQ, the scan function (its
limits, its layer, its trigger), what it and the API may touch; and the engine layer's bundle,
which must hold everything the scan function imports of the tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aws_cdk.assertions import Template
from test_imports_infra import granted, objects, queue  # pytest's own copies
from test_stack import FIND_SIMILAR_HANDLER, SCAN_HANDLER, function, owned, records_table, thumbnail_bucket

from dupcheck.core.settings import Settings
from infra.components.duplicate_scans import EngineLayerBundler

REPO = Path(__file__).resolve().parents[2]


def scans_queue(template: Template) -> str:
    return owned(template, "AWS::SQS::Queue", "DuplicateScansQueue")


def test_the_scan_function_runs_15_minutes_with_room_for_a_catalog_and_its_engine_layer(template: Template) -> None:
    name, scan = function(template, SCAN_HANDLER)
    properties = scan["Properties"]
    assert (properties["Timeout"], properties["MemorySize"]) == (900, 4096)
    assert properties["EphemeralStorage"] == {"Size": 10240}
    (layer,) = properties["Layers"]
    assert layer == {"Ref": owned(template, "AWS::Lambda::LayerVersion", "DuplicateScansEngineLayer")}
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": name}, "EventSourceArn": {"Fn::GetAtt": [scans_queue(template), "Arn"]},
        "BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"]})  # fmt: skip


def test_the_queue_outlasts_an_invocation_and_ends_in_the_imports_dlq(template: Template) -> None:
    properties = template.to_json()["Resources"][scans_queue(template)]["Properties"]
    assert properties["VisibilityTimeout"] == 16 * 60 and properties["SqsManagedSseEnabled"] is True
    dlq = queue(template, "DeadLetterQueue")  # alarmed already (test_stack.py)
    assert properties["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}, "maxReceiveCount": 5}


def test_the_scan_function_and_the_api_know_the_queue(template: Template) -> None:
    for handler in (SCAN_HANDLER, FIND_SIMILAR_HANDLER):
        env = function(template, handler)[1]["Properties"]["Environment"]["Variables"]
        assert env[Settings.env_name("scans_queue_url")] == {"Ref": scans_queue(template)}, handler
        assert Settings.env_name("imports_table") in env and Settings.env_name("imports_bucket") in env
        strings = {k: v if isinstance(v, str) else "resolved-at-deploy" for k, v in env.items() if k.startswith("DUP")}
        assert Settings.from_env(strings).scans_queue_url == "resolved-at-deploy"


def test_each_side_may_touch_what_it_needs_and_no_more(template: Template) -> None:
    scan = granted(template, SCAN_HANDLER)
    records = str({"Fn::GetAtt": [records_table(template), "Arn"]})
    assert "dynamodb:Scan" in scan[records] and not {a for a in scan[records] if "Put" in a or "Delete" in a}
    thumbnails = str({"Fn::Join": ["", [{"Fn::GetAtt": [thumbnail_bucket(template), "Arn"]}, "/thumbnails/*"]]})
    assert scan[thumbnails] == {"s3:GetObject"}
    assert scan[objects(template, "scans/")] == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert scan[objects(template, "reports/")] == {"s3:PutObject"}
    assert "sqs:SendMessage" in scan[str({"Fn::GetAtt": [scans_queue(template), "Arn"]})]  # its own hand-over
    api = granted(template, FIND_SIMILAR_HANDLER)
    assert api[objects(template, "reports/")] == {"s3:GetObject"}
    assert "sqs:SendMessage" in api[str({"Fn::GetAtt": [scans_queue(template), "Arn"]})]
    assert objects(template, "scans/") not in api


def test_a_scans_left_work_expires_with_the_scans(template: Template) -> None:
    bucket = owned(template, "AWS::S3::Bucket", "ImportsBucket")
    rules = template.to_json()["Resources"][bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r["Id"] == "ScanWorkExpires"]
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == ("scans/", 30, "Enabled")


def test_the_engine_layer_holds_all_the_scan_function_imports_of_the_tools(tmp_path: Path) -> None:
    """Imported, and the engine run, with only the runtime package and the layer on the path, as
    on Lambda (where the layer is /opt/python), and the packages the shared asset leaves out
    refused: every dupcheck_tools module it loads comes from the layer."""
    assert EngineLayerBundler().try_bundle(str(tmp_path / "layer"), None) is True
    site = tmp_path / "layer" / "python"
    assert (site / "tqdm" / "__init__.py").is_file() and not list(site.rglob("__pycache__"))
    assert not (site / "dupcheck_tools" / "cli").exists() and not (site / "dupcheck_tools" / "local").exists()
    runtime = tmp_path / "task"
    runtime.mkdir()
    (runtime / "dupcheck").symlink_to(REPO / "lambdas" / "dupcheck")  # the shared asset's package
    probe = (
        "import io, sys, tempfile\n"
        "class Refuse:  # what the shared asset leaves out (pyproject's not-shipped, but tqdm: the layer's)\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('faiss', 'msgspec', 'waitress', 'matplotlib'):\n"
        "            raise ImportError(name + ' does not ship')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "import dupcheck_tools.duplicates.scan_function as f\n"
        "from dupcheck_tools.duplicates import find_duplicates\n"
        "from dupcheck.core.fingerprint.hashing import get_pipeline\n"
        "from dupcheck.core.catalog.records import build_entry\n"
        "pixels = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)\n"
        "data = io.BytesIO(); Image.fromarray(pixels).save(data, 'PNG')\n"
        "records = [build_entry(get_pipeline(), data.getvalue(), entity_id=i, sku='', image_url='', max_pixels=10**7)"
        ".record for i in ('a', 'b')]\n"
        "class Store:\n"
        "    def scan(self, segments=1): return iter(records)\n"
        "    def approximate_count(self): return len(records)\n"
        "from pathlib import Path\n"
        "summary = find_duplicates(Store(), Path(tempfile.mkdtemp()), source='probe', workers=1)\n"
        "tools = {m.__file__ for n, m in sys.modules.items() if n.startswith('dupcheck_tools')}\n"
        f"assert all(p.startswith({str(site)!r}) for p in tools), tools\n"
        "print(f.handler.__name__, summary.groups)\n"
    )
    site_packages = [p for p in sys.path if p.endswith("site-packages")]  # numpy, powertools: the asset's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(runtime), str(site), *site_packages])}
    result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["handler", "1"]  # the engine ran: the two records are one group
