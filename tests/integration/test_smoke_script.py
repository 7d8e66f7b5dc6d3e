"""scripts/smoke_test.py, the post-deploy check, run against the local server: the same contract
(open routes, the key, JSON errors, 405/HEAD, the trailing slash, uploads), so the script's own
steps are tested before anyone runs them against a stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.local.server import LocalServer
from dupcheck_tools.samples import encode, product_image
from scripts import smoke_test
from scripts.helpers.loopback import ImageServer


def test_the_smoke_test_passes_against_the_local_server(
    tmp_path: Path, image_server: ImageServer, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(
        {}, data_dir=tmp_path / "data", port=0, api_key=SecretStr("k3y"), allow_loopback_urls=True
    )
    server = LocalServer(build_service(settings), settings)
    server.start_in_thread()
    image_url = image_server.add("/flower.jpg", encode(product_image(42)))
    try:
        code = smoke_test.main(["--api-url", server.url, "--api-key", "k3y", "--image-url", image_url,
                                "--timeout", "10"])  # fmt: skip
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("\nok ") + out.startswith("ok ") == 15 and "PASSED" in out  # similar products: 2 of them
    assert "cleanup: deleted" in out and server.service.parts.store.count() == 0  # the imported row too


def test_the_smoke_test_fails_when_the_key_is_wrong(tmp_path: Path, image_server: ImageServer) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path / "data", port=0, api_key=SecretStr("k3y"))
    server = LocalServer(build_service(settings), settings)
    server.start_in_thread()
    try:
        code = smoke_test.main(["--api-url", server.url, "--api-key", "wrong", "--image-url",
                                image_server.add("/a.jpg", encode(product_image(1))), "--timeout", "1"])  # fmt: skip
    finally:
        server.shutdown()
    assert code == 1


def test_the_picture_is_the_deployers_own_never_a_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --image-url the smoke test refuses to start: a stack that admits only the shop's
    hosts must not be sent to fetch a third party's picture."""
    with pytest.raises(SystemExit) as exit_info:
        smoke_test.main(["--api-url", "http://127.0.0.1:9/v1", "--api-key", "k3y"])
    assert exit_info.value.code == 2
    assert "--image-url" in capsys.readouterr().err


def test_the_thumbnail_steps_against_a_server_keeping_thumbnails_in_s3(
    tmp_path: Path,
    image_server: ImageServer,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the deployed stack does (S3 thumbnails, docs/deploy.md), with S3 played by a moto
    server on loopback: the smoke test finds the thumbnail after POST /items, and not after DELETE."""
    import boto3

    from dupcheck.adapters.s3_thumbnails import S3Thumbnails

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)  # the smoke test's boto3 client goes there too
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="smoke-thumbnails")
    settings = Settings.from_env(
        {}, data_dir=tmp_path / "data", port=0, api_key=SecretStr("k3y"), allow_loopback_urls=True
    )
    server = LocalServer(build_service(settings, thumbnails=S3Thumbnails("smoke-thumbnails", client=client)), settings)
    server.start_in_thread()
    image_url = image_server.add("/flower.jpg", encode(product_image(43)))
    try:
        code = smoke_test.main(["--api-url", server.url, "--api-key", "k3y", "--image-url", image_url,
                                "--timeout", "10", "--thumbnail-bucket", "smoke-thumbnails"])  # fmt: skip
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "the thumbnail is in the bucket" in out and "kept" in out and "deleted" in out
    assert client.list_objects_v2(Bucket="smoke-thumbnails").get("KeyCount") == 0
    # An id whose thumbnail is not there reads as such (the step after DELETE relies on it).
    assert smoke_test.thumbnail_in("smoke-thumbnails", "anything") is False
