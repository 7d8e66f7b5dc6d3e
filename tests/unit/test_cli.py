"""`python -m dupcheck` commands: output, exit codes, and that they share the server's store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dupcheck_tools.cli import main
from dupcheck_tools.exit_codes import ExitCode
from dupcheck_tools.samples import encode, product_image


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out or err)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for i in range(5):
        (folder / f"SKU-{i}.jpg").write_bytes(encode(product_image(500 + i)))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_index_dir_then_find_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, catalog: Path) -> None:
    data = str(tmp_path / "data")
    code, summary = run(capsys, "--data-dir", data, "index-dir", str(catalog))
    assert code == ExitCode.FAILED  # the text file is reported, not skipped silently
    assert summary["indexed"] == 5 and summary["failed"] == [{"file": "notes.txt", "error": "not a supported image"}]

    query = tmp_path / "query.jpg"
    query.write_bytes(encode(product_image(502).resize((200, 200)), "JPEG", quality=60))
    code, result = run(capsys, "--data-dir", data, "find", str(query), "--top", "2")
    assert code == ExitCode.OK
    assert result["is_duplicate"] and result["matches"][0]["entity_id"] == "SKU-2"
    assert len(result["matches"]) == 2


def test_add_and_remove(capsys: pytest.CaptureFixture[str], tmp_path: Path, catalog: Path) -> None:
    data = str(tmp_path / "data")
    code, record = run(capsys, "--data-dir", data, "add", "--entity-id", "A1", "--sku", "MH01",
                       str(catalog / "SKU-1.jpg"))
    assert code == ExitCode.OK and record["entity_id"] == "A1" and record["image_url"].startswith("file://")
    code, removed = run(capsys, "--data-dir", data, "remove", "A1")
    assert code == ExitCode.OK and removed == {"removed": "A1"}
    code, error = run(capsys, "--data-dir", data, "remove", "A1")
    assert code == ExitCode.FAILED and error["error"]["code"] == "not_found"


def test_blocked_url_is_a_json_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, error = run(capsys, "--data-dir", str(tmp_path), "find", "http://169.254.169.254/latest/meta-data/")
    assert code == ExitCode.FAILED and error["error"]["code"] == "url_not_allowed"


def test_invalid_settings_are_refused(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    monkeypatch.setenv("DUPCHECK_MAX_IMAGE_BYTES", "lots")
    code, error = run(capsys, "--data-dir", str(tmp_path), "remove", "x")
    assert code == ExitCode.USAGE and "DUPCHECK_MAX_IMAGE_BYTES" in error["error"]["message"]
    monkeypatch.delenv("DUPCHECK_MAX_IMAGE_BYTES")
    monkeypatch.setenv("DUPCHECK_TYPO_SETTING", "1")
    code, error = run(capsys, "--data-dir", str(tmp_path), "remove", "x")
    assert code == ExitCode.USAGE and "unknown setting DUPCHECK_TYPO_SETTING" in error["error"]["message"]


def test_every_command_has_help() -> None:
    for command in ("serve", "demo", "find", "add", "remove", "index-dir"):
        result = subprocess.run([sys.executable, "-m", "dupcheck", command, "--help"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage:" in result.stdout, command
