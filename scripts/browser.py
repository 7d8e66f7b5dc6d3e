"""Headless Chromium from Debian's packages (`chromium`, `chromium-driver`; `make test` installs
them), driven by selenium: the web app's browser tests and the screenshots in docs/img.

selenium is handed the system's chromedriver, so it never looks for, or downloads, another.
Chromium is kept off the network beyond the page: no background services, updates or pings,
and its fake camera stands in for a webcam.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-pings",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",  # a webcam that needs no click
)  # fmt: skip


def chromium(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    """A headless Chromium logging its console and its network traffic (see `requests`)."""
    driver_path, browser_path = shutil.which("chromedriver"), shutil.which("chromium")
    if driver_path is None or browser_path is None:
        raise RuntimeError("chromium and chromium-driver are not installed: `make browser` installs them")
    options = Options()
    options.binary_location = browser_path
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


def requests(driver: webdriver.Chrome) -> Iterator[str]:
    """Every URL the page asked for since the last call (from the performance log, which it drains)."""
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            yield message["params"]["request"]["url"]


def phone(driver: webdriver.Chrome, width: int = 390, height: int = 844, scale: float = 2) -> None:
    """Lay the page out as a phone of `width` CSS pixels does (its viewport, touch, mobile)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def desktop(driver: webdriver.Chrome) -> None:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
