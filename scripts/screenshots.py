#!/usr/bin/env python3
"""The web app's screenshots in docs/img: headless Chromium over the demo catalog of `make run`.

    make screenshots        (or .venv/bin/python -m scripts.screenshots)

Writes web-check.png (a desktop check that finds a duplicate), web-phone.png (the same page on
a 390 px phone, a new product), web-duplicates.png (the duplicate groups) and
duplicates-report.png (the report.html `python -m dupcheck duplicates` wrote for the demo,
opened from disk). Look at them before committing: they are the README's picture of the product.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.local.demo import build_demo
from dupcheck_tools.local.server import LocalServer
from scripts.browser import chromium, phone

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "img"
# Every picture on the page has arrived (or was replaced by its note), and nothing is loading.
_SETTLED = """return [...document.images].every(i => !i.getAttribute('src') || (i.complete && i.naturalWidth > 0))
    && !document.querySelector('.answer.busy:not([hidden])') && !document.body.innerText.includes('Loading')"""


def _until(driver: WebDriver, condition: Callable[[WebDriver], Any]) -> None:
    WebDriverWait(driver, 20).until(condition)


def shoot(driver: WebDriver, url: str, name: str, upload: Path | None = None) -> Path:
    driver.get("about:blank")
    driver.get(url)
    if upload is not None:
        driver.find_element(By.CSS_SELECTOR, "#check-file").send_keys(str(upload))
        _until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#check-body").is_displayed())
    _until(driver, lambda d: d.execute_script(_SETTLED))
    path = IMAGES / name
    driver.save_screenshot(str(path))
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({}, data_dir=Path(tmp), port=0, allow_loopback_urls=True)
        server = LocalServer(build_service(settings), settings, static_dir=settings.data_dir / "demo")
        server.start_in_thread()
        driver = chromium(1280, 1200)
        try:
            demo = build_demo(server.service, settings.data_dir / "demo", server.url)
            report_page = (demo.report.parent / "report.html").as_uri()
            written = [shoot(driver, f"{server.url}/", "web-check.png", demo.duplicate_query),
                       shoot(driver, f"{server.url}/#duplicates", "web-duplicates.png"),
                       shoot(driver, report_page, "duplicates-report.png")]  # fmt: skip
            phone(driver, scale=1)
            written.append(shoot(driver, f"{server.url}/", "web-phone.png", demo.distinct_query))
        finally:
            driver.quit()
            server.shutdown()
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
