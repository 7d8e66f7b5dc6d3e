"""scripts/compare_answers.py, the cut-over check of docs/migration.md: a stand-in for the
prototype and the real local server, both on 127.0.0.1, asked about loopback image URLs."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.local.server import LocalServer
from scripts import compare_answers
from scripts.helpers.loopback import ImageServer


@pytest.fixture
def prototype() -> Iterator[tuple[str, dict[str, list[int] | None]]]:
    """The prototype's call, `GET /find_similar/?image_url=..&top=..`, answered from a table of
    url -> entity ids (its ids were numbers), or a 500 for None."""
    answers: dict[str, list[int] | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            ids = answers.get(parse_qs(parts.query)["image_url"][0]) if parts.path == "/find_similar/" else None
            body = json.dumps({"results": [{"entity_id": i, "score": 0.9} for i in ids or []]}).encode()
            self.send_response(200 if ids is not None else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()
    server.server_close()


def test_compare_answers_reports_agreement(
    tmp_path: Path, image_server: ImageServer, prototype: tuple[str, dict[str, list[int] | None]],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    settings = Settings.from_env(
        {}, data_dir=tmp_path / "data", port=0, api_key=SecretStr("k3y"), allow_loopback_urls=True
    )
    service = build_service(settings)
    urls = [image_server.image(f"/img/{i}.jpg", seed=10 + i) for i in range(4)]
    for i, url in enumerate(urls[:3]):
        service.registrar.register(str(100 + i), f"S{i}", url)
    old_base, answers = prototype
    answers.update({urls[0]: [100, 101], urls[1]: [102], urls[2]: None, urls[3]: []})
    listing = tmp_path / "urls.txt"
    listing.write_text("# asked of both\n" + "\n".join(urls) + "\n\n")
    server = LocalServer(service, settings)
    server.start_in_thread()
    try:
        code = compare_answers.main([
            "--old", old_base, "--new", server.url, "--api-key", "k3y", "--urls", str(listing),
            "--out", str(tmp_path / "answers.csv"), "--min-agreement", "0.5",
        ])  # fmt: skip
    finally:
        server.shutdown()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # url 0 agrees; url 1 does not (the prototype named another id); url 2: the prototype failed;
    # url 3 (in neither catalog): the prototype answered nothing, dupcheck its nearest, not a duplicate.
    assert summary == {"urls": 4, "both_answered": 3, "same_first": 1, "old_errors": 1, "new_errors": 0,
                       "agreement": 0.3333, "out": str(tmp_path / "answers.csv")}  # fmt: skip
    assert code == 1  # below --min-agreement
    with open(tmp_path / "answers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["old_first"], r["new_first"], r["same_first"], r["new_verdict"]) for r in rows[:3]] == [
        ("100", "100", "True", "duplicate"),
        ("102", "101", "False", "duplicate"),
        ("", "102", "False", "duplicate"),
    ]
    assert rows[3]["old_first"] == "" and rows[3]["new_first"] and rows[3]["new_verdict"] != "duplicate"
    assert rows[2]["old_error"].startswith("HTTP 500")
