#!/usr/bin/env python3
"""The web app's screenshots in docs/img: headless Chromium over the demo catalog of `make run`.

    make screenshots        (or .venv/bin/python -m scripts.screenshots)

Writes web-check.png (a desktop check that finds a duplicate), web-duplicates.png (the duplicate
groups, found by a scan started from the page), web-settled.png (its first group settled: kept,
the other left and marked resolved), web-import.png (a catalog file imported, with the
rows that failed), web-phone.png (the check page on a 390 px phone, a new product),
web-lookalikes.png (a check's "Looks like these products": the product in three other colours
first), web-marks-photo.png and web-marks-product.png (a tee with a print on its chest compared
with its catalog photo under each `marks` setting, the mark outlined on both) and
duplicates-report.png (the report.html `python -m dupcheck duplicates` wrote for the demo, opened
from disk). Look at them before committing:
they are the README's picture of the product.

Beside them it records what they show: web-files.sha256, the hash of every file of the web app
(lambdas/dupcheck/web/) when they were taken. tests/unit/scripts/test_screenshots.py fails once those
files change, until the pictures are taken again. Before each check is shot, its answer is held
to docs/api.md's rules (a duplicate first, match percentages in non-increasing order), so a
picture of an answer that breaks them is never written.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import ImageDraw
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from dupcheck.api.web import WEB_DIR
from dupcheck.bootstrap import build_service
from dupcheck.core.models import Marks
from dupcheck.core.settings import Settings
from dupcheck_tools.local.demo import DEMO_SEED, build_demo
from dupcheck_tools.local.server import LocalServer
from dupcheck_tools.samples import encode, product_image
from scripts.browser import chromium, desktop, phone

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "img"
RECORD = IMAGES / "web-files.sha256"  # the web app's files when the pictures were taken
# Every picture on the page has arrived (or was replaced by its note), and nothing is loading.
_SETTLED = """return [...document.images].every(i => !i.getAttribute('src') || (i.complete && i.naturalWidth > 0))
    && !document.querySelector('.answer.busy:not([hidden])') && !document.body.innerText.includes('Loading')"""


def _until(driver: WebDriver, condition: Callable[[WebDriver], Any]) -> None:
    WebDriverWait(driver, 20).until(condition)


def web_files() -> str:
    """web-files.sha256's text: one `sha256  path` line per file of the web app, as sha256sum writes them."""
    lines = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(ROOT).as_posix()}"
             for path in sorted(WEB_DIR.iterdir()) if path.is_file()]  # fmt: skip
    return "\n".join(lines) + "\n"


def answer_follows_the_rules(driver: WebDriver) -> None:
    """docs/api.md's rules for the check shown: every duplicate first, percentages never rising."""
    cards = driver.execute_script(
        "return [...document.querySelectorAll('#match-grid > li')].map(li => [li.className, "
        "parseFloat(li.querySelector('.percent').textContent)])"
    )
    verdicts = ["duplicate" in kind for kind, _ in cards]
    percents = [percent for _, percent in cards]
    if verdicts != sorted(verdicts, reverse=True) or percents != sorted(percents, reverse=True):
        raise SystemExit(f"the check's answer breaks docs/api.md's rules, not shot: {cards}")


def shoot(driver: WebDriver, url: str, name: str, upload: Path | None = None) -> Path:
    driver.get("about:blank")
    driver.get(url)
    if upload is not None:
        driver.find_element(By.CSS_SELECTOR, "#check-file").send_keys(str(upload))
        _until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#check-body").is_displayed())
        answer_follows_the_rules(driver)
    _until(driver, lambda d: d.execute_script(_SETTLED))
    path = IMAGES / name
    driver.save_screenshot(str(path))
    return path


def shoot_scan(driver: WebDriver, base_url: str, name: str) -> Path:
    """The Duplicates page once a scan started from its button has found the demo's groups."""
    driver.get("about:blank")
    driver.get(f"{base_url}/#duplicates")
    _until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#scan-start").is_enabled())
    driver.find_element(By.CSS_SELECTOR, "#scan-start").click()
    _until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#scan-title").text == "Scan finished")
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#group-list > li"))
    _until(driver, lambda d: d.execute_script(_SETTLED))
    path = IMAGES / name
    driver.save_screenshot(str(path))
    return path


