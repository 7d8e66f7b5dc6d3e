"""Pictures the service keeps for records that have no public address of their own.

A picture uploaded without an `image_url` (a folder chosen in the web app, a multipart upload)
is kept by the service (the data dir locally, an S3 bucket on AWS) under its content's name,
`<sha256>.<ext>`, and served back by the API at `/images/<name>` with the key. The record's
`image_url` is that address, so the web app shows it and a re-hash (`reindex`) can read it.

What is kept is a rendition, never the upload: the decoded picture (upright, transparency on
white) at most RENDITION_SIDE px on its longer side, as a JPEG of at most MAX_RENDITION_BYTES
(`rendition`). The record is hashed from the rendition, so re-hashing the kept image gives the
same record. A kept image lives as long as a record uses it (`KeptImageLifecycle`): the last record
that named it deleted or replaced, it is deleted; one no record has used for UNCLAIMED_FOR_S
(an upload whose import never came) is swept away.

What holds a kept image: every record that names it, and `KeptImagePins`' holds for what names it
outside the catalog (a decision's copy of a record it removed, an import job's catalog that is
queued or running). Deleting one (`release`, `delete`, `sweep`) and writing a record that names it
(`holding`) take one lock (across processes, where the pictures are files), so a delete never
falls between a write's check that its picture is kept and the write itself.

The content names the picture: keeping the same bytes twice is one file, and a name can only
ever mean those bytes. That is why `KeptImagesFetcher` may answer any URL whose path ends in
`/images/<name>` from what is kept, without asking the host the URL names: the service never
calls itself over the network (which its own address guard would refuse), and a kept name
answers with exactly the bytes any host serving that name would have to serve.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from urllib.parse import urlsplit

from PIL import Image

from dupcheck.core.errors import Conflict, ImageUnreachable, KeptImageGone, NotFound, UnsupportedImage, UrlNotAllowed
from dupcheck.core.pictures.imaging import SUPPORTED_FORMATS, decode_image, sniff_format
from dupcheck.core.ports import (
    ClaimedKeptImages,
    GuardedDeletes,
    ImageFetcher,
    KeptImagePins,
    KeptImages,
    KeptImageUses,
    ListedKeptImages,
    LockedKeptImages,
)

IMAGES_PATH = "images"  # the API's route: /images/<name>
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
                 "bmp": "image/bmp", "tiff": "image/tiff"}  # fmt: skip
IMAGE_NAME_PATTERN = rf"^[0-9a-f]{{64}}\.({'|'.join(CONTENT_TYPES)})$"
_NAME = re.compile(IMAGE_NAME_PATTERN)
_KEPT_PATH = re.compile(rf"/{IMAGES_PATH}/([0-9a-f]{{64}}\.[a-z]+)$")
# A kept image's address anywhere in a catalog's bytes (`kept_names_in`): no parse needed.
_KEPT_IN_TEXT = re.compile(rf"/{IMAGES_PATH}/([0-9a-f]{{64}}\.(?:{'|'.join(CONTENT_TYPES)}))\b".encode())

# The rendition kept: what the pipeline reads of a picture (decoding reduces larger ones to at
# least 1,024 px, core/pictures/imaging.py), and what a catalog page shows. On the 598 bench photos (at most
# 1,024 px already) it is 65 KB median, 72 KB mean, 277 KB at most (docs/api.md, "Kept images").
RENDITION_SIDE = 1024
RENDITION_QUALITY = 85
# A hard bound, whatever the picture: past it the JPEG is encoded again at the next lower quality
# (noise, the worst case, at 1,024 x 1,024 px: 729 KB at quality 85, 538 at 70, 392 at 50).
MAX_RENDITION_BYTES = 512 * 1024
_LOWER_QUALITIES = (70, 50, 30)
# How long a kept image no record uses stays: time for the import that names it (the web app's
# folder: upload, then import) to come. The S3 lifecycle rule of the AWS deployment says the same.
UNCLAIMED_FOR_S = 24 * 3600


def rendition(data: bytes, *, max_pixels: int) -> bytes:
    """The picture as kept: decoded (every check of core/pictures/imaging.py), at most RENDITION_SIDE px
    on its longer side, a JPEG of at most MAX_RENDITION_BYTES."""
    picture = decode_image(data, max_pixels=max_pixels)
    picture.thumbnail((RENDITION_SIDE, RENDITION_SIDE), Image.Resampling.LANCZOS)
    for quality in (RENDITION_QUALITY, *_LOWER_QUALITIES):
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= MAX_RENDITION_BYTES:
            break
    return out.getvalue()


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


def kept_names_in(catalog: bytes) -> set[str]:
    """The kept images a catalog's text names (its raw bytes, CSV or JSON Lines; a gzipped one
    names none this way): what an import job holds while it waits and runs."""
    return {found.decode() for found in _KEPT_IN_TEXT.findall(catalog)}


def kept_gone_message(url: str) -> str:
    return (f"the picture {url} is no longer kept here (deleted, or gone with the last record that named it): "
            "upload it again (POST /images, or PUT /items/{id} without image_url)")  # fmt: skip


def kept_name(url: str) -> str | None:
    """The kept image a URL addresses (its path ends in /images/<name>), or None."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    found = _KEPT_PATH.search(path)
    return found.group(1) if found and is_image_name(found.group(1)) else None


class KeptImagesFetcher:
    """An ImageFetcher that answers addresses of kept images from the store and fetches the
    rest through `inner` (the safe fetcher). See the module docstring for why that is safe."""

    def __init__(self, inner: ImageFetcher, images: KeptImages) -> None:
        self.inner, self.images = inner, images

    def fetch(self, url: str) -> bytes:
        name = kept_name(url)
        if name is not None and (data := self.images.get(name)) is not None:
            return data
        try:
            return self.inner.fetch(url)
        except (UrlNotAllowed, ImageUnreachable) as exc:
            if name is None:
                raise
            # A kept image's address that neither the store nor its host can answer (refused as
            # this service's own address, or a 404 where loopback fetching is allowed): deleted.
            raise KeptImageGone(kept_gone_message(url)) from exc

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


