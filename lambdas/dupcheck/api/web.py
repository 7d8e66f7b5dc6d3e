"""The web app's files, served by the API's own routes: `GET /` (the page) and `GET /web/<name>`.

Why the API serves them rather than a bucket or a CDN: one origin, so the page calls the API with
no CORS and its key is sent to nothing else; one deployment, so the page cannot lag behind the
API it calls; and it works offline, because every file it loads is here. The files are plain
HTML, CSS and ES modules (no build step), read once per process from `dupcheck/web/`, a flat
folder: a name has no slash, and only a name found there is served.

Every file is text, so it travels through API Gateway as text (no base64, whatever the
binary media types say). The page's icon is a data URL: there is no image file to serve.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.resolver import STAGE_PREFIX
from dupcheck.core.errors import NotFound

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
WEB_PREFIX = "/web"  # the files' route; `/` is the page
PAGE = "index.html"
_BASE = '<base href="/">'
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}  # fmt: skip
# Scripts, styles and API calls from this origin only (nothing inline); pictures also from the
# catalog's own image hosts, and from blob: and data: URLs (a chosen file, a camera shot).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' http: https: data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-cache",  # revalidate: a deploy shows at once
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # catalog image hosts learn nothing of where the page runs
}


def router() -> Router:
    """`GET /` and `GET /web/<name>`: open like /docs, the page shows nothing until its calls bring the key."""
    routes = Router()

    @routes.get("/", include_in_schema=False)
    def web_page() -> Response[str]:
        event = routes.current_event
        requested = (event.raw_event.get("requestContext") or {}).get("path") or event.path  # with the stage
        return Response(200, files()[PAGE][0], page(requested), headers=HEADERS)

    @routes.get(f"{WEB_PREFIX}/<name>", include_in_schema=False)
    def web_file(name: str) -> Response[str]:
        found = asset(name)
        if found is None:
            raise NotFound(f"the web app has no file {name!r}")
        return Response(200, found[0], found[1], headers=HEADERS)

    return routes


@cache
def files() -> dict[str, tuple[str, str]]:
    """name -> (content type, text) of every file the app serves."""
    return {path.name: (_TYPES[path.suffix], path.read_text(encoding="utf-8"))
            for path in sorted(WEB_DIR.iterdir()) if path.suffix in _TYPES}  # fmt: skip


def asset(name: str) -> tuple[str, str] | None:
    """(content type, text) of a file under /web/, or None. The page itself is only served at `/`,
    where its <base href> is written for it."""
    return None if name == PAGE else files().get(name)


def page(requested_path: str) -> str:
    """The page, its relative links resolved against where it was asked for: `/v1/` through
    API Gateway's stage (or locally with the prefix), `/` otherwise."""
    staged = requested_path == STAGE_PREFIX or requested_path.startswith(STAGE_PREFIX + "/")
    return files()[PAGE][1].replace(_BASE, f'<base href="{STAGE_PREFIX}/">' if staged else _BASE, 1)
