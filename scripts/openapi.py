#!/usr/bin/env python3
"""Write docs/openapi.json, the API's contract, from the routes (`make openapi`).

The document is generated from the same routes and models the API serves; a test fails when
the committed file differs from what the server answers at /openapi.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dupcheck.api import build_resolver, openapi_document
from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def generated() -> str:
    with tempfile.TemporaryDirectory() as data_dir:
        service = build_service(Settings.from_env({}, data_dir=Path(data_dir)))
        return openapi_document(build_resolver(service, max_body_bytes=1))


if __name__ == "__main__":
    DOCUMENT.write_text(generated())
    print(f"wrote {DOCUMENT}")
