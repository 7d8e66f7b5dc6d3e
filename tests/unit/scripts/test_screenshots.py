"""The web app's screenshots in docs/img cannot go stale unnoticed: `make screenshots` records the
hash of every file of the web app beside them (web-files.sha256), and this test fails as soon as
one of those files differs from what was shot."""

from __future__ import annotations

from scripts.screenshots import RECORD, web_files


def test_the_screenshots_were_taken_of_the_web_app_as_it_is() -> None:
    recorded = dict(line.split("  ", 1)[::-1] for line in RECORD.read_text().splitlines())
    current = dict(line.split("  ", 1)[::-1] for line in web_files().splitlines())
    changed = sorted(name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name))
    assert not changed, (
        f"the web app changed since docs/img's screenshots were taken ({', '.join(changed)}): run `make "
        "screenshots`, look at the pictures, and commit them with docs/img/web-files.sha256"
    )
