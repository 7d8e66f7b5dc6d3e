#!/usr/bin/env python3
"""The web app's screenshots in docs/img: headless Chromium over the demo catalog of `make run`.

    make screenshots        (or .venv/bin/python -m scripts.screenshots)

Writes web-check.png (a desktop check that finds a duplicate), web-duplicates.png (the duplicate
groups), web-import.png (a catalog file imported, with the rows that failed), web-phone.png (the
check page on a 390 px phone, a new product) and duplicates-report.png (the report.html `python
-m dupcheck duplicates` wrote for the demo, opened from disk). Look at them before committing:
they are the README's picture of the product.
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
from dupcheck_tools.samples import encode, product_image
from scripts.browser import chromium, desktop, phone

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


def shoot_import(driver: WebDriver, base_url: str, static_dir: Path, name: str) -> Path:
    """A merchandiser's import: eight new products, one picture gone from its host, one row
    without an address; the page once the job is done."""
    new = static_dir / "new"
    new.mkdir(exist_ok=True)
    rows = []
    for i in range(8):
        (new / f"new-{i}.jpg").write_bytes(encode(product_image(5000 + i)))
        rows.append(f"new-{i},NEW-{i:03d},{base_url}/demo/new/new-{i}.jpg")
    rows += [f"new-8,NEW-008,{base_url}/demo/new/removed.jpg", "new-9,NEW-009,"]
    catalog = static_dir / "new-products.csv"
    catalog.write_text("entity_id,sku,image_url\n" + "\n".join(rows) + "\n")
    driver.get("about:blank")
    driver.get(f"{base_url}/#import")
    driver.find_element(By.CSS_SELECTOR, "#import-file").send_keys(str(catalog))
    _until(driver, lambda d: "Imported" in d.find_element(By.CSS_SELECTOR, "#import-job-title").text)
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
            desktop(driver)  # last: the import adds products the checks above would find
            written.append(shoot_import(driver, server.url, settings.data_dir / "demo", "web-import.png"))
        finally:
            driver.quit()
            server.shutdown()
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
