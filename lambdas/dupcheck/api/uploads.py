"""The image of `POST /find_similar`: a raw `image/*` body, a multipart file, or JSON `photoData`;
and the catalog file of `POST /imports`: a raw body or a multipart file.

Multipart bodies are parsed by python-multipart (the parser Starlette and FastAPI use), fed the
whole body at once, and stopped after MAX_PARTS parts: a body of 20,000 tiny parts costs no
more than one of MAX_PARTS. Only the file chosen is copied out of the parts. Every way a body
can be malformed is an `InvalidRequest` (400).

`catalog_body_cost` says what a catalog route holds at its peak for a body of a given size: the
local server admits catalog bodies against its budget by it (dupcheck_tools/local/app.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from dupcheck.api.known_names import unknown_names
from dupcheck.core.errors import CatalogTooLarge, ImageTooLarge, InvalidRequest, UnknownParameter

FILE_FIELDS = ("file", "image", "photo", "photoData")
PHOTO_FIELD = "photoData"  # a JSON upload's one field
CATALOG_FIELDS = ("file", "catalog")
MAX_PARTS = 16  # a form with the image and a few fields; more is not an upload
# What reading a catalog body holds at its peak, by its media type, in bodies: the body; a multipart
# form's parts and the file copied out of them; JSON ({"items": ...}), the values parsed from it and
# the catalog written of them. (Checking a catalog reads a few MB of it at a time.)
# tests/unit/api/test_local_app.py measures them.
_CATALOG_COPIES = {"multipart/form-data": 3, "application/json": 4}
CATALOG_READING_BYTES = 16 * 2**20
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)$", re.S)


def uploaded_image(body: bytes, content_type: str, max_bytes: int) -> bytes:
    """The image bytes of a request body (the format is decided later, from the bytes)."""
    if not body:
        raise InvalidRequest("the request has no image: send image bytes, a multipart file or JSON photoData")
    if len(body) > max_bytes * 4 // 3 + 1024:  # base64 or multipart framing around the image
        raise ImageTooLarge(f"the request body is over {max_bytes} bytes")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json":
        data = _from_json(body)
    elif media_type == "multipart/form-data":
        data = _from_multipart(content_type, body)
    else:  # image/*, application/octet-stream or unlabelled: the bytes decide (sniffed later)
        data = body
    if not data:
        raise InvalidRequest("the uploaded image is empty")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes} bytes")
    return data


def uploaded_catalog(body: bytes, content_type: str, max_bytes: int) -> bytes:
    """The catalog file of a request body: the body itself, or a multipart form's file."""
    if len(body) > max_bytes + 64 * 1024:  # multipart framing around the file
        raise CatalogTooLarge(f"the request body is over {max_bytes} bytes")
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return _from_multipart(content_type, body, CATALOG_FIELDS, data_urls=False)
    return body


def catalog_body_cost(length: int, content_type: str) -> int:
    """The memory a catalog route (`POST /imports`, `PUT /imports/{id}/catalog`) holds at its peak
    for a body of `length` bytes of `content_type`: the body and its copies, and the catalog's
    first rows being read."""
    copies = _CATALOG_COPIES.get(content_type.split(";")[0].strip().lower(), 1)
    return length * copies + CATALOG_READING_BYTES


def _from_json(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, absurd nesting or numbers
        raise InvalidRequest("the body is not valid JSON") from exc
    if isinstance(payload, dict) and (unknown := unknown_names(payload, (PHOTO_FIELD,), "field")):
        raise UnknownParameter(unknown)
    photo = payload.get(PHOTO_FIELD) if isinstance(payload, dict) else None
    if not isinstance(photo, str) or not photo:
        raise InvalidRequest('JSON bodies must hold "photoData": a data URL or base64 image')
    return _photo_data(photo)


def _photo_data(photo: str) -> bytes:
    """A data URL or bare base64 (what browser camera apps send as photoData)."""
    match = _DATA_URL.match(photo.strip())
    encoded = match.group("data") if match else photo
    try:
        return base64.b64decode(re.sub(r"\s+", "", encoded), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("photoData is not valid base64") from exc


class _Parts:
    """Collects the parts of a multipart body: their headers and data, up to MAX_PARTS."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self._field = b""
        self._value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._extend("_field", data[start:end]),
            "on_header_value": lambda data, start, end: self._extend("_value", data[start:end]),
            "on_header_end": self._header_end,
            "on_part_data": lambda data, start, end: self.parts[-1]["data"].extend(data[start:end]),
        }

    def _begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise InvalidRequest(f"a multipart upload may have at most {MAX_PARTS} parts")
        self.parts.append({"headers": {}, "data": bytearray()})

    def _extend(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _header_end(self) -> None:
        self.parts[-1]["headers"][self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""


def _from_multipart(
    content_type: str, body: bytes, file_fields: tuple[str, ...] = FILE_FIELDS, *, data_urls: bool = True
) -> bytes:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidRequest("multipart body without a boundary")
    collected = _Parts()
    try:
        parser = MultipartParser(boundary, collected.callbacks())  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(f"malformed multipart body: {exc}") from exc
    fields: dict[str, bytearray] = {}
    first_file: bytearray | None = None
    for part in collected.parts:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("latin-1")
        fields.setdefault(name, part["data"])
        if first_file is None and b"filename" in disposition:
            first_file = part["data"]
    found = next((fields[f] for f in file_fields if f in fields), first_file)
    if found is None:
        raise InvalidRequest(f"multipart body has no file field (expected one of {', '.join(file_fields)})")
    del fields, first_file, collected  # the parts not chosen are freed before the copy
    chosen = bytes(found)  # the one copy out of the parts
    del found
    if data_urls and chosen.startswith(b"data:"):  # a camera app's photoData form field: a data URL as text
        return _photo_data(chosen.decode("latin-1"))
    return chosen
