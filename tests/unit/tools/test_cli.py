"""`python -m dupcheck` commands: output, exit codes, and that they share the server's store."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import sys
import termios
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from PIL import ImageOps

from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.cli import main
from dupcheck_tools.cli.common import UsageError
from dupcheck_tools.cli.serve import serving_line
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
    assert summary["duplicates"] == [] and summary["on_duplicate"] == "warn"

    query = tmp_path / "query.jpg"
    query.write_bytes(encode(product_image(502).resize((200, 200)), "JPEG", quality=60))
    code, result = run(capsys, "--data-dir", data, "find", str(query), "--top", "2")
    assert code == ExitCode.OK
    assert result["is_duplicate"] and result["matches"][0]["entity_id"] == "SKU-2"
    assert len(result["matches"]) == 2


def test_index_dir_says_which_pictures_the_catalog_already_held(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, catalog: Path
) -> None:
    """Issue 86: a folder holding a copy of a catalog picture printed {"indexed": 2}: it now lists
    each picture stored that duplicates a record, with the ids it duplicates (warn), or refuses it
    (reject)."""
    data = str(tmp_path / "data")
    assert run(capsys, "--data-dir", data, "add", "--entity-id", "cat-0", str(catalog / "SKU-0.jpg"))[0] == ExitCode.OK
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "copy-of-cat-0.jpg").write_bytes(encode(ImageOps.mirror(product_image(500)).resize((280, 280))))
    (folder / "new-product.jpg").write_bytes(encode(product_image(599)))
    code, summary = run(capsys, "--data-dir", data, "index-dir", str(folder))
    assert code == ExitCode.OK and summary["indexed"] == 2 and summary["failed"] == []
    (copy,) = summary["duplicates"]
    assert (copy["file"], copy["entity_id"], copy["duplicate_of"]) == ("copy-of-cat-0.jpg", "copy-of-cat-0", ["cat-0"])
    assert "mirrored" in copy["edit"] and copy["match_percent"] >= 90

    (folder / "copy-of-cat-0.jpg").rename(folder / "again.jpg")
    (folder / "new-product.jpg").unlink()
    code, summary = run(capsys, "--data-dir", data, "index-dir", "--on-duplicate", "reject", str(folder))
    assert code == ExitCode.FAILED and summary["indexed"] == 0 and summary["duplicates"] == []
    assert summary["failed"][0]["file"] == "again.jpg" and "'cat-0'" in summary["failed"][0]["error"]
    assert run(capsys, "--data-dir", data, "remove", "again")[1]["error"]["code"] == "not_found"  # nothing stored


def test_add_and_remove(capsys: pytest.CaptureFixture[str], tmp_path: Path, catalog: Path) -> None:
    data = str(tmp_path / "data")
    code, record = run(
        capsys, "--data-dir", data, "add", "--entity-id", "A1", "--sku", "MH01", str(catalog / "SKU-1.jpg")
    )
    assert code == ExitCode.OK and record["entity_id"] == "A1"
    # A file has no address the web app can show: its picture is kept, served by the local server.
    name = record["image_url"].removeprefix("http://127.0.0.1:8000/images/")
    assert (tmp_path / "data" / "images" / name[:2] / name).is_file()
    assert "features" not in record  # ~5 KB of base64 views nobody reads, unless asked for
    code, record = run(capsys, "--data-dir", data, "add", "--features", "--entity-id", "A1", str(catalog / "SKU-1.jpg"))
    assert code == ExitCode.OK and record["features"] and record["hash"]
    code, removed = run(capsys, "--data-dir", data, "remove", "A1")
    assert code == ExitCode.OK and removed == {"removed": "A1"}
    assert not (tmp_path / "data" / "images" / name[:2] / name).exists()  # it went with its last record
    code, error = run(capsys, "--data-dir", data, "remove", "A1")
    assert code == ExitCode.FAILED and error["error"]["code"] == "not_found"


def test_a_kept_pictures_address_is_the_running_servers_else_the_default_said_at_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, catalog: Path
) -> None:
    """Issue 86: `add FILE` wrote http://127.0.0.1:8000/images/... whatever port the server ran on.
    A server records where it answers in its data dir while it runs (local/address.py)."""
    from dupcheck_tools.local.address import SERVER_FILE
    from dupcheck_tools.local.server import LocalServer

    data = tmp_path / "data"
    config = Settings.from_env({}, data_dir=data, port=0)
    server = LocalServer(build_service(config), config)
    server.start_in_thread()
    try:
        assert server.url.rsplit(":", 1)[1] != "8000"
        code, record = run(capsys, "--data-dir", str(data), "add", "--entity-id", "A1", str(catalog / "SKU-1.jpg"))
        assert code == ExitCode.OK and record["image_url"].startswith(f"{server.url}/images/")
        code, summary = run(capsys, "--data-dir", str(data), "index-dir", str(catalog))
        assert summary["base_url"] == server.url
    finally:
        server.shutdown()
    assert not (data / SERVER_FILE).exists()

    # A record left by a server that died (no lock held on it) is passed over; a terminal is told.
    (data / SERVER_FILE).write_text(json.dumps({"url": "http://127.0.0.1:8001", "pid": 1}))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code = main(["--data-dir", str(data), "add", "--entity-id", "A2", str(catalog / "SKU-2.jpg")])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK and json.loads(out)["image_url"].startswith("http://127.0.0.1:8000/images/")
    assert err.startswith(f"note: no dupcheck server is running on {data}: the kept images' address is "
                          "http://127.0.0.1:8000/images/...") and "--base-url" in err  # fmt: skip
    code, record = run(capsys, "--data-dir", str(data), "add", "--base-url", "https://dupcheck.shop.test",
                       "--entity-id", "A3", str(catalog / "SKU-3.jpg"))  # fmt: skip
    assert record["image_url"].startswith("https://dupcheck.shop.test/images/")


def test_the_demo_keeps_its_records_out_of_the_store_serve_and_add_use(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, catalog: Path
) -> None:
    """Issue 86: `make run` left its 26 demo records in ./data, where a shop's first catalog then began.
    The demo runs on ./demo-data (or --data-dir), whatever DUPCHECK_DATA_DIR says, and refuses a
    store that holds other records."""
    from dupcheck_tools.cli import build_parser
    from dupcheck_tools.cli.serve import DEMO_DATA_DIR, check_demo_store, demo_settings
    from dupcheck_tools.local.demo import DEMO_IDS

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(tmp_path / "shop"))
    parser = build_parser()
    assert demo_settings(parser.parse_args(["demo"])).data_dir == DEMO_DATA_DIR == Path("demo-data")
    assert demo_settings(parser.parse_args(["--data-dir", "elsewhere", "demo"])).data_dir == Path("elsewhere")
    assert Settings.from_env().data_dir == tmp_path / "shop"  # what serve, add and backfill use
    assert len(DEMO_IDS) == 26 and DEMO_IDS[0] == "demo-00" and DEMO_IDS[-1] == "demo-25"

    shop = build_service(Settings.from_env())
    shop.registrar.register_bytes(entity_id="SHOP-1", sku="S", image_url="", data=encode(product_image(501)))
    with pytest.raises(UsageError, match=r"holds 1 records besides the demo's.*--data-dir, default demo-data"):
        check_demo_store(shop, tmp_path / "shop")
    demo = build_service(Settings.from_env({}, data_dir=tmp_path / "demo-data"))
    for entity_id in DEMO_IDS[:3]:  # a demo store run before: the demo runs on it again
        demo.registrar.register_bytes(entity_id=entity_id, sku="", image_url="", data=encode(product_image(502)))
    check_demo_store(demo, tmp_path / "demo-data")


def test_add_checks_for_duplicates_first(capsys: pytest.CaptureFixture[str], tmp_path: Path, catalog: Path) -> None:
    data, picture = str(tmp_path / "data"), str(catalog / "SKU-1.jpg")
    assert run(capsys, "--data-dir", data, "add", "--entity-id", "A1", picture)[0] == ExitCode.OK
    code, added = run(capsys, "--data-dir", data, "add", "--entity-id", "A2", picture)  # warn: added, and said
    assert code == ExitCode.OK and added["on_duplicate"] == "warn" and added["duplicates"][0]["entity_id"] == "A1"
    code, error = run(capsys, "--data-dir", data, "add", "--on-duplicate", "reject", "--entity-id", "A3", picture)
    assert code == ExitCode.FAILED and error["error"]["code"] == "duplicate_image"
    assert {m["entity_id"] for m in error["error"]["matches"]} == {"A1", "A2"}
    assert run(capsys, "--data-dir", data, "remove", "A3")[1]["error"]["code"] == "not_found"  # nothing stored
    code, added = run(capsys, "--data-dir", data, "add", "--on-duplicate", "allow", "--entity-id", "A3", picture)
    assert code == ExitCode.OK and added["checked"] is False and added["duplicates"] == []


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


# -- the first day's mistakes: one sentence that says what to do, exit 2 ----------------------------


@pytest.mark.parametrize(
    ("argv", "says", "usage"),
    [
        (["find", "x.jpg", "--top", "500"], "argument --top: must be a whole number from 1 to 100, not '500'",
         "usage: python -m dupcheck find [-h] [--top N]"),
        (["find", "x.jpg", "--bogus"], "unrecognized arguments: --bogus", "usage: python -m dupcheck find"),
        (["add", "x.jpg"], "the following arguments are required: --entity-id", "usage: python -m dupcheck add"),
        (["duplicates", "--radius", "seven"], "argument --radius: invalid int value", "python -m dupcheck duplicates"),
        (["fnd"], "argument COMMAND: invalid choice: 'fnd'", "usage: python -m dupcheck [-h]"),
    ],
)  # fmt: skip
def test_argument_mistakes_are_the_json_line_with_the_commands_usage_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str, usage: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == ExitCode.USAGE
    error = one_error_line(capsys)
    assert error["code"] == "usage" and error["message"].startswith(says) and usage in error["message"]


def test_a_malformed_url_a_command_passes_on_is_a_usage_mistake(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--data-dir", str(tmp_path), "find", "http:///no-host.jpg"]) == ExitCode.USAGE
    assert one_error_line(capsys) == {"code": "invalid_request", "message": "image URL has no host"}


def test_a_misspelt_setting_is_refused_naming_the_closest_real_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cases = {
        "DUPCHECK_ALLOW_LOOPBACK": "did you mean DUPCHECK_ALLOW_LOOPBACK_URLS?",
        "DUPCHECK_MAX_IMAGE_BYTE": "did you mean DUPCHECK_MAX_IMAGE_BYTES?",
        "DUPCHECK_TABLE": "did you mean DUPCHECK_TABLE_NAME?",
        "DUPCHECK_PORTS": "did you mean DUPCHECK_PORT?",
        "DUPCHECK_SHOE_SIZE": "the settings are listed in docs/configuration.md",
    }
    for given, meant in cases.items():
        with monkeypatch.context() as env:
            env.setenv(given, "1")
            assert main(["--data-dir", str(tmp_path), "remove", "x"]) == ExitCode.USAGE
        error = one_error_line(capsys)
        assert (error["code"], error["message"]) == ("invalid_settings", f"unknown setting {given}: {meant}")


def test_the_dynamodb_store_without_a_region_says_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Was botocore's NoRegionError: a 78-line traceback."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "DUPCHECK_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    for argv in (["duplicates", "--target", "dynamodb", "--table", "T", "--out", str(tmp_path / "r")],
                 ["export", "--target", "dynamodb", "--table", "T", "--out", str(tmp_path / "x.jsonl")]):  # fmt: skip
        assert main(argv) == ExitCode.USAGE, argv
        error = one_error_line(capsys)
        assert error["code"] == "invalid_settings"
        assert error["message"].startswith("the DynamoDB store needs an AWS region: pass --region")


def test_a_busy_port_is_one_sentence_saying_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("serve", "demo"):  # `make run` runs demo
            assert main(["--data-dir", str(tmp_path), command, "--port", str(port)]) == ExitCode.USAGE
            message = one_error_line(capsys)["message"]
            assert message == (f"cannot serve on 127.0.0.1:{port}: the port is in use (another dupcheck server?); "
                               f"stop that server, or choose another port: --port {port + 1}, or "
                               f"DUPCHECK_PORT={port + 1} make run"), command  # fmt: skip


def test_serve_says_how_many_hashes_it_indexed_or_that_it_is_loading(tmp_path: Path, catalog: Path) -> None:
    data = tmp_path / "data"
    assert subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "index-dir", str(catalog)],
                          capture_output=True, timeout=60).returncode == ExitCode.FAILED  # the text file  # fmt: skip
    service = build_service(Settings.from_env({}, data_dir=data), load_index=False)
    assert serving_line(service, "http://x", loading=True) == (
        "dupcheck serving on http://x (loading the index of 5 records; GET /health says when it is ready); "
        "web app: http://x/"
    )
    proc = subprocess.Popen([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        # Whichever it is when the line is printed: never "(0 hashes indexed)" over 5 records.
        if "loading" in first:
            assert (
                "loading the index of 5 records" in first
                and proc.stdout.readline() == "index ready: 5 hashes indexed\n"
            )
        else:
            assert "(5 hashes indexed)" in first, first
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_serve_and_demo_say_what_they_do(capsys: pytest.CaptureFixture[str]) -> None:
    for command, says in (("serve", "Serves the API (docs/api.md) and the web app"),
                          ("demo", "Generates a demo catalog (26 product pictures")):  # fmt: skip
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert says in text and "--port PORT" in text, command


def test_the_dupcheck_console_script_runs_the_command_line(tmp_path: Path) -> None:
    """pyproject.toml's [project.scripts] `dupcheck`, as installed into this environment."""
    (script,) = entry_points(group="console_scripts", name="dupcheck")
    assert script.load() is main
    installed = Path(sys.executable).parent / "dupcheck"
    result = subprocess.run([str(installed), "--data-dir", str(tmp_path), "remove", "x"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == ExitCode.FAILED and json.loads(result.stderr)["error"]["code"] == "not_found"
    result = subprocess.run([str(installed), "find", "x.jpg", "--top", "0"], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert (
        result.returncode == ExitCode.USAGE and "usage: dupcheck find" in json.loads(result.stderr)["error"]["message"]
    )
