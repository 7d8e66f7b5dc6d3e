"""The Lambda entry points with canned API Gateway events: decorators, routing, metrics, errors.

The find_similar module builds its service at import from DUPCHECK_* settings (embedded
defaults here, in a temporary data dir); tests then swap `app` for one wired to fakes so no
network is touched.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from dupcheck.observability import logger, metrics
from support.fakes import FakeFetcher, FakeIndex, load_event


def _png(seed: int = 1) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 64))
    pixels = image.load()
    for x in range(64):
        for y in range(64):
            pixels[x, y] = ((x * 4 + seed * 37) % 256, (y * 4) % 256, ((x ^ y) * seed) % 256)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def find_similar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: None) -> Any:
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(tmp_path))
    from dupcheck.handlers import find_similar as module

    return module


@pytest.fixture
def wired(find_similar: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, Any]:
    """find_similar.app rebuilt over an SQLite store in tmp_path, a fake index and fetcher."""
    from dupcheck.adapters.sqlite_store import SqliteRecordStore
    from dupcheck.api import build_resolver
    from dupcheck.bootstrap import build_service
    from dupcheck.core.settings import Settings

    url = "https://images.example.com/catalog/MH01-BLK.jpg"
    settings = Settings.from_env({}, data_dir=tmp_path)
    service = build_service(
        settings,
        store=SqliteRecordStore(tmp_path / "t.sqlite3"),
        index=FakeIndex(),
        fetcher=FakeFetcher({url: _png(), "https://images.example.com/other.jpg": _png(9)}),
        observe=find_similar.observe,
    )
    service.registrar.register("A1", "MH01-BLK", url)
    monkeypatch.setattr(find_similar, "app", build_resolver(service, max_body_bytes=settings.max_image_bytes))
    return find_similar, service


def _body(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])


def test_module_builds_app_at_import(find_similar: Any) -> None:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    assert isinstance(find_similar.app, APIGatewayRestResolver)


def test_get_find_similar_finds_the_registered_duplicate(
    wired: tuple[Any, Any], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    module, _ = wired
    response = module.handler(load_event("apigw_find_similar_get.json"), lambda_context)

    assert response["statusCode"] == 200
    body = _body(response)
    assert body["is_duplicate"] is True
    assert body["query"]["image_url"] == "https://images.example.com/catalog/MH01-BLK.jpg"
    assert body["matches"][0]["entity_id"] == "A1" and body["matches"][0]["distance"] == 0
    # log_metrics flushed one EMF blob in the "dupcheck" namespace with the service's metrics.
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for blob in emf for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    # Tests may override it, and the one Metrics object keeps the namespace of its first import.
    expected = {"dupcheck", os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dupcheck"), metrics.namespace}
    assert {blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] for blob in emf} <= expected
    assert "HashesComputed" in names


def test_correlation_id_is_the_api_gateway_request_id(
    wired: tuple[Any, Any], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    module, _ = wired
    module.handler(load_event("apigw_find_similar_get.json"), lambda_context)
    assert logger.get_correlation_id() == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_health(wired: tuple[Any, Any], lambda_context: Any) -> None:
    module, _ = wired
    response = module.handler(load_event("apigw_health_get.json"), lambda_context)
    assert response["statusCode"] == 200
    assert _body(response)["status"] == "ok"


def test_upstream_error_is_a_json_502(wired: tuple[Any, Any], lambda_context: Any) -> None:
    module, _ = wired
    event = load_event("apigw_find_similar_get.json")
    event["queryStringParameters"]["image_url"] = "https://images.example.com/missing.jpg"
    event["multiValueQueryStringParameters"]["image_url"] = ["https://images.example.com/missing.jpg"]
    response = module.handler(event, lambda_context)
    assert response["statusCode"] == 502
    assert _body(response)["error"]["code"] == "upstream_error"


def test_index_outage_is_a_json_503(wired: tuple[Any, Any], lambda_context: Any) -> None:
    from dupcheck.core.errors import IndexUnavailable

    module, service = wired

    def down(*args: Any, **kwargs: Any) -> Any:
        raise IndexUnavailable("OpenSearch search failed: cannot connect")

    service.parts.index.search = down
    response = module.handler(load_event("apigw_find_similar_get.json"), lambda_context)
    assert response["statusCode"] == 503
    assert _body(response)["error"]["code"] == "index_unavailable"


def _metrics_emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """The EMF metrics the handler flushed at its end (Powertools prints one JSON line)."""
    emitted: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    value = blob[metric["Name"]]
                    emitted[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return emitted


def test_an_image_hosts_failure_is_counted_as_upstream_not_the_services(
    wired: tuple[Any, Any], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`UpstreamFaults` is what the API's 5XX alarm subtracts (infra/components/alarms.py)."""
    from dupcheck.core.errors import UpstreamError, UpstreamTimeout

    module, service = wired
    for error in (UpstreamError("the image host answered 500"), UpstreamTimeout("the image host was too slow")):
        service.parts.fetcher.errors["https://images.example.com/catalog/MH01-BLK.jpg"] = error
        capsys.readouterr()
        response = module.handler(load_event("apigw_find_similar_get.json"), lambda_context)
        assert response["statusCode"] >= 500
        assert _metrics_emitted(capsys).get("UpstreamFaults") == 1


