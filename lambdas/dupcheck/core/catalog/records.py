"""The catalog's records: look one up, page them, store and remove them (with what goes beside
them: index, thumbnail, product vector, kept image), through the one write path (writer.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dupcheck.core.catalog.gate import EXPIRED
from dupcheck.core.catalog.kept_images import kept_gone_message
from dupcheck.core.catalog.lookups import CatalogLookups, check_id, check_image, new_item_id
from dupcheck.core.catalog.parts import METRIC_HASHES, CatalogParts, log
from dupcheck.core.catalog.writer import RecordWriter, Saved
from dupcheck.core.errors import (
    Conflict,
    DupcheckError,
    DuplicateImage,
    InvalidRequest,
    KeptImageGone,
    NotFound,
    ServerBusy,
    StoreUnavailable,
)
from dupcheck.core.fingerprint.hashing import HashPipeline
from dupcheck.core.models import Claim, Entry, Fingerprint, HashRecord
from dupcheck.core.ports import KeepingDeletes, LoadingIndex

if TYPE_CHECKING:
    from dupcheck.core.catalog.products import Embedder
    from dupcheck.core.models import ProductVector


MAX_PAGE = 100  # records per page of the catalog
DEFAULT_PAGE = 20


@dataclass
class CatalogRecords:
    """Look up, list, store and remove records (`lookups`: the fetch that remakes a product vector)."""

    parts: CatalogParts
    lookups: CatalogLookups

    def get(self, entity_id: str) -> HashRecord:
        record = self.parts.store.get(check_id(entity_id))
        if record is None:
            raise NotFound(f"no item with entity_id {entity_id!r}")
        return record

    def list_items(
        self, limit: int | None = None, cursor: str | None = None, query: str | None = None
    ) -> tuple[list[HashRecord], str | None]:
        """A page of the catalog, and the cursor of the next page (None after the last one).
        `query` keeps the records whose entity_id or SKU contains it, ignoring case."""
        limit = DEFAULT_PAGE if limit is None else limit
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        records, last = self.parts.store.page(decode_cursor(cursor) if cursor else None, limit, query or None)
        return records, encode_cursor(last) if last is not None else None

    def duplicate_report(self) -> Mapping[str, Any]:
        report = self.parts.reports.latest() if self.parts.reports is not None else None
        if report is None:
            raise NotFound("no duplicate report yet: start a scan (POST /duplicates/scans, the web app's Duplicates "
                           "page) or run `python -m dupcheck duplicates`")  # fmt: skip
        return report

    def health(self) -> dict[str, object]:
        ready = self.parts.index.ready if isinstance(self.parts.index, LoadingIndex) else True
        return {
            "status": "ok" if ready else "starting",
            "algorithm": self.parts.pipeline.algo,
            "records": self.parts.store.approximate_count(),
            "indexed": self.parts.index.count(),
            "index_ready": ready,
        }

    def entry_for(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> Entry:
        """Hash an image into the record (and thumbnail) that would be stored, without storing it."""
        parts = self.parts
        entry = build_entry(
            parts.pipeline, data, entity_id=entity_id, sku=sku, image_url=image_url, max_pixels=parts.max_pixels,
            embedder=parts.embedder if parts.products is not None else None,
        )  # fmt: skip
        parts.observe(METRIC_HASHES, 1.0)
        return entry

    def save(self, entry: Entry, claim: Claim | None = None, *, place: Callable[[Entry], Entry] | None = None) -> Entry:
        """Store one entry (with the claim the gate let it through with); the entry stored. A claim
        fenced meanwhile stores nothing: DuplicateImage naming the write that beat it (ServerBusy
        when its lease passed). `place` changes the entry while its kept image is held (an upload
        keeps its picture there, so no delete can fall between the keep and the write)."""
        stored = self.save_many([(entry, claim)], place=place)
        if claim is not None and claim.claim_id in stored.beaten:
            beaten_by = stored.beaten[claim.claim_id]
            if beaten_by == EXPIRED:
                raise ServerBusy("the duplicate check took longer than its lease and another write took over: "
                                 "send the request again", retry_after_s=1)  # fmt: skip
            raise DuplicateImage(f"{entry.record.entity_id!r} was not stored: a write of the same picture as "
                                 f"{beaten_by!r} came first", [])  # fmt: skip
        if entry.record.entity_id in stored.gone:
            raise KeptImageGone(kept_gone_message(entry.record.image_url))
        return stored.entries[0] if stored.entries else entry

    def save_many(
        self, writes: Sequence[tuple[Entry, Claim | None]], *, place: Callable[[Entry], Entry] | None = None
    ) -> Saved:
        """`RecordWriter.save_many` (core/catalog/writer.py), the index updated as well."""
        return self.writer.save_many(writes, place=place)

    @property
    def writer(self) -> RecordWriter:
        """The one write path of records and what goes beside them (core/catalog/writer.py), under this
        service's id locks; `index=None` for a writer whose index follows the store by itself."""
        parts = self.parts
        return RecordWriter(store=parts.store, index=parts.index, thumbnails=parts.thumbnails, products=parts.products,
                            kept=parts.kept, claims=parts.gate.claims, locks=parts.locks)  # fmt: skip

    def forget_orphan(self, entity_id: str) -> bool:
        """Delete the thumbnail and product vector of an id that holds no record (what a crash
        between the writes left); whether it held none. Under the id's lock: never a save's."""
        with self.writer.locks_for([entity_id]):
            if self.parts.store.get(entity_id) is not None:
                return False
            self.writer.take_back([entity_id])
            return True

    def remove(self, entity_id: str) -> None:
        """Remove a record; NotFound when there was none. Of concurrent removes of one id, exactly
        one succeeds: the store's delete says whether it deleted something."""
        entity_id = check_id(entity_id)
        writer = self.writer
        with writer.locks_for([entity_id]):
            removed = self.parts.store.get(entity_id) if self.parts.kept is not None else None
            if not self.parts.store.delete(entity_id):
                raise NotFound(f"no item with entity_id {entity_id!r}")
            self._forget(entity_id)
        if removed is not None:  # after the id's lock: kept images' lock is taken first
            writer.release(removed.image_url)

    def remove_keeping(
        self, keep: str, entity_ids: Sequence[str], first: Callable[[Mapping[str, HashRecord]], object] = lambda _: None
    ) -> list[str]:
        """Remove these records only while `keep` is in the catalog, in one step of the store (a keep
        decision: of two opposite ones at once, one finds its record gone and removes nothing). The
        ids' locks are taken before the records are read: `first` is given them (`keep`'s too; a
        decision keeps their copies) and no write of this process lands between the read and the
        removal; one from elsewhere fails the removal's condition, each record as read
        (RecordsChanged, nothing removed). The ids removed (those still there); Conflict when `keep` is gone."""
        store = self.parts.store
        if not isinstance(store, KeepingDeletes):
            raise Conflict("this store cannot remove records on the condition that another stays")
        writer = self.writer
        with writer.locks_for([keep, *entity_ids]):
            records = store.get_many_consistent([keep, *entity_ids])
            first(records)
            deleted = store.delete_keeping([r for e in entity_ids if (r := records.get(e)) is not None], keep)
            if deleted is None:
                raise Conflict(f"{keep!r} is no longer in the catalog (another decision removed it meanwhile): "
                               "nothing was removed")  # fmt: skip
            for entity_id in deleted:
                self._forget(entity_id)
        for entity_id in deleted:  # after the ids' locks: kept images' lock is taken first
            writer.release(records[entity_id].image_url)
        return deleted

    def product_vector_of(self, record: HashRecord) -> ProductVector | None:
        """A record's product vector made again from its picture (a record put back by an undo),
        where similar products are on here; None when the picture cannot be read (logged: reindex
        makes the missing vector later)."""
        parts = self.parts
        if parts.embedder is None or parts.products is None:
            return None
        try:
            return parts.embedder.embed_bytes(self.lookups.fetch(record.image_url), max_pixels=parts.max_pixels)
        except DupcheckError as exc:
            log.warning("no product vector for %r: its picture cannot be read (%s)", record.entity_id, exc.message)
            return None

    def _forget(self, entity_id: str) -> None:
        """What goes with a removed record: after the store (an index entry left by a crash here
        points at no record, and is dropped from every result, the record being read from the
        store, until reindex), its index entry, product vector and thumbnail."""
        self.parts.index.remove(entity_id)
        if self.parts.products is not None:
            self.parts.products.remove(entity_id)
        if self.parts.thumbnails is not None:
            try:
                self.parts.thumbnails.delete(entity_id)
            except StoreUnavailable as exc:  # the record is gone: an orphan thumbnail is never read
                log.warning("thumbnail of %r not deleted: %s", entity_id, exc.message)