def shoot_settled(driver: WebDriver, name: str) -> Path:
    """The Duplicates page (as shoot_scan left it) once its first group is settled: the record kept,
    the other left in the catalog and marked resolved, with its Undo."""
    driver.find_element(By.CSS_SELECTOR, "#group-list > li .card.keep .actions button").click()
    _until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#settle-dialog").get_attribute("open") is not None)
    driver.find_element(By.CSS_SELECTOR, "#settle-dialog button[value=resolve]").click()
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#group-list > li.settled"))
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
    # Done: the heading counts what happened ("8 of 10 rows imported", words.js doneTitle).
    _until(driver, lambda d: "imported" in d.find_element(By.CSS_SELECTOR, "#import-job-title").text.lower())
    _until(driver, lambda d: d.execute_script(_SETTLED))
    path = IMAGES / name
    driver.save_screenshot(str(path))
    return path


def shoot_lookalikes(driver: WebDriver, server: LocalServer, static_dir: Path, name: str) -> Path:
    """A check of a demo product the catalog also sells in three other colours: under the answer,
    "Looks like these products" shows those first."""
    query = static_dir / "lookalike-query.jpg"
    query.write_bytes(encode(product_image(DEMO_SEED + 7), "JPEG", quality=80))
    for i, hue in enumerate((0.08, 0.42, 0.7)):
        server.service.registrar.register_bytes(entity_id=f"demo-07-colour-{i + 1}", sku=f"DEMO-007-C{i + 1}",
                                                image_url=f"{server.url}/demo/colour-{i}.jpg",
                                                data=encode(product_image(DEMO_SEED + 7, hue=hue)))  # fmt: skip
        (static_dir / f"colour-{i}.jpg").write_bytes(encode(product_image(DEMO_SEED + 7, hue=hue)))
    driver.get("about:blank")
    driver.get(f"{server.url}/")
    driver.find_element(By.CSS_SELECTOR, "#check-file").send_keys(str(query))
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#lookalike-grid > li"))
    _until(driver, lambda d: d.execute_script(_SETTLED))
    driver.execute_script("document.getElementById('lookalikes').scrollIntoView()")
    path = IMAGES / name
    driver.save_screenshot(str(path))
    return path


def shoot_marks(driver: WebDriver, server: LocalServer, static_dir: Path) -> list[Path]:
    """A tee's photo in the catalog, and the same photo with a design printed on its chest checked
    under each `marks` setting (issue 83): `photo`, a copy with a mark added; `product`, another
    print. Each is shot comparing the two side by side, the mark outlined on both: web-marks-photo.png,
    web-marks-product.png."""
    plain = product_image(DEMO_SEED + 101, (480, 480))  # not one of the demo's own products
    printed = plain.copy()
    draw = ImageDraw.Draw(printed)
    draw.rectangle((205, 200, 275, 262), fill=(20, 30, 160))
    draw.ellipse((222, 214, 258, 248), fill=(250, 200, 0))
    query = static_dir / "printed-tee.jpg"
    query.write_bytes(encode(printed))
    (static_dir / "tee.jpg").write_bytes(encode(plain))
    server.service.registrar.register_bytes(entity_id="demo-tee", sku="DEMO-TEE",
                                            image_url=f"{server.url}/demo/tee.jpg", data=encode(plain))  # fmt: skip
    written = []
    for marks in Marks:
        driver.get("about:blank")
        driver.get(f"{server.url}/")
        Select(driver.find_element(By.CSS_SELECTOR, "#check-marks")).select_by_value(marks.value)
        driver.find_element(By.CSS_SELECTOR, "#check-file").send_keys(str(query))
        _until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#check-body").is_displayed())
        driver.find_element(By.CSS_SELECTOR, "#match-grid > li button.thumb").click()
        _until(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#compare-side .mark-box")) == 2)
        _until(driver, lambda d: d.execute_script(_SETTLED))
        path = IMAGES / f"web-marks-{marks.value}.png"
        driver.save_screenshot(str(path))
        written.append(path)
    server.service.records.remove("demo-tee")
    return written


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
                       shoot_scan(driver, server.url, "web-duplicates.png"),
                       shoot_settled(driver, "web-settled.png"),
                       shoot(driver, report_page, "duplicates-report.png")]  # fmt: skip
            phone(driver, scale=1)
            written.append(shoot(driver, f"{server.url}/", "web-phone.png", demo.distinct_query))
            desktop(driver)  # last two: they add products the checks above would find
            written.append(shoot_lookalikes(driver, server, settings.data_dir / "demo", "web-lookalikes.png"))
            written.append(shoot_import(driver, server.url, settings.data_dir / "demo", "web-import.png"))
            written += shoot_marks(driver, server, settings.data_dir / "demo")
        finally:
            driver.quit()
            server.shutdown()
    RECORD.write_text(web_files())
    for path in [*written, RECORD]:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
