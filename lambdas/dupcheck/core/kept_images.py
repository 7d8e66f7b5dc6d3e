"""Pictures the service keeps for records that have no public address of their own.

A picture uploaded without an `image_url` (a folder chosen in the web app, a multipart upload)
is kept by the service (the data dir locally, an S3 bucket on AWS) under its content's name,
`<sha256>.<ext>`, and served back by the API at `/images/<name>` with the key. The record's
`image_url` is that address, so the web app shows it and a re-hash (`reindex`) can read it.

The content names the picture: keeping the same bytes twice is one file, and a name can only
ever mean those bytes. That is why `KeptImagesFetcher` may answer any URL whose path ends in
`/images/<name>` from what is kept, without asking the host the URL names: the service never
calls itself over the network (which its own address guard would refuse), and a kept name
answers with exactly the bytes any host serving that name would have to serve.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from dupcheck.core.errors import UnsupportedImage
from dupcheck.core.imaging import SUPPORTED_FORMATS, sniff_format
from dupcheck.core.ports import ImageFetcher

IMAGES_PATH = "images"  # the API's route: /images/<name>
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
                 "bmp": "image/bmp", "tiff": "image/tiff"}  # fmt: skip
IMAGE_NAME_PATTERN = rf"^[0-9a-f]{{64}}\.({'|'.join(CONTENT_TYPES)})$"
_NAME = re.compile(IMAGE_NAME_PATTERN)
_KEPT_PATH = re.compile(rf"/{IMAGES_PATH}/([0-9a-f]{{64}}\.[a-z]+)$")


@runtime_checkable
class KeptImages(Protocol):
    """Kept pictures by name. Writes are idempotent (a name is its content)."""

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes | None: ...


def image_name(data: bytes) -> str:
    """`<sha256>.<ext>` of a picture; UnsupportedImage (415) when the bytes are no image format."""
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImage(f"not a supported image (expected one of {', '.join(SUPPORTED_FORMATS)})")
    return f"{hashlib.sha256(data).hexdigest()}.{EXTENSIONS[fmt]}"


def is_image_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def content_type(name: str) -> str:
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]


def kept_name(url: str) -> str | None:
    """The kept picture a URL addresses (its path ends in /images/<name>), or None."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    found = _KEPT_PATH.search(path)
    return found.group(1) if found and is_image_name(found.group(1)) else None


class KeptImagesFetcher:
    """An ImageFetcher that answers addresses of kept pictures from the store and fetches the
    rest through `inner` (the safe fetcher). See the module docstring for why that is safe."""

    def __init__(self, inner: ImageFetcher, images: KeptImages) -> None:
        self.inner, self.images = inner, images

    def fetch(self, url: str) -> bytes:
        name = kept_name(url)
        if name is not None and (data := self.images.get(name)) is not None:
            return data
        return self.inner.fetch(url)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
