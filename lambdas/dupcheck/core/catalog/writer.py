"""The one write path of catalog records and what goes beside them.

Every way a record is stored goes through `RecordWriter.save_many`: the API's register and upload,
a decision's undo, the command line's add and backfill, import jobs locally (the backfill engine's
writer thread) and on AWS (the rows queue's worker). In order, per batch:

1. the thumbnails and product vectors, before their records, so a record is never there without
   them (only an orphan can be, which the next write of the id replaces or the local sweep deletes);
2. the records, each with its gate claim's commit in one transaction (core/catalog/gate.py), while the kept
   pictures they name are held (core/catalog/kept_images.py): none is deleted between the check that it is
   still kept and the write; a write whose claim was fenced, or whose kept image is gone, stores
   nothing and what was written beside it is taken back;
3. the index, where the writer keeps one (the local server's import worker and AWS leave it to the
   index's follower and the stream);
4. the kept images of replaced records, let go when nothing else uses them.

Writes of one id are ordered against removes of it by striped locks (a process's; between
processes the stores' own transactions order them).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dupcheck.core.catalog.gate import KEPT_GONE
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import Claim, Entry, HashRecord
from dupcheck.core.ports import HashIndex, RecordStore, ThumbnailStore, WriteClaims

if TYPE_CHECKING:
    from dupcheck.core.catalog.kept_images import KeptImageLifecycle
    from dupcheck.core.ports import ProductIndex

log = logging.getLogger(__name__)

LOCK_STRIPES = 64  # per-id locks, hashed: writers of different ids rarely wait for each other


def new_locks() -> tuple[threading.Lock, ...]:
    return tuple(threading.Lock() for _ in range(LOCK_STRIPES))


@dataclass(frozen=True, slots=True)
class Saved:
    """What `save_many` stored: the entries written (their records as placed), the claims fenced
    before they could commit (claim id -> the entity_id that beat it, or gate.EXPIRED), and the ids
    whose kept image was gone (nothing stored for them)."""

    entries: list[Entry]
    beaten: dict[str, str]
    gone: set[str]


@dataclass
class RecordWriter:
    store: RecordStore
    index: HashIndex | None = None  # None: the index follows the store by itself
    thumbnails: ThumbnailStore | None = None
    products: ProductIndex | None = None
    kept: KeptImageLifecycle | None = None  # None: kept images are not this writer's (AWS: the stream's)
    claims: WriteClaims | None = None  # None: records are written without claims (no gate guard)
    locks: tuple[threading.Lock, ...] = field(default_factory=new_locks)

    def save_many(
        self, writes: Sequence[tuple[Entry, Claim | None]], *, place: Callable[[Entry], Entry] | None = None
    ) -> Saved:
        """Store entries as the module docstring says. `place` changes each entry while the kept
        pictures are held (an upload keeps its picture there: no delete can fall between the keep
        and the write). A store that fails takes back everything of the batch and raises."""
        if not writes:
            return Saved([], {}, set())
        ids = [entry.record.entity_id for entry, _ in writes]
        with self.locks_for(ids):
            replaced = self.store.get_many(ids) if self.kept is not None or self.thumbnails is not None else {}
            previous = self._thumbnails_at_risk(writes, replaced)
            try:
                self._write_beside([entry for entry, _ in writes])
                urls = [] if place is not None else [entry.record.image_url for entry, _ in writes]
                with self._holding(urls) as gone:
                    if place is not None:
                        writes = [(place(entry), claim) for entry, claim in writes]
                    kept = [i for i, (entry, _) in enumerate(writes) if entry.record.image_url not in gone]
                    reasons = dict(zip(kept, self._commit([(writes[i][0].record, writes[i][1]) for i in kept]),
                                       strict=True))  # fmt: skip
            except BaseException:
                self.take_back(ids, previous)
                if place is not None:  # what was kept for them goes if nothing uses it
                    for entry, _ in writes:
                        self.release(entry.record.image_url)
                raise
            stored = [i for i in kept if reasons[i] is None]
            unstored_urls = [writes[i][0].record.image_url for i in range(len(writes)) if i not in set(stored)]
            gone_ids = {ids[i] for i, (entry, _) in enumerate(writes) if entry.record.image_url in gone}
            gone_ids |= {ids[i] for i in kept if reasons[i] == KEPT_GONE}
            beaten = {claim.claim_id: reason for i in kept if (reason := reasons[i]) not in (None, KEPT_GONE)
                      and (claim := writes[i][1]) is not None}  # fmt: skip
            written = set(stored)
            if len(written) < len(writes):
                self.take_back([ids[i] for i in range(len(writes)) if i not in written], previous)
            if self.index is not None:
                self.index.upsert_many(writes[i][0].record for i in stored)
        for i in stored:
            old = replaced.get(ids[i])
            if old is not None and old.image_url != writes[i][0].record.image_url:
                self.release(old.image_url)
        if place is not None:  # a picture kept for a write that was not stored goes if nothing uses it
            for url in unstored_urls:
                self.release(url)
        return Saved([writes[i][0] for i in stored], beaten, gone_ids)

    def _commit(self, writes: Sequence[tuple[HashRecord, Claim | None]]) -> list[str | None]:
        """The records, each with its claim's commit where claims are kept (WriteClaims.commit)."""
        if not writes:
            return []
        if self.claims is not None:
            return self.claims.commit(writes)
        self.store.put_many(record for record, _ in writes)
        return [None] * len(writes)

    def _write_beside(self, entries: Sequence[Entry]) -> None:
        thumbnails = {e.record.entity_id: e.thumbnail for e in entries if e.thumbnail}
        if thumbnails and self.thumbnails is not None:
            self.thumbnails.put_many(thumbnails)
        vectors = {e.record.entity_id: e.product_vector for e in entries if e.product_vector is not None}
        if vectors and self.products is not None:
            self.products.put_many(vectors)

    def _thumbnails_at_risk(
        self, writes: Sequence[tuple[Entry, Claim | None]], replaced: Mapping[str, HashRecord]
    ) -> dict[str, bytes]:
        """The stored thumbnails that a write which may yet be beaten replaces (a write that gives
        way, of an id that holds a record): put back if it is."""
        ids = [
            entry.record.entity_id
            for entry, claim in writes
            if claim is not None and claim.yields and entry.thumbnail and entry.record.entity_id in replaced
        ]
        return dict(self.thumbnails.get_many(ids)) if ids and self.thumbnails is not None else {}

    def _holding(self, image_urls: Sequence[str]) -> contextlib.AbstractContextManager[set[str]]:
        """The kept images these records name, held until they are written (KeptImageLifecycle.holding)."""
        if self.kept is None:
            return contextlib.nullcontext(set())
        return self.kept.holding(image_urls)

    def take_back(self, entity_ids: Sequence[str], previous: Mapping[str, bytes] | None = None) -> None:
        """What writes that stored no record wrote beside it (under the ids' locks): their thumbnails
        (put back as they were where `previous` holds the replaced record's) and product vectors."""
        previous = previous or {}
        undo: list[Callable[[str], object]] = []
        if self.thumbnails is not None:
            undo.append(self.thumbnails.delete)
        if self.products is not None:
            undo.append(self.products.remove)
        for entity_id in dict.fromkeys(entity_ids):
            for step in undo:
                try:
                    step(entity_id)
                except Exception as exc:  # noqa: BLE001 - the save's own error is what its caller hears
                    log.warning("after a failed save of %r, not taken back (%s): %s", entity_id, step, exc)
        restore = {entity_id: data for entity_id, data in previous.items() if entity_id in entity_ids}
        if restore and self.thumbnails is not None:
            try:
                self.thumbnails.put_many(restore)
            except Exception as exc:  # noqa: BLE001 - as above: a record judged by its views until rewritten
                log.warning("thumbnails of %s not put back: %s", sorted(restore), exc)

    def release(self, image_url: str) -> None:
        """Delete the kept image `image_url` names if no record uses it any more. A failure is
        logged, not the caller's: the local server's sweep finds the picture again."""
        if self.kept is None:
            return
        try:
            self.kept.release(image_url)
        except StoreUnavailable as exc:
            log.warning("kept image of %r not deleted: %s", image_url, exc.message)

    @contextlib.contextmanager
    def locks_for(self, entity_ids: Sequence[str]) -> Iterator[None]:
        """The locks of these ids, taken in one order (no two writers wait for each other)."""
        stripes = sorted({hash(entity_id) % len(self.locks) for entity_id in entity_ids})
        with contextlib.ExitStack() as held:
            for stripe in stripes:
                held.enter_context(self.locks[stripe])
            yield