def test_the_services_own_5xx_is_not_counted_as_upstream(
    wired: tuple[Any, Any], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from dupcheck.core.errors import IndexUnavailable

    module, service = wired

    def down(*args: Any, **kwargs: Any) -> Any:
        raise IndexUnavailable("OpenSearch search failed: cannot connect")

    service.parts.index.search = down
    capsys.readouterr()
    response = module.handler(load_event("apigw_find_similar_get.json"), lambda_context)
    assert response["statusCode"] == 503
    assert "UpstreamFaults" not in _metrics_emitted(capsys)


def test_snapstart_hooks_are_registered_with_the_runtimes_library(find_similar: Any) -> None:
    import snapshot_restore_py

    assert find_similar.before_snapshot in [f for f, _, _ in snapshot_restore_py.get_before_snapshot()]
    assert find_similar.after_restore in [f for f, _, _ in snapshot_restore_py.get_after_restore()]


def test_after_restore_builds_new_clients_with_fresh_credentials_and_reseeds(
    find_similar: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a snapshot fixed is not shared by the environments restored from it: new boto3 clients
    (new connection pools) whose credentials are resolved after the restore, and new random
    sequences."""
    import random

    import boto3
    import numpy as np

    from dupcheck.core.settings import Settings

    aws = Settings.from_env({}, data_dir=tmp_path, store="dynamodb", index="opensearch", table_name="hashes",
                            thumbnail_bucket="thumbs", opensearch_endpoint="search.example.com")  # fmt: skip
    monkeypatch.setattr(find_similar, "settings", aws)
    find_similar.app = find_similar.build_app()  # as at init: clients with the snapshot's credentials
    created: list[Any] = []
    real_client = boto3.client

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        created.append(real_client(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(boto3, "client", recording_client)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "restored-key")  # what the restored environment holds
    before = (random.getstate(), np.random.get_state()[1].copy(), find_similar.app)
    find_similar.after_restore()
    assert find_similar.app is not before[2]
    assert {c.meta.service_model.service_name for c in created} >= {"dynamodb", "s3"}
    assert {c._request_signer._credentials.access_key for c in created} == {"restored-key"}
    assert random.getstate() != before[0] and not np.array_equal(np.random.get_state()[1], before[1])
    find_similar.before_snapshot()  # loads, never fails


def test_record_metric_accepts_unit_names(capsys: pytest.CaptureFixture[str]) -> None:
    from dupcheck.observability import metrics, record_metric

    record_metric("IndexLatencyMs", 12.5, "Milliseconds")
    record_metric("Odd", 1, "furlongs")  # unknown unit: recorded as Count, never raises
    metrics.flush_metrics()
    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    units = {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"IndexLatencyMs": "Milliseconds", "Odd": "Count"}


def test_stream_sync_module_builds_its_index_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(tmp_path))
    from dupcheck.core.ports import HashIndex
    from dupcheck.handlers import stream_sync

    assert isinstance(stream_sync.sync.index, HashIndex)
