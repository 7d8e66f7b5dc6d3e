"""The use cases: find similar catalog images, register one, look one up, remove one.

Everything here talks to ports only, so the same code runs on Lambda (DynamoDB + OpenSearch)
and on one machine (SQLite + in-process index).
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dupcheck.core.decisions import DuplicateDecisions, reviewed_among
from dupcheck.core.errors import DuplicateImage, IndexUnavailable, InvalidRequest, NotFound, StoreUnavailable
from dupcheck.core.gate import OnDuplicate, Registration
from dupcheck.core.hashing import HashPipeline
from dupcheck.core.ids import MAX_ID_LENGTH, id_problem
from dupcheck.core.matching.edits import summary
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.matching.verdicts import match_percent
from dupcheck.core.models import (
    MAX_TOP,
    Entry,
    FindResult,
    Fingerprint,
    HashRecord,
    HashValue,
    IndexHit,
    Match,
    Verdict,
)
from dupcheck.core.ports import DuplicateReports, HashIndex, ImageFetcher, LoadingIndex, RecordStore, ThumbnailStore

if TYPE_CHECKING:
    from dupcheck.core.kept_images import KeptPictures
    from dupcheck.core.products import Embedder, ProductIndex

MAX_PAGE = 100  # records per page of the catalog
DEFAULT_PAGE = 20
MAX_URL_LENGTH = 2048
LOCK_STRIPES = 64  # per-id locks, hashed: writers of different ids rarely wait for each other

# Metric names the service reports through its observer (Powertools Metrics on Lambda).
METRIC_HASHES = "HashesComputed"
METRIC_MATCHES = "MatchesFound"
METRIC_FETCH_FAILURES = "FetchFailures"
METRIC_INDEX_LATENCY = "IndexLatencyMs"
METRIC_THUMBNAIL_FAILURES = "ThumbnailReadFailures"

log = logging.getLogger(__name__)

Observer = Callable[[str, float], None]


def _ignore(_name: str, _value: float) -> None:
    pass


@dataclass
class DupcheckService:
    store: RecordStore
    index: HashIndex
    fetcher: ImageFetcher
    pipeline: HashPipeline
    max_pixels: int
    default_top: int = 5
    observe: Observer = _ignore
    reports: DuplicateReports | None = None  # None: no duplicate report is published here
    decisions: DuplicateDecisions | None = None  # decisions on the report's groups (core/decisions.py)
    thumbnails: ThumbnailStore | None = None  # None: none kept, the look-alike check is off
    # Similar products (core/products.py): each registered picture's vector, kept beside its record.
    # None: off, or made elsewhere (on AWS, the product sync function, from the table's stream).
    embedder: Embedder | None = None
    products: ProductIndex | None = None
    # Locally, kept pictures go with the last record that names them (core/kept_images.py); on AWS
    # the stream sync function does that, so None there.
    kept: KeptPictures | None = None
    on_duplicate: OnDuplicate = OnDuplicate.WARN  # the gate's policy when a call names none (core/gate.py)
    _locks: tuple[threading.Lock, ...] = field(
        default_factory=lambda: tuple(threading.Lock() for _ in range(LOCK_STRIPES)), init=False, repr=False
    )

    # -- queries -----------------------------------------------------------------------------

    def find_similar(
        self, image_url: str, top: int | None = None, max_distance: int | None = None, *, entity_id: str | None = None
    ) -> FindResult:
        data = self.fetch(image_url)
        return self.find_similar_bytes(data, top, max_distance, image_url=image_url, entity_id=entity_id)

    def find_similar_bytes(
        self,
        data: bytes,
        top: int | None = None,
        max_distance: int | None = None,
        *,
        image_url: str | None = None,
        entity_id: str | None = None,
    ) -> FindResult:
        """The catalog pictures most like `data`, best first. `entity_id`: the catalog item the
        picture is for; a match it was marked not a duplicate of comes back `reviewed`."""
        top = self._check_top(top)
        if entity_id is not None:
            _check_id(entity_id)
        bits = self.pipeline.distance_bits
        if max_distance is not None and not 0 <= max_distance <= bits:
            raise InvalidRequest(f"max_distance must be between 0 and {bits}")
        query = self.fingerprint(data)
        matches = self._matches(query, top, max_distance, entity_id=entity_id)
        return FindResult(query_hash=query.hash, algorithm=query.algo, matches=matches, image_url=image_url)

    def _matches(
        self, query: Fingerprint, top: int, max_distance: int | None, *, entity_id: str | None = None
    ) -> list[Match]:
        """The catalog's best `top` matches of a query: the one path of find_similar and the gate
        (`entity_id`: the item it is for, whose reviewed pairs are marked)."""
        started = time.perf_counter()
        # max_distance applies to the judged distance, which is not the index's (see HashPipeline).
        pipeline = self.pipeline
        hits = self.index.search(
            query.search_hashes, pipeline.candidate_pool(top), part_hashes=pipeline.part_hashes(query),
            part_k=pipeline.part_pool,
        )  # fmt: skip
        self.observe(METRIC_INDEX_LATENCY, (time.perf_counter() - started) * 1000.0)
        matches = self._judge(query, hits, max_distance)[:top]
        if entity_id is not None:
            matches = self._reviewed(entity_id, matches)
        self.observe(METRIC_MATCHES, float(len(matches)))
        return matches

    def get(self, entity_id: str) -> HashRecord:
        record = self.store.get(_check_id(entity_id))
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
        records, last = self.store.page(decode_cursor(cursor) if cursor else None, limit, query or None)
        return records, encode_cursor(last) if last is not None else None

    def duplicate_report(self) -> Mapping[str, Any]:
        report = self.reports.latest() if self.reports is not None else None
        if report is None:
            raise NotFound("no duplicate report yet: start a scan (POST /duplicates/scans, the web app's Duplicates "
                           "page) or run `python -m dupcheck duplicates`")  # fmt: skip
        return report

    def health(self) -> dict[str, object]:
        ready = self.index.ready if isinstance(self.index, LoadingIndex) else True
        return {
            "status": "ok" if ready else "starting",
            "algorithm": self.pipeline.algo,
            "records": self.store.approximate_count(),
            "indexed": self.index.count(),
            "index_ready": ready,
        }

    # -- commands ----------------------------------------------------------------------------

    def register(self, entity_id: str, sku: str, image_url: str) -> HashRecord:
        new_item_id(entity_id)  # before the download: a bad request must cost nothing
        data = self.fetch(image_url)
        return self.register_bytes(entity_id=entity_id, sku=sku, image_url=image_url, data=data)

    def register_bytes(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> HashRecord:
        entry = self.entry_for(entity_id=entity_id, sku=sku, image_url=image_url, data=data)
        self.save(entry)
        return entry.record

    def register_url_checked(
        self, entity_id: str, sku: str, image_url: str, *, on_duplicate: OnDuplicate | None = None
    ) -> Registration:
        """`register_checked` of the picture at `image_url`."""
        new_item_id(entity_id)  # before the download: a bad request must cost nothing
        data = self.fetch(image_url)
        return self.register_checked(entity_id=entity_id, sku=sku, image_url=image_url, data=data,
                                     on_duplicate=on_duplicate)  # fmt: skip

    def register_checked(
        self, *, entity_id: str, sku: str, image_url: str, data: bytes, on_duplicate: OnDuplicate | None = None,
        place: Callable[[Entry], Entry] | None = None,
    ) -> Registration:  # fmt: skip
        """Register through the duplicate gate (core/gate.py): checked by `on_duplicate` (None: the
        service's default), then stored. `place` may change the entry between the check and the
        write (the API keeps an upload's picture there): a rejected picture leaves nothing behind."""
        policy = self.on_duplicate if on_duplicate is None else on_duplicate
        duplicates: list[Match] = []
        checked = policy is not OnDuplicate.ALLOW
        if not checked:
            entry = self.entry_for(entity_id=entity_id, sku=sku, image_url=image_url, data=data)
        else:
            try:
                entry, duplicates = self.checked_entry(entity_id=entity_id, sku=sku, image_url=image_url, data=data)
            except IndexUnavailable:
                # The index cannot be asked (still loading at start, or out of reach): `warn` stores
                # the write unchecked, and says so, rather than lose it; `reject` cannot promise.
                if policy is not OnDuplicate.WARN:
                    raise
                entry, checked = self.entry_for(entity_id=entity_id, sku=sku, image_url=image_url, data=data), False
            if duplicates and policy is OnDuplicate.REJECT:
                raise DuplicateImage(
                    f"{entity_id!r} was not stored: its picture duplicates {_names(duplicates)} (on_duplicate=reject)",
                    [match.to_dict() for match in duplicates],
                )
        if place is not None:
            entry = place(entry)
        self.save(entry)
        return Registration(entry.record, policy, checked=checked, duplicates=duplicates)

    def checked_entry(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> tuple[Entry, list[Match]]:
        """The entry registering would store, and the catalog's duplicates of its picture (best
        first, its own entity_id left out), from one hashing of the picture."""
        new_item_id(entity_id)
        query = self.pipeline.fingerprint_bytes(_check_image(data), max_pixels=self.max_pixels, with_thumbnail=True)
        self.observe(METRIC_HASHES, 1.0)
        entry = entry_of(query, data, entity_id=entity_id, sku=sku, image_url=image_url, max_pixels=self.max_pixels,
                         embedder=self.embedder if self.products is not None else None)  # fmt: skip
        return entry, self.duplicates_of(query, exclude=entity_id)

    def duplicates_of(self, query: Fingerprint, *, exclude: str = "") -> list[Match]:
        """The catalog's duplicates of a query (find_similar's matches with the verdict duplicate),
        at most `default_top`, without the record `exclude`."""
        matches = self._matches(query, self.default_top + 1, None)
        found = [m for m in matches if m.verdict is Verdict.DUPLICATE and m.entity_id != exclude]
        return found[: self.default_top]

    def duplicates_of_entry(self, entry: Entry) -> list[Match]:
        """`duplicates_of` a picture hashed only for storing (an import's row, hashed where no
        query is made): its record made a query as the duplicate report makes one
        (HashPipeline.stored_query, with the thumbnail as the query's picture)."""
        record = entry.record
        codes, usable = self.pipeline.stored_query_codes([record])
        hashes = tuple(HashValue(code.tobytes()) for code in codes[0]) if usable[0] else ()
        query = self.pipeline.stored_query(record, hashes, entry.thumbnail)
        return self.duplicates_of(query, exclude=record.entity_id) if query is not None else []

    def entry_for(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> Entry:
        """Hash an image into the record (and thumbnail) that would be stored, without storing it."""
        entry = build_entry(
            self.pipeline, data, entity_id=entity_id, sku=sku, image_url=image_url, max_pixels=self.max_pixels,
            embedder=self.embedder if self.products is not None else None,
        )  # fmt: skip
        self.observe(METRIC_HASHES, 1.0)
        return entry

    def save(self, entry: Entry) -> None:
        # The thumbnail before the record: a record is never there without it (only an orphan
        # thumbnail can be, which the next write of the id replaces). Then the store: it is the
        # source of truth the index is rebuilt from after a crash. Under the id's lock, so a
        # remove of the same id cannot fall between the writes.
        # A store write that fails takes back what was written beside it (a thumbnail or vector
        # with no record, a kept picture no record uses); a crash in between leaves them to the
        # local server's sweep. A replaced record's kept picture goes if nothing else uses it.
        record = entry.record
        try:
            with self._lock_for(record.entity_id):
                replaced = self.store.get(record.entity_id) if self.kept is not None else None
                try:
                    if entry.thumbnail and self.thumbnails is not None:
                        self.thumbnails.put_many({record.entity_id: entry.thumbnail})
                    if entry.product_vector is not None and self.products is not None:
                        self.products.put_many({record.entity_id: entry.product_vector})  # beside it, as the thumbnail
                    self.store.put(record)
                except Exception:
                    self._take_back(record.entity_id)
                    raise
                self.index.upsert(record)
        except Exception:
            self._release(record.image_url)  # after the id's lock: kept pictures' lock is taken first
            raise
        if replaced is not None and replaced.image_url != record.image_url:
            self._release(replaced.image_url)

    def _release(self, image_url: str) -> None:
        """Delete the kept picture `image_url` names if no record uses it any more. A failure is
        logged, not the caller's: the local server's sweep finds the picture again."""
        if self.kept is None:
            return
        try:
            self.kept.release(image_url)
        except StoreUnavailable as exc:
            log.warning("kept picture of %r not deleted: %s", image_url, exc.message)

    def _take_back(self, entity_id: str) -> None:
        """What a failed save wrote beside the record it could not store (under the id's lock)."""
        undo: list[Callable[[str], object]] = []
        if self.thumbnails is not None:
            undo.append(self.thumbnails.delete)
        if self.products is not None:
            undo.append(self.products.remove)
        for step in undo:
            try:
                step(entity_id)
            except Exception as exc:  # noqa: BLE001 - the save's own error is what its caller hears
                log.warning("after a failed save of %r, not taken back (%s): %s", entity_id, step, exc)

    def forget_orphan(self, entity_id: str) -> bool:
        """Delete the thumbnail and product vector of an id that holds no record (what a crash
        between the writes left); whether it held none. Under the id's lock: never a save's."""
        with self._lock_for(entity_id):
            if self.store.get(entity_id) is not None:
                return False
            self._take_back(entity_id)
            return True

    def remove(self, entity_id: str) -> None:
        """Remove a record; NotFound when there was none. Of concurrent removes of one id, exactly
        one succeeds: the store's delete says whether it deleted something."""
        entity_id = _check_id(entity_id)
        with self._lock_for(entity_id):
            removed = self.store.get(entity_id) if self.kept is not None else None
            if not self.store.delete(entity_id):
                raise NotFound(f"no item with entity_id {entity_id!r}")
            # After the store: an index entry left by a crash here points at no record, and is
            # dropped from every result (the record is read from the store) until reindex.
            self.index.remove(entity_id)
            if self.products is not None:
                self.products.remove(entity_id)
            if self.thumbnails is not None:
                try:
                    self.thumbnails.delete(entity_id)
                except StoreUnavailable as exc:  # the record is gone: an orphan thumbnail is never read
                    log.warning("thumbnail of %r not deleted: %s", entity_id, exc.message)
        if removed is not None:  # after the id's lock: kept pictures' lock is taken first
            self._release(removed.image_url)

    # -- pieces ------------------------------------------------------------------------------

    def _lock_for(self, entity_id: str) -> threading.Lock:
        return self._locks[hash(entity_id) % len(self._locks)]

    def fetch(self, image_url: str) -> bytes:
        _check_url(image_url)
        try:
            return self.fetcher.fetch(image_url)
        except Exception:
            self.observe(METRIC_FETCH_FAILURES, 1.0)
            raise

    def fingerprint(self, data: bytes) -> Fingerprint:
        """A query's fingerprint: every search hash and the verification probe."""
        fp = self.pipeline.fingerprint_bytes(_check_image(data), max_pixels=self.max_pixels)
        self.observe(METRIC_HASHES, 1.0)
        return fp

    def _check_top(self, top: int | None) -> int:
        top = self.default_top if top is None else top
        if not 1 <= top <= MAX_TOP:
            raise InvalidRequest(f"top must be between 1 and {MAX_TOP}")
        return top

    def _thumbnails_of(self, entity_ids: Sequence[str]) -> Mapping[str, bytes]:
        """The candidates' thumbnails, for the look-alike check. Unreadable ones cost the check
        (those candidates keep the verdict of their views), never the query: logged and counted."""
        if self.thumbnails is None or not entity_ids:
            return {}
        try:
            return self.thumbnails.get_many(entity_ids)
        except StoreUnavailable as exc:
            log.warning("thumbnails not read, the look-alike check is skipped: %s", exc.message)
            self.observe(METRIC_THUMBNAIL_FAILURES, 1.0)
            return {}

    def _reviewed(self, entity_id: str, matches: list[Match]) -> list[Match]:
        """`matches` with `reviewed` set where the pair (entity_id, match) was marked not duplicates."""
        if self.decisions is None or not matches:
            return matches
        marked = reviewed_among(self.decisions.involving(entity_id), entity_id, [m.entity_id for m in matches])
        return [replace(m, reviewed=True) if m.entity_id in marked else m for m in matches]

    def _judge(self, query: Fingerprint, hits: list[IndexHit], max_distance: int | None) -> list[Match]:
        stored = self.store.get_many([h.entity_id for h in hits]) if hits else {}
        # A hash from another pipeline means nothing here; `reindex` upgrades such records.
        candidates = [
            (record, hit.distance)
            for hit in hits
            if (record := stored.get(hit.entity_id)) is not None and record.hash_algo in self.pipeline.reads
        ]
        # Best first by the score, banded by verdict (core/matching/verdicts.py): every duplicate, then
        # every similar picture, each band by how much of the pictures agrees; then hash distance.
        ranked: list[tuple[float, int, Match]] = []
        judgements = judge_candidates(self.pipeline, query, candidates, self._thumbnails_of)
        for (record, _), judgement in zip(candidates, judgements, strict=True):
            if max_distance is not None and judgement.distance > max_distance:
                continue
            match = Match(
                entity_id=record.entity_id,
                sku=record.sku,
                image_url=record.image_url,
                distance=judgement.distance,
                match_percent=match_percent(judgement.score),
                verdict=judgement.verdict,
                edits=judgement.edits,
                edit_summary=summary(judgement.edits, same_picture=judgement.verdict is Verdict.DUPLICATE),
            )
            ranked.append((-judgement.score, judgement.distance, match))
        ranked.sort(key=lambda item: (item[0], item[1], item[2].entity_id))
        return [match for *_, match in ranked]


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
    fp = pipeline.fingerprint_bytes(_check_image(data), max_pixels=max_pixels, for_query=False)
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


def _names(matches: Sequence[Match]) -> str:
    return ", ".join(repr(m.entity_id) for m in matches)


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


def _check_image(data: bytes) -> bytes:
    if not data:
        raise InvalidRequest("the image is empty")
    return data


def _check_id(entity_id: str) -> str:
    """An id to look up: anything a store could hold (older versions stored ids of any shape)."""
    if not isinstance(entity_id, str) or not entity_id:
        raise InvalidRequest("entity_id must be a non-empty string")
    if len(entity_id) > MAX_ID_LENGTH:
        raise InvalidRequest(f"entity_id is longer than {MAX_ID_LENGTH} characters")
    return entity_id


def new_item_id(entity_id: str) -> str:
    """An id to store: one a URL can address (core/ids.py)."""
    if problem := id_problem(entity_id):
        raise InvalidRequest(problem)
    return entity_id


def _check_url(image_url: str) -> None:
    if not isinstance(image_url, str) or not image_url.strip():
        raise InvalidRequest("image_url is required")
    if len(image_url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"image_url is longer than {MAX_URL_LENGTH} characters")
