"""The OpenAPI contract's shared pieces: the document's header, each error status's meaning, the
request bodies Powertools cannot derive from a signature, and the document as committed.

docs/openapi.json is the AWS deployment's contract (the key required). A local server without
`DUPCHECK_API_KEY` serves the same document without the key (`openapi_document(keyed=False)`):
the document a client is generated from describes the server it came from.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dupcheck.api.import_schemas import IMPORT_REQUEST, inline_schema
from dupcheck.api.schemas import ErrorBody, PhotoUpload
from dupcheck.api.uploads import CATALOG_FIELDS, FILE_FIELDS

if TYPE_CHECKING:  # pragma: no cover
    from dupcheck.api.resolver import DupcheckResolver

API_TITLE = "dupcheck"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Near-duplicate image detection for e-commerce catalogs: is this image already in my catalog? "
    "Every route but /health (and the web app's page) needs the API key in the x-api-key header (on AWS "
    'always; locally when DUPCHECK_API_KEY is set). Errors are always JSON: {"error": {"code", "message"}}.'
)
KEYLESS_DESCRIPTION = (
    "Near-duplicate image detection for e-commerce catalogs: is this image already in my catalog? "
    "This server needs no API key (a local server without DUPCHECK_API_KEY). "
    'Errors are always JSON: {"error": {"code", "message"}}.'
)
API_KEY_HEADER = "x-api-key"
SECURITY_SCHEME = "apiKey"
OPEN: dict[str, Any] = {"security": []}  # an operation that needs no API key

REASONS = {
    400: "A parameter or the body is missing or malformed (`invalid_request`), or names a query parameter or "
    "body field the route does not take (`unknown_parameter`: the message names it and the closest known one).",
    403: "The image URL is not allowed (`url_not_allowed`: scheme, address or host), or the API key is "
    "missing or wrong (`forbidden`).",
    404: "No such item, import, picture, duplicate scan or report, or an id no route takes (`not_found`).",
    409: "Not in a state that allows this (`conflict`): an import finished, or its catalog already given; a "
    "duplicate scan already queued or running; a kept image a record still names; the results CSV of an "
    "import still running (AWS).",
    413: "The image is over the byte or pixel limit, or would take more memory to decode than one image may "
    "(`image_too_large`); or the catalog is over the byte or row limit (`catalog_too_large`).",
    415: "Not an image format dupcheck decodes, or the wrong body type (`unsupported_media_type`).",
    422: "A supported format, but corrupt or truncated (`invalid_image`); an image URL that cannot be fetched as "
    "given: its host does not resolve or refuses the connection, it answers a 4xx, or it redirects nowhere "
    "usable (`image_unreachable`); a catalog that cannot be read: no entity_id or URL column, not UTF-8, no "
    "rows (`invalid_catalog`).",
    500: "An internal error (`internal_error`): a bug, logged with the request id.",
    502: "The image host failed or is busy: a 5xx, 408 or 429, a connection broken mid-download "
    "(`upstream_error`); a retry may pass.",
    503: "The store or the search index cannot be reached now (`store_unavailable`, `index_unavailable`), or "
    "the server is busy (`server_busy`: Retry-After says when to come back): too many large images being "
    "decoded at once, too many large catalogs being read (the local server), a long results CSV still being "
    "written (AWS).",
    504: "The image host was too slow (`upstream_timeout`).",
}


def responses(success: int, model: type | None, description: str, *errors: int) -> dict[int, Any]:
    """A route's OpenAPI responses: its success (with `model` as the body) and its error statuses,
    each with the error body (400 on every route: a query parameter it does not take; 500 on every
    route: a bug, but a documented shape)."""
    ok: dict[str, Any] = {"description": description}
    if model is not None:
        ok["content"] = {"application/json": {"model": model}}
    body = {"content": {"application/json": {"model": ErrorBody}}}
    statuses = dict.fromkeys((400, *errors, 500))
    out = {success: ok, **{status: {"description": REASONS[status], **body} for status in statuses}}
    if 503 in out:
        out[503]["headers"] = RETRY_AFTER
    return out


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again (server_busy).",
                               "schema": {"type": "integer", "minimum": 1}}}  # fmt: skip


_FILE = {"type": "string", "format": "binary", "minLength": 1}
_BINARY = {"schema": _FILE}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: its bytes, a multipart form with a file field "
        f"({', '.join(FILE_FIELDS)}; else the first part with a filename), or JSON photoData. "
        "The format is decided from the bytes, never from Content-Type.",
        "content": {
            "image/*": _BINARY,
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": _FILE},
                    "required": ["file"],
                }
            },
            "application/json": {"schema": PhotoUpload.model_json_schema()},
        },
    }
}
CATALOG_BODY = {
    "requestBody": {
        "required": True,
        "description": "The catalog: CSV (a header row, then entity_id, sku, image_url or small_image) or JSON "
        "Lines, UTF-8, optionally gzipped; as the body itself or a multipart form's file "
        f"({', '.join(CATALOG_FIELDS)}). Or JSON: a catalog_url to download, items (up to 1,000 rows), or "
        "upload: true for a catalog sent afterwards (docs/api.md, imports).",
        "content": {
            "text/csv": _BINARY,  # a file: any bytes (UTF-8 text is what it reads)
            "application/x-ndjson": _BINARY,
            "application/gzip": _BINARY,
            "multipart/form-data": {"schema": {"type": "object", "properties": {"file": _FILE}, "required": ["file"]}},
            "application/json": {"schema": inline_schema(IMPORT_REQUEST.json_schema())},
        },
    }
}
CATALOG_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The catalog of an upload: true import, as POST /imports takes a file.",
        "content": {key: CATALOG_BODY["requestBody"]["content"][key]  # type: ignore[index]
                    for key in ("text/csv", "application/x-ndjson", "application/gzip", "multipart/form-data")},
    }
}  # fmt: skip
IMAGE_RESPONSE: Any = {"description": "The picture.", "content": {"image/*": _BINARY}}


def openapi_document(app: DupcheckResolver, *, keyed: bool = True) -> str:
    """The OpenAPI document, as committed in docs/openapi.json (`keyed`: the API key required,
    as on AWS; without it, the document of a local server that needs none).

    Two corrections to what Powertools generates, so the document lists only what is sent: it
    documents a 422 "HTTPValidationError" on every route because its own request validation
    would send one, while this API answers validation errors with 400 and its error body
    (`invalid_request`); and it gives a 204 a JSON body, which a 204 never has.
    """
    document = json.loads(app.get_openapi_json_schema())
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
            responses.get("204", {}).pop("content", None)
            if not keyed:
                operation.pop("security", None)
    components = document.get("components", {})
    schemas = components.get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if not keyed:
        document.pop("security", None)
        components.pop("securitySchemes", None)
        document["info"]["description"] = KEYLESS_DESCRIPTION
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
