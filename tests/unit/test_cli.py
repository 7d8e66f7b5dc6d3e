"""`python -m dupcheck` commands: output, exit codes, and that they share the server's store."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
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
    code, record = run(
        capsys, "--data-dir", data, "add", "--entity-id", "A1", "--sku", "MH01", str(catalog / "SKU-1.jpg")
    )
    assert code == ExitCode.OK and record["entity_id"] == "A1" and record["image_url"].startswith("file://")
    assert "features" not in record  # ~5 KB of base64 views nobody reads, unless asked for
    code, record = run(capsys, "--data-dir", data, "add", "--features", "--entity-id", "A1", str(catalog / "SKU-1.jpg"))
    assert code == ExitCode.OK and record["features"] and record["hash"]
    code, removed = run(capsys, "--data-dir", data, "remove", "A1")
    assert code == ExitCode.OK and removed == {"removed": "A1"}
    code, error = run(capsys, "--data-dir", data, "remove", "A1")
    assert code == ExitCode.FAILED and error["error"]["code"] == "not_found"


def test_blocked_url_is_a_json_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, error = run(capsys, "--data-dir", str(tmp_path), "find", "http://169.254.169.254/latest/meta-data/")
    assert code == ExitCode.FAILED and error["error"]["code"] == "url_not_allowed"


def test_invalid_settings_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DUPCHECK_MAX_IMAGE_BYTES", "lots")
    code, error = run(capsys, "--data-dir", str(tmp_path), "remove", "x")
    assert code == ExitCode.USAGE and "DUPCHECK_MAX_IMAGE_BYTES" in error["error"]["message"]
    monkeypatch.delenv("DUPCHECK_MAX_IMAGE_BYTES")
    monkeypatch.setenv("DUPCHECK_TYPO_SETTING", "1")
    code, error = run(capsys, "--data-dir", str(tmp_path), "remove", "x")
    assert code == ExitCode.USAGE and "unknown setting DUPCHECK_TYPO_SETTING" in error["error"]["message"]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> dict:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1, err
    return json.loads(lines[0])["error"]


def test_user_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert main(["--data-dir", data, "find", "missing.jpg"]) == ExitCode.USAGE
    assert "no such file: missing.jpg" in one_error_line(capsys)["message"]  # not "URL scheme '(none)'"
    assert main(["--data-dir", data, "add", "--entity-id", "A", "missing.jpg"]) == ExitCode.USAGE
    assert "no such file" in one_error_line(capsys)["message"]
    assert main(["--data-dir", data, "index-dir", str(tmp_path / "nope")]) == ExitCode.USAGE
    assert one_error_line(capsys)["message"] == f"no such folder: {tmp_path / 'nope'}"
    assert main(["--data-dir", data, "backfill", "--catalog", "missing.csv"]) == ExitCode.USAGE
    assert "catalog file not found" in one_error_line(capsys)["message"]


def test_a_closed_stdout_ends_quietly(tmp_path: Path, catalog: Path) -> None:
    """`python -m dupcheck add ... | head`: the reader left; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    result = subprocess.run(
        [sys.executable, "-m", "dupcheck", "--data-dir", str(tmp_path / "d"), "add", "--features",
         "--entity-id", "A1", str(catalog / "SKU-1.jpg")],
        stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
    )  # fmt: skip
    os.close(write_end)
    assert (result.returncode, result.stderr) == (ExitCode.BROKEN_PIPE, "")


def test_progress_on_a_terminal_only(tmp_path: Path, catalog: Path) -> None:
    def index_dir(stderr: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(tmp_path / "d"), "index-dir",
                               str(catalog)], stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=60)  # fmt: skip

    parent, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    index_dir(child)
    os.close(child)
    shown = b""
    with contextlib.suppress(OSError):  # EIO: everything the closed terminal held has been read
        while select.select([parent], [], [], 0)[0]:
            shown += os.read(parent, 65536)
    os.close(parent)
    assert b"6/6" in shown, "a bar with the file count on a terminal"
    for result in (index_dir(subprocess.PIPE), subprocess.run(
        [sys.executable, "-m", "dupcheck", "--data-dir", str(tmp_path / "d"), "reindex"],
        capture_output=True, text=True, timeout=60,
    )):  # fmt: skip
        assert result.stderr == "", result.args  # was: two empty `0img` bars from reindex
        assert json.loads(result.stdout.strip().splitlines()[-1] if "reindex" in result.args else result.stdout)


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "dupcheck", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "migrate" in result.stdout
    commands = ("serve", "demo", "find", "add", "remove", "index-dir", "backfill", "reindex", "migrate", "evaluate")
    for command in commands:
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0 and "usage:" in capsys.readouterr().out, command


def test_a_dupcheck_process_multiplies_on_one_blas_thread(tmp_path: Path) -> None:
    """`python -m dupcheck` (the server, the batch tools) and the Lambda handler's cold start
    limit BLAS to one thread (bootstrap.one_blas_thread): started with two, it has one after."""
    probe = (
        "import sys\n"
        "from threadpoolctl import threadpool_info\n"
        "import dupcheck_tools.cli as cli\n"
        "def blas(): return [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "before = blas()\n"
        "cli.main(['--data-dir', sys.argv[1], 'find', sys.argv[1] + '.jpg'])\n"
        "print(before, blas())\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "d")], capture_output=True, text=True,
                            env=env, timeout=60, check=True)  # fmt: skip
    before, after = result.stdout.strip().splitlines()[-1].split("] [")
    assert before == "[2" and after == "1]"


def test_the_command_line_starts_without_the_api_package() -> None:
    # The API package (Powertools, its OpenAPI models) was about half of every command's start;
    # only `add` prints the API's item body, and it imports it when it runs.
    code = (
        "import sys, dupcheck_tools.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('aws_lambda_powertools', 'dupcheck.api'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
