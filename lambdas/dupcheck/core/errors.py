"""Domain errors, each carrying its one HTTP status and machine-readable code.

This module is the single table from failure to status: adapters raise these, the API turns
any of them into `{"error": {"code", "message"}}` (`error_body`, the one place that shape is
written) with `status`, and anything else into a 500 with code `internal_error` (logged, never
leaked). The command line prints the same body.
"""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str) -> dict[str, dict[str, Any]]:
    """The JSON error body every surface answers with: `{"error": {"code", "message"}}`."""
    return {"error": {"code": code, "message": message}}


class DupcheckError(Exception):
    """Base of every error a caller can be told about."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, dict[str, Any]]:
        return error_body(self.code, self.message)


class InvalidRequest(DupcheckError):
    """A parameter or body is missing or malformed."""

    status, code = 400, "invalid_request"


class UnknownParameter(InvalidRequest):
    """A query parameter or body field the route does not take (a typo, a wrong key): named, with
    the closest one it does take."""

    code = "unknown_parameter"


class UrlNotAllowed(DupcheckError):
    """The image URL points somewhere the fetcher refuses to go (scheme, address, host list)."""

    status, code = 403, "url_not_allowed"


class NotFound(DupcheckError):
    status, code = 404, "not_found"


class Conflict(DupcheckError):
    """The request is well formed but the resource is not in a state that allows it (a finished
    import cannot be cancelled, a catalog cannot be uploaded twice)."""

    status, code = 409, "conflict"


class RecordsChanged(Conflict):
    """A removal conditional on the records it read found some changed since (registered again
    meanwhile): nothing was removed. `entity_ids` names them."""

    def __init__(self, message: str, entity_ids: list[str]) -> None:
        super().__init__(message)
        self.entity_ids = entity_ids


class DuplicateImage(Conflict):
    """A picture refused by the duplicate gate (`on_duplicate=reject`): nothing was stored. The
    body lists the catalog's `matches` (find_similar's match objects) beside code and message."""

    status, code = 409, "duplicate_image"

    def __init__(self, message: str, matches: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.matches = matches

    def to_body(self) -> dict[str, dict[str, Any]]:
        body = super().to_body()
        body["error"]["matches"] = self.matches
        return body


class ImageTooLarge(DupcheckError):
    """Too many bytes, or too many pixels once decoded (decompression bomb)."""

    status, code = 413, "image_too_large"


class UnsupportedImage(DupcheckError):
    """The bytes are not an image format dupcheck decodes."""

    status, code = 415, "unsupported_media_type"


class InvalidImage(DupcheckError):
    """A supported format whose data is corrupt or truncated."""

    status, code = 422, "invalid_image"


class CatalogTooLarge(DupcheckError):
    """A catalog over the byte or row limit of an import."""

    status, code = 413, "catalog_too_large"


class InvalidCatalog(DupcheckError):
    """A catalog that is text, but not one dupcheck can read: no id or URL column, not UTF-8,
    not CSV or JSON Lines, no rows."""

    status, code = 422, "invalid_catalog"


class UpstreamError(DupcheckError):
    """The image host failed in a way that may pass (a 5xx, 408 or 429, a connection broken
    mid-download): the service's answer is a gateway's, 502, and a batch retries it."""

    status, code = 502, "upstream_error"
    retryable = True


class ImageUnreachable(UpstreamError):
    """The image URL cannot be fetched as given: its host does not resolve, refuses the
    connection, fails TLS verification or redirects nowhere usable, or it answers a 4xx (404,
    403, 410...). The caller's to fix, so a 4xx (a caller's bad URL must not count as the
    service failing); a batch still retries those that may pass (a name not yet resolvable, a
    restarting host: `retryable`)."""

    status, code = 422, "image_unreachable"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class KeptImageGone(DupcheckError):
    """A write names a picture the service kept (`/images/<name>`) that is no longer kept: deleted
    (DELETE /images/{name}, or with the last record that named it) before the write could name it.
    Nothing was stored: upload the picture again."""

    status, code = 422, "kept_image_gone"


class UpstreamTimeout(DupcheckError):
    status, code = 504, "upstream_timeout"


class IndexUnavailable(DupcheckError):
    """The search index (or record store) cannot be reached right now; retrying later may work."""

    status, code = 503, "index_unavailable"


class StoreUnavailable(DupcheckError):
    status, code = 503, "store_unavailable"


class ProductsUnavailable(DupcheckError):
    """Similar products are off in this deployment: no product model installed, or the setting
    turns them off (docs/lab/similar-products.md)."""

    status, code = 503, "products_unavailable"


class ServerBusy(DupcheckError):
    """The server cannot take the request now (too much memory held at once by large pictures being
    decoded or catalogs being read; a results file still being written): `retry_after_s` says when
    to try again (the Retry-After header)."""

    status, code = 503, "server_busy"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
