"""A JSON HTTP client for tests of the local server: (status, body, headers), refusals included."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


def call(
    url: str, method: str = "GET", body: bytes | dict | None = None, content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    """`body` as a dict is sent as JSON. A JSON answer is parsed; any other is returned as bytes."""
    if isinstance(body, dict):
        body, content_type = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        raw, status, got = err.read(), err.code, dict(err.headers)
    if got.get("Content-Type", "").startswith("application/json"):
        return status, json.loads(raw) if raw else {}, got
    return status, raw, got


def wait_for(condition: Callable[[], Any], timeout: float = 30, every: float = 0.05) -> Any:
    """Poll until `condition()` is truthy; its value. Fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s"
        time.sleep(every)