class KeptImageLifecycle:
    """The life of kept images: kept for a record, deleted with the last record that uses them.

    One lock orders keeping and writing records that name a picture against deleting it (the
    images' own where they have one: across processes): a caller that keeps and then saves, or
    saves records naming kept images, holds it across both (`holding`; it is re-entrant).
    Deleting asks the store whether a record or a pin still holds the picture; without `uses` (a
    store that cannot tell) nothing is ever deleted.
    """

    def __init__(self, images: KeptImages, uses: KeptImageUses | None) -> None:
        self.images, self.uses = images, uses
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with self.images.lock() if isinstance(self.images, LockedKeptImages) else self._lock:
            yield

    def keep(self, picture: bytes, base_url: str) -> str:
        """Keep a rendition (`rendition`'s bytes); the address the API serves it at."""
        name = image_name(picture)
        with self.lock():
            self.images.put(name, picture)
            if isinstance(self.uses, GuardedDeletes):
                self.uses.kept_again(name)
        return f"{base_url}/{IMAGES_PATH}/{name}"

    @contextlib.contextmanager
    def holding(self, image_urls: Iterable[str]) -> Iterator[set[str]]:
        """Hold the kept images these URLs name while records naming them are written: none is
        deleted until the block ends. Yields the URLs whose picture is no longer kept (a write
        naming one must not be stored: `KeptImageGone`)."""
        with self.lock():
            yield {url for url in dict.fromkeys(image_urls)
                   if (name := kept_name(url)) is not None and not self.images.exists(name)}  # fmt: skip

    def pin(self, image_urls: Iterable[str], holder: str) -> None:
        """Hold the kept images these URLs name for `holder` ("decision:<id>", "job:<id>") until
        `unpin`: a sweep, a release or a delete leaves them. Where pictures expire unless claimed
        (S3's lifecycle rule), they are claimed as well: kept until deleted with a record or on request."""
        self.pin_names({name for url in image_urls if (name := kept_name(url)) is not None}, holder)

    def pin_names(self, names: Collection[str], holder: str) -> None:
        """`pin` of pictures by name (`kept_names_in` a catalog)."""
        if not names:
            return
        if isinstance(self.uses, KeptImagePins):
            with self.lock():
                self.uses.pin_kept(names, holder)
        if isinstance(self.images, ClaimedKeptImages):  # and no expiry takes them meanwhile
            for name in names:
                self.images.claim(name)

    def unpin(self, holder: str) -> None:
        """Let go of `holder`'s holds; a picture nothing else holds goes at the next sweep."""
        if isinstance(self.uses, KeptImagePins):
            self.uses.unpin_kept(holder)

    def holders(self, prefix: str) -> set[str]:
        """The holders of pins whose name starts with `prefix` (none where pins are not kept)."""
        return self.uses.pin_holders(prefix) if isinstance(self.uses, KeptImagePins) else set()

    def release(self, image_url: str, *, just_changed: str = "") -> bool:
        """After the record of `just_changed`, which named `image_url`, was deleted or replaced:
        delete the kept image it names if no record uses it any more. Whether it was deleted."""
        name = kept_name(image_url)
        if name is None or self.uses is None:
            return False
        if just_changed and isinstance(self.uses, GuardedDeletes):
            self.uses.drop_user(name, just_changed)
        return self._delete_unused(name, just_changed=just_changed) is True

    def _delete_unused(self, name: str, *, just_changed: str = "") -> bool | None:
        """Delete the picture unless a record uses it or a pin holds it: True when deleted, False
        when in use, None when none was kept. Under the lock, or (GuardedDeletes) its mark."""
        assert self.uses is not None
        guard = self.uses if isinstance(self.uses, GuardedDeletes) else None
        with self.lock():
            if guard is not None and not guard.begin_delete(name, time.time()):
                return False
            deleted: bool | None = False
            try:
                if not self.uses.uses_kept_image(name, just_changed=just_changed):
                    deleted = self.images.delete(name) or None
            finally:
                if guard is not None:
                    guard.end_delete(name, bool(deleted), time.time())
            return deleted

    def claim(self, image_url: str) -> bool:
        """A record was stored naming `image_url`: the kept image it names no longer expires
        (where pictures expire unless claimed). Whether there was one to claim."""
        name = kept_name(image_url)
        return name is not None and isinstance(self.images, ClaimedKeptImages) and self.images.claim(name)

    def delete(self, name: str) -> None:
        """`DELETE /images/{name}`: Conflict while a record uses it, NotFound when none is kept."""
        if self.uses is None:
            raise Conflict("this deployment cannot tell which records use a kept image: none is deleted")
        deleted = self._delete_unused(name)
        if deleted is False:
            raise Conflict(f"a record uses the kept image {name} (or a decision's copy, or an import that is "
                           "queued or running): delete the record (DELETE /items/...) first")  # fmt: skip
        if deleted is None:
            raise NotFound(f"no kept image {name!r}")

    def sweep(self, older_than_s: float = UNCLAIMED_FOR_S) -> int:
        """Delete every kept image older than `older_than_s` that no record uses and nothing holds
        (uploads never imported, pictures left by a crash); how many. Only where they can be listed."""
        if self.uses is None or not isinstance(self.images, ListedKeptImages):
            return 0
        return sum(1 for name in self.images.names_older_than(older_than_s) if self._delete_unused(name))
