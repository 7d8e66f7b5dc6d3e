"""Similar products' part of the template: the two functions with their own code asset, the
route API Gateway sends them, the stream mapping and its DLQ, what they may touch; and the
products bundle, which carries the model and onnxruntime where the shared one carries neither."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from aws_cdk.assertions import Template
from test_imports_infra import granted, objects  # pytest's own copies
from test_stack import (
    FIND_SIMILAR_HANDLER,
    PRODUCT_SYNC_HANDLER,
    PRODUCTS_HANDLER,
    function,
    logical_id,
    owned,
    records_table,
    routes,
)

from dupcheck.core.settings import Settings
from infra import bundling


def products_dlq(template: Template) -> str:
    return owned(template, "AWS::SQS::Queue", "SimilarProductsDeadLetterQueue")


def test_similar_products_goes_to_its_own_function_with_the_key(template: Template) -> None:
    method = routes(template)[("/similar_products", "ANY")]
    assert method["ApiKeyRequired"] is True
    assert method["Integration"]["Type"] == "AWS_PROXY"
    uri = str(method["Integration"]["Uri"])
    assert function(template, PRODUCTS_HANDLER)[0] in uri
    assert logical_id(template, "AWS::Lambda::Alias") not in uri  # find_similar's alias answers everything else


def test_both_functions_run_on_a_whole_vcpu_and_refuse_to_start_without_the_model(template: Template) -> None:
    for handler, timeout in ((PRODUCTS_HANDLER, 29), (PRODUCT_SYNC_HANDLER, 300)):
        properties = function(template, handler)[1]["Properties"]
        assert (properties["MemorySize"], properties["Timeout"]) == (1769, timeout)
        env = properties["Environment"]["Variables"]
        strings = {k: v if isinstance(v, str) else "resolved-at-deploy" for k, v in env.items() if k.startswith("DUP")}
        settings = Settings.from_env(strings)
        assert (settings.products, settings.store, settings.index) == ("on", "dynamodb", "opensearch")
        assert settings.imports_bucket == "resolved-at-deploy"  # kept images are read from it
    find = function(template, FIND_SIMILAR_HANDLER)[1]["Properties"]["Environment"]["Variables"]
    assert Settings.env_name("products") not in find


def test_the_sync_reads_the_table_stream_per_record_into_its_dlq(template: Template) -> None:
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [records_table(template), "StreamArn"]},
        "FunctionName": {"Ref": function(template, PRODUCT_SYNC_HANDLER)[0]},
        "StartingPosition": "TRIM_HORIZON", "BatchSize": 10, "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 3, "ParallelizationFactor": 5, "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [products_dlq(template), "Arn"]}}},
    })  # fmt: skip
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    watched = [a for a in alarms.values() if a["Properties"].get("Dimensions") == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [products_dlq(template), "QueueName"]}}]]  # fmt: skip
    assert len(watched) == 1 and watched[0]["Properties"]["Threshold"] == 1


def test_each_function_may_touch_what_it_needs_and_no_more(template: Template) -> None:
    records = str({"Fn::GetAtt": [records_table(template), "Arn"]})
    search, sync = granted(template, PRODUCTS_HANDLER), granted(template, PRODUCT_SYNC_HANDLER)
    assert "dynamodb:BatchGetItem" in search[records]
    assert not {a for grants in (search, sync) for a in grants.get(records, set()) if "Put" in a or "Delete" in a}
    for grants in (search, sync):
        assert grants[objects(template, "images/")] == {"s3:GetObject"}  # kept images, read only
        assert "es:ESHttp*" in {a for actions in grants.values() for a in actions}


def test_only_the_products_asset_carries_the_model_and_onnxruntime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both bundles from one source tree holding a built model: the shared one leaves models/ out,
    the products one installs requirements-products.txt too and carries the model file."""
    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    model.write_bytes(b"onnx")
    installed: list[list[str]] = []

    def fake_run(cmd: list[str], check: bool) -> subprocess.CompletedProcess:
        installed.append([cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--requirement"])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_run)
    monkeypatch.setattr(bundling.shutil, "which", lambda _name: None)
    monkeypatch.setattr(bundling, "lambda_python", lambda: "/opt/python3.12")
    monkeypatch.setattr(bundling, "compile_bytecode", lambda root, keep_sources, python: None)
    package = tmp_path / "dupcheck"
    shutil.copytree(bundling.PACKAGE_DIR / "core", package / "core")
    (package / "models").mkdir()
    (package / "models" / "stale.onnx").write_bytes(b"a model left by make model")
    shared, products = tmp_path / "shared", tmp_path / "products"
    bundling.LocalBundler(package_dir=package).try_bundle(str(shared), None)
    requirements = (bundling.REQUIREMENTS, bundling.PRODUCTS_REQUIREMENTS)
    bundling.LocalBundler(package_dir=package, requirements=requirements, model=model).try_bundle(str(products), None)
    assert installed == [[str(bundling.REQUIREMENTS)], [str(r) for r in requirements]]
    assert not (shared / "dupcheck" / "models").exists() and (shared / "dupcheck" / "core").is_dir()
    assert [p.name for p in (products / "dupcheck" / "models").iterdir()] == ["m.onnx"]
    assert "onnxruntime==" in bundling.PRODUCTS_REQUIREMENTS.read_text()
    assert "onnxruntime" not in bundling.REQUIREMENTS.read_text()
    with pytest.raises(bundling.BundlingError, match="make model"):
        bundling.LocalBundler(package_dir=package, model=tmp_path / "missing.onnx").try_bundle(
            str(tmp_path / "x"), None
        )


def test_a_deployment_without_similar_products_has_none_of_their_parts() -> None:
    """`-c dupcheck:similarProducts=false`: no model functions, no route, no second stream reader;
    /similar_products then reaches find_similar, which answers 503 products_unavailable."""
    from conftest import synth

    _, template = synth(**{"dupcheck:similarProducts": "false"})
    handlers = {f["Properties"]["Handler"] for f in template.find_resources("AWS::Lambda::Function").values()}
    assert PRODUCTS_HANDLER not in handlers and PRODUCT_SYNC_HANDLER not in handlers and len(handlers) == 5
    assert ("/similar_products", "ANY") not in routes(template)
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 4)
    with pytest.raises(ValueError, match="similarProducts"):
        synth(**{"dupcheck:similarProducts": "maybe"})