def build_entry(
    pipeline: HashPipeline,
    data: bytes,
    *,
    entity_id: str,
    sku: str,
    image_url: str,
    max_pixels: int,
    embedder: Embedder | None = None,
) -> Entry:
    """Hash an image into the record (and thumbnail) that would be stored: what registering
    stores, and what backfill's hashing processes build (they need a pipeline, not a service).
    With `embedder`, its product vector too, from a decode of its own: the pipeline's steps, and
    so the record, are the same with or without it."""
    fp = pipeline.fingerprint_bytes(check_image(data), max_pixels=max_pixels, for_query=False)
    return entry_of(fp, data, entity_id=entity_id, sku=sku, image_url=image_url, max_pixels=max_pixels,
                    embedder=embedder)  # fmt: skip


def entry_of(
    fp: Fingerprint, data: bytes, *, entity_id: str, sku: str, image_url: str, max_pixels: int,
    embedder: Embedder | None = None,
) -> Entry:  # fmt: skip
    """The entry a fingerprint (a record's, or a query's made `with_thumbnail`) stores."""
    record = HashRecord(
        entity_id=new_item_id(entity_id),
        sku=str(sku or ""),
        image_url=image_url,
        hash=fp.hash,
        hash_algo=fp.algo,
        features=dict(fp.features),
    )
    vector = embedder.embed_bytes(data, max_pixels=max_pixels) if embedder is not None else None
    return Entry(record, fp.thumbnail, vector)


def encode_cursor(entity_id: str) -> str:
    """A page cursor: the entity_id to continue after, as unpadded base64url (opaque to clients)."""
    return base64.urlsafe_b64encode(entity_id.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The entity_id a cursor continues after. Every well-formed cursor is a position in the
    catalog (one the API did not give just starts somewhere), so only malformed base64 fails."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("cursor is not one this API gave: pass next_cursor as it came") from exc
    if not raw:
        raise InvalidRequest("cursor is not one this API gave: pass next_cursor as it came")
    return raw.decode("utf-8", "replace")
