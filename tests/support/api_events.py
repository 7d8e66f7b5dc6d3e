"""API Gateway REST events as Lambda gets them, fed to a resolver: the unit tests of the routes."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parents[1] / "events"
MAX_BYTES = 200_000


def event(
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    """The canned GET event, reshaped: the fields Lambda really sends stay as captured."""
    base = json.loads((EVENTS / "apigw_find_similar_get.json").read_text())
    ev = copy.deepcopy(base)
    ev.update(httpMethod=method, path=path, resource=path)
    ev["queryStringParameters"] = query
    ev["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if content_type:
        ev["headers"]["Content-Type"] = content_type
        ev["multiValueHeaders"]["Content-Type"] = [content_type]
    ev["body"] = base64.b64encode(body).decode() if body is not None else None
    ev["isBase64Encoded"] = body is not None
    return ev


def call(app, ev: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: ANN001
    response = app.resolve(ev, None)
    body = json.loads(response["body"]) if response["body"] else {}
    return response["statusCode"], body


class QueuedOnly:
    """An import starter that starts nothing: jobs stay queued."""

    def start(self, job: object) -> None:
        pass
