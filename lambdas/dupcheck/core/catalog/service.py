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

from dupcheck.core.catalog.gate import (
    CHECKS,
    EXPIRED,
    SETTLE_S,
    YIELDING,
    Claim,
    ClaimState,
    Found,
    Gate,
    Passage,
    Registration,
    nearest_claims,
)
from dupcheck.core.catalog.kept_images import kept_gone_message, rendition
from dupcheck.core.catalog.writer import RecordWriter, Saved, new_locks
from dupcheck.core.errors import (
    Conflict,
    DupcheckError,
    DuplicateImage,
    IndexUnavailable,
    InvalidRequest,
    KeptImageGone,
    NotFound,
    ServerBusy,
    StoreUnavailable,
)
from dupcheck.core.fingerprint.hashing import HashPipeline
from dupcheck.core.ids import MAX_ID_LENGTH, id_problem
from dupcheck.core.matching.edits import summary
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.matching.verdicts import match_percent
from dupcheck.core.models import (
    DEFAULT_POLICY,
    MAX_TOP,
    Entry,
    FindResult,
    Fingerprint,
    HashRecord,
    HashValue,
    IndexHit,
    Match,
    OnDuplicate,
    Verdict,
    reviewed_among,
)
from dupcheck.core.ports import (
    DuplicateDecisions,
    DuplicateReports,
    FollowsStore,
    HashIndex,
    ImageFetcher,
    KeepingDeletes,
    LoadingIndex,
    RecordStore,
    ThumbnailStore,
)

if TYPE_CHECKING:
    from dupcheck.core.catalog.kept_images import KeptPictures
    from dupcheck.core.catalog.products import Embedder
    from dupcheck.core.models import ProductVector
    from dupcheck.core.ports import ProductIndex

MAX_PAGE = 100  # records per page of the catalog
DEFAULT_PAGE = 20
MAX_URL_LENGTH = 2048
IN_FLIGHT = "\x00claim:"  # a pending claim's key while it is judged (no entity_id holds a NUL)

# Metric names the service reports through its observer (Powertools Metrics on Lambda).
METRIC_HASHES = "HashesComputed"
METRIC_MATCHES = "MatchesFound"
METRIC_FETCH_FAILURES = "FetchFailures"
METRIC_INDEX_LATENCY = "IndexLatencyMs"
METRIC_THUMBNAIL_FAILURES = "ThumbnailReadFailures"

log = logging.getLogger(__name__)

Observer = Callable[[str, float], None]
Candidate = tuple[HashRecord, int, "Claim | None"]  # a record to judge, its distance, the claim it came from
ThumbnailReader = Callable[[Sequence[str]], Mapping[str, bytes]]


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
    decisions: DuplicateDecisions | None = None  # decisions on the report's groups (core/catalog/decisions.py)
    thumbnails: ThumbnailStore | None = None  # None: none kept, the look-alike check is off
    # Similar products (core/catalog/products.py): each registered picture's vector, kept beside its record.
    # None: off, or made elsewhere (on AWS, the product sync function, from the table's stream).
    embedder: Embedder | None = None
    products: ProductIndex | None = None
    # Locally, kept pictures go with the last record that names them (core/catalog/kept_images.py); on AWS
    # the stream sync function does that, so None there.
    kept: KeptPictures | None = None
    on_duplicate: OnDuplicate = DEFAULT_POLICY  # the gate's policy when a call names none (the settings')
    gate: Gate = field(default_factory=Gate)  # the claims of writes in flight (core/catalog/gate.py)
    _locks: tuple[threading.Lock, ...] = field(default_factory=new_locks, init=False, repr=False)

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
        # max_distance applies to the judged distance, which is not the index's (see HashPipeline).
        matches = [match for match, _ in self._judge(query, self._search(query, top), max_distance)[:top]]
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
        """Register without a check (`allow`): a demo, an evaluation, a test's catalog."""
        return self.register_checked(entity_id=entity_id, sku=sku, image_url=image_url, data=data,
                                     on_duplicate=OnDuplicate.ALLOW).record  # fmt: skip

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
        """Register through the duplicate gate (core/catalog/gate.py): checked by `on_duplicate` (None: the
        service's default), then stored. `place` may change the entry between the check and the
        write (the API keeps an upload's picture there): a refused picture leaves nothing behind.
        A write that passed but whose claim another one fenced before it was stored (that one came
        first) is checked again, so its answer names what was stored, or it is stored if nothing was."""
        policy = self.on_duplicate if on_duplicate is None else on_duplicate
        if policy is OnDuplicate.ALLOW:
            entry, query = self.entry_for(entity_id=entity_id, sku=sku, image_url=image_url, data=data), None
        else:
            entry, query = self.query_entry(entity_id=entity_id, sku=sku, image_url=image_url, data=data)
        for attempt in range(CHECKS):
            passage = self.admit(entry, policy, query)
            if not passage.passed:
                raise DuplicateImage(
                    f"{entity_id!r} was not stored: its picture duplicates {_names(passage.duplicates)} "
                    f"(on_duplicate={policy.value})",
                    [match.to_dict() for match in passage.duplicates],
                )
            if entry.product_vector is None and self.embedder is not None and self.products is not None:
                # Only a write that passed needs it (a refused copy would pay ~18 ms of the model for nothing).
                entry = replace(entry, product_vector=self.embedder.embed_bytes(data, max_pixels=self.max_pixels))
            try:
                stored = self.save(entry, passage.claim, place=place)
            except DuplicateImage:
                if attempt == CHECKS - 1:
                    raise
                continue
            return Registration(stored.record, policy, checked=passage.checked, duplicates=passage.duplicates)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def register_kept(
        self, *, entity_id: str, sku: str, data: bytes, pictures: KeptPictures, base_url: str,
        on_duplicate: OnDuplicate | None = None,
    ) -> Registration:  # fmt: skip
        """Register a picture that has no address of its own (an upload without `image_url`, a file
        on this machine): the service keeps a rendition (core/catalog/kept_images.py) and hashes that, so
        re-hashing the kept picture gives this record; the record's image_url is where the API
        serves it (`base_url`/images/...). Kept only once the gate let it through (a refused picture
        is not kept), while the write holds the kept pictures: no delete falls between keep and write."""
        new_item_id(entity_id)
        data = rendition(data, max_pixels=self.max_pixels)

        def place(entry: Entry) -> Entry:
            return replace(entry, record=replace(entry.record, image_url=pictures.keep(data, base_url)))

        return self.register_checked(entity_id=entity_id, sku=sku, image_url="", data=data, on_duplicate=on_duplicate,
                                     place=place)  # fmt: skip

    def query_entry(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> tuple[Entry, Fingerprint]:
        """The entry registering would store and the query that checks it, from one hashing; without
        its product vector (the gate does not judge by it: `register_checked` adds it once it passed)."""
        new_item_id(entity_id)
        query = self.pipeline.fingerprint_bytes(_check_image(data), max_pixels=self.max_pixels, with_thumbnail=True)
        self.observe(METRIC_HASHES, 1.0)
        entry = entry_of(query, data, entity_id=entity_id, sku=sku, image_url=image_url, max_pixels=self.max_pixels)
        return entry, query

    def admit(
        self, entry: Entry, policy: OnDuplicate, query: Fingerprint | None = None, *, settle_s: float = SETTLE_S
    ) -> Passage:
        """The gate for one write (core/catalog/gate.py): claim it, find its duplicates among the catalog and
        the writes in flight, decide by `policy`. `query`: the picture hashed as a query; None for
        one hashed only for storing (an import's row), made a query as the duplicate report does.
        The passage's claim goes with the write (`save`); a refused write stored nothing.

        A write refused only for writes still in flight waits up to `settle_s` for them to settle:
        its answer names the one stored; if none was (each lost to a write that is not this one's
        duplicate), it is checked again. A batch whose rows commit together passes 0 (its answer
        then names a write in flight)."""
        if policy is OnDuplicate.ALLOW:
            return Passage(True, checked=False)
        if query is None:
            query = self._stored_query(entry)
            if query is None:  # views the pipeline cannot search with: nothing to compare
                return Passage(True, checked=False)
        for _ in range(CHECKS):
            passage = self._admit_once(entry, policy, query)
            if passage.passed or not passage.in_flight or settle_s <= 0:
                break
            states = self.gate.settle([claim for claim, _ in passage.in_flight], settle_s)
            stored = [match for claim, match in passage.in_flight if states.get(claim.claim_id) is ClaimState.COMMITTED]
            if stored or any(state is ClaimState.PENDING for state in states.values()):
                passage = replace(passage, duplicates=stored or passage.duplicates, in_flight=())
                break
        return replace(passage, duplicates=passage.duplicates[: self.default_top])

    def _admit_once(self, entry: Entry, policy: OnDuplicate, query: Fingerprint) -> Passage:
        claim = self.gate.open(entry, policy)
        try:
            found = self._gate_check(query, entry.record.entity_id, claim, policy)
        except IndexUnavailable:
            # The index cannot be asked (still loading at start, or out of reach): `warn` stores the
            # write unchecked, and says so, rather than lose it; a gate that refuses cannot promise.
            if policy is not OnDuplicate.WARN:
                self.gate.withdraw(claim)
                raise
            return Passage(True, checked=False, claim=claim)
        except BaseException:
            self.gate.withdraw(claim)
            raise
        return self.gate.decide(policy, claim, found)

    def duplicates_of(self, query: Fingerprint, *, exclude: str = "") -> list[Match]:
        """The catalog's duplicates of a query (find_similar's matches with the verdict duplicate),
        at most `default_top`, without the record `exclude`."""
        hits = self._search(query, self.default_top + 1)
        return [found.match for found in self._found(query, exclude, hits)][: self.default_top]

    def _gate_check(self, query: Fingerprint, exclude: str, own: Claim | None, policy: OnDuplicate) -> list[Found]:
        """The duplicates of a claimed write among the catalog and, read after its claim, the writes
        in flight and those the index may not show yet (read before the index, so a write is in one
        or the other). A write that gives way is judged against what would be stored before it, the
        earliest claim first, and stops at the first duplicate (it lost); only then against the
        claims it would fence, every one (gate.Gate.split)."""
        version = None
        if isinstance(self.index, FollowsStore):
            if not isinstance(self.index, LoadingIndex) or self.index.ready:  # loading: its search says so
                self.index.catch_up()  # what other writers logged is searched, not read beside the index
            version = self.index.source_version
        live = self.gate.live(own, version)
        hits = self._search(query, self.default_top + 1)
        near = self._near(query, live, hits)
        if policy not in YIELDING:
            return self._found(query, exclude, hits, near)
        first, later = self.gate.split(own, [claim for claim, _ in near])
        before = {c.claim_id for c in first}
        stored = [(c, d) for c, d in near if c.claim_id in before and c.state is ClaimState.COMMITTED]
        found = self._found(query, exclude, hits, stored)
        in_flight = sorted(((c, d) for c, d in near if c.claim_id in before and c.state is ClaimState.PENDING),
                           key=lambda pair: pair[0].claim_id)  # fmt: skip
        for pair in in_flight:
            if found:
                break
            found = self._found(query, exclude, [], [pair])
        if found:
            return found
        fenced = {c.claim_id for c in later}
        return self._found(query, exclude, [], [(c, d) for c, d in near if c.claim_id in fenced])

    def _found(self, query: Fingerprint, exclude: str, hits: list[IndexHit],
               near: Sequence[tuple[Claim, int]] = ()) -> list[Found]:  # fmt: skip
        """The duplicates among these candidates (index hits, claims), each with its claim while it
        is in flight: every one of them (the gate must see each claim to decide)."""
        if not hits and not near:
            return []
        return [Found(match, claim if claim is not None and claim.state is ClaimState.PENDING else None)
                for match, claim in self._judge(query, hits, None, near)
                if match.verdict is Verdict.DUPLICATE and match.entity_id != exclude]  # fmt: skip

    def _near(self, query: Fingerprint, live: Sequence[Claim], hits: Sequence[IndexHit]) -> list[tuple[Claim, int]]:
        """The live claims a search would have found had they been indexed: among the nearest
        (gate.nearest_claims), those no farther than the index's farthest when its pool was full."""
        if not live:
            return []
        pipeline = self.pipeline
        pool = pipeline.candidate_pool(self.default_top + 1)
        near = nearest_claims(live, query.search_hashes, pool, pipeline.part_hashes(query), pipeline.part_pool)
        if len(hits) >= pool:
            farthest = max(hit.distance for hit in hits)
            near = [(claim, distance) for claim, distance in near if distance <= farthest]
        return near

    def _stored_query(self, entry: Entry) -> Fingerprint | None:
        """A picture hashed only for storing, made the query a new upload of it would make (the
        duplicate report's way: HashPipeline.stored_query, the thumbnail as the query's picture)."""
        record = entry.record
        codes, usable = self.pipeline.stored_query_codes([record])
        hashes = tuple(HashValue(code.tobytes()) for code in codes[0]) if usable[0] else ()
        return self.pipeline.stored_query(record, hashes, entry.thumbnail)

    def entry_for(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> Entry:
        """Hash an image into the record (and thumbnail) that would be stored, without storing it."""
        entry = build_entry(
            self.pipeline, data, entity_id=entity_id, sku=sku, image_url=image_url, max_pixels=self.max_pixels,
            embedder=self.embedder if self.products is not None else None,
        )  # fmt: skip
        self.observe(METRIC_HASHES, 1.0)
        return entry

    def save(self, entry: Entry, claim: Claim | None = None, *, place: Callable[[Entry], Entry] | None = None) -> Entry:
        """Store one entry (with the claim the gate let it through with); the entry stored. A claim
        fenced meanwhile stores nothing: DuplicateImage naming the write that beat it (ServerBusy
        when its lease passed). `place` changes the entry while its kept picture is held (an upload
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
        return RecordWriter(store=self.store, index=self.index, thumbnails=self.thumbnails, products=self.products,
                            kept=self.kept, claims=self.gate.claims, locks=self._locks)  # fmt: skip

    def forget_orphan(self, entity_id: str) -> bool:
        """Delete the thumbnail and product vector of an id that holds no record (what a crash
        between the writes left); whether it held none. Under the id's lock: never a save's."""
        with self.writer.locks_for([entity_id]):
            if self.store.get(entity_id) is not None:
                return False
            self.writer.take_back([entity_id])
            return True

    def remove(self, entity_id: str) -> None:
        """Remove a record; NotFound when there was none. Of concurrent removes of one id, exactly
        one succeeds: the store's delete says whether it deleted something."""
        entity_id = _check_id(entity_id)
        writer = self.writer
        with writer.locks_for([entity_id]):
            removed = self.store.get(entity_id) if self.kept is not None else None
            if not self.store.delete(entity_id):
                raise NotFound(f"no item with entity_id {entity_id!r}")
            self._forget(entity_id)
        if removed is not None:  # after the id's lock: kept pictures' lock is taken first
            writer.release(removed.image_url)

    def remove_keeping(self, keep: str, entity_ids: Sequence[str]) -> list[str]:
        """Remove these records only while `keep` is in the catalog, in one step of the store (a keep
        decision: of two opposite ones at once, one finds its record gone and removes nothing). The
        ids removed (those still there); Conflict when `keep` is gone."""
        if not isinstance(self.store, KeepingDeletes):
            raise Conflict("this store cannot remove records on the condition that another stays")
        writer = self.writer
        with writer.locks_for([keep, *entity_ids]):
            records = self.store.get_many(list(entity_ids)) if self.kept is not None else {}
            deleted = self.store.delete_keeping(entity_ids, keep)
            if deleted is None:
                raise Conflict(f"{keep!r} is no longer in the catalog (another decision removed it meanwhile): "
                               "nothing was removed")  # fmt: skip
            for entity_id in deleted:
                self._forget(entity_id)
        for entity_id in deleted:
            if (record := records.get(entity_id)) is not None:
                writer.release(record.image_url)
        return deleted

    def product_vector_of(self, record: HashRecord) -> ProductVector | None:
        """A record's product vector made again from its picture (a record put back by an undo),
        where similar products are on here; None when the picture cannot be read (logged: reindex
        makes the missing vector later)."""
        if self.embedder is None or self.products is None:
            return None
        try:
            return self.embedder.embed_bytes(self.fetch(record.image_url), max_pixels=self.max_pixels)
        except DupcheckError as exc:
            log.warning("no product vector for %r: its picture cannot be read (%s)", record.entity_id, exc.message)
            return None

    def _forget(self, entity_id: str) -> None:
        """What goes with a removed record: after the store (an index entry left by a crash here
        points at no record, and is dropped from every result, the record being read from the
        store, until reindex), its index entry, product vector and thumbnail."""
        self.index.remove(entity_id)
        if self.products is not None:
            self.products.remove(entity_id)
        if self.thumbnails is not None:
            try:
                self.thumbnails.delete(entity_id)
            except StoreUnavailable as exc:  # the record is gone: an orphan thumbnail is never read
                log.warning("thumbnail of %r not deleted: %s", entity_id, exc.message)

    # -- pieces ------------------------------------------------------------------------------

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

    def _search(self, query: Fingerprint, top: int) -> list[IndexHit]:
        """The index's candidates for the best `top` matches (HashPipeline.candidate_pool, part_pool)."""
        pipeline = self.pipeline
        started = time.perf_counter()
        hits = self.index.search(
            query.search_hashes, pipeline.candidate_pool(top), part_hashes=pipeline.part_hashes(query),
            part_k=pipeline.part_pool,
        )  # fmt: skip
        self.observe(METRIC_INDEX_LATENCY, (time.perf_counter() - started) * 1000.0)
        return hits

    def _candidates(
        self, hits: list[IndexHit], near: Sequence[tuple[Claim, int]]
    ) -> tuple[list[Candidate], ThumbnailReader, dict[str, HashRecord]]:
        """The index's hits (records read from the store) and the claims near the query: a committed
        one as the record it wrote (when the store holds it still), a pending one as the picture its
        writer claimed with, under a key of its own (its entity_id may hold another record
        meanwhile); how to read their thumbnails; and the pending ones' records by key."""
        claimed = self.gate.claims.entries([c for c, _ in near]) if near and self.gate.claims is not None else {}
        # A hash from another pipeline means nothing here; `reindex` upgrades such records.
        reads = self.pipeline.reads
        pending: list[Candidate] = []
        in_flight: dict[str, bytes] = {}
        in_flight_records: dict[str, HashRecord] = {}
        stored_claims: dict[str, tuple[HashRecord, int, Claim]] = {}
        for claim, distance in near:
            found = claimed.get(claim.claim_id)
            if found is None or found.entry.record.hash_algo not in reads:
                continue  # it stores nothing (withdrawn, beaten), or was written again since
            if found.committed:  # stored: judged as the record it is (its thumbnail is the store's)
                stored_claims[claim.entity_id] = (
                    found.entry.record,
                    distance,
                    replace(claim, state=ClaimState.COMMITTED),
                )
                continue
            key = IN_FLIGHT + claim.claim_id  # its entity_id may hold another record meanwhile
            pending.append((replace(found.entry.record, entity_id=key), distance, claim))
            in_flight[key] = found.entry.thumbnail
            in_flight_records[key] = found.entry.record
        wanted = [h.entity_id for h in hits if h.entity_id not in stored_claims]
        stored = self.store.get_many(wanted) if wanted else {}
        candidates: list[Candidate] = [
            (record, hit.distance, None)
            for hit in hits
            if (record := stored.get(hit.entity_id)) is not None and record.hash_algo in reads
        ]
        candidates += pending + list(stored_claims.values())

        def thumbnails_of(keys: Sequence[str]) -> Mapping[str, bytes]:
            found = dict(self._thumbnails_of([k for k in keys if not k.startswith(IN_FLIGHT)]))
            found.update((k, in_flight[k]) for k in keys if in_flight.get(k))
            return found

        return candidates, thumbnails_of, in_flight_records

    def _judge(
        self, query: Fingerprint, hits: list[IndexHit], max_distance: int | None,
        near: Sequence[tuple[Claim, int]] = (),
    ) -> list[tuple[Match, Claim | None]]:  # fmt: skip
        """Judge the candidates (`_candidates`), best first, each with the claim it came from."""
        candidates, thumbnails_of, in_flight_records = self._candidates(hits, near)
        judgements = judge_candidates(self.pipeline, query, [(r, d) for r, d, _ in candidates], thumbnails_of)
        # Best first by the score, banded by verdict (core/matching/verdicts.py): every duplicate, then
        # every similar picture, each band by how much of the pictures agrees; then hash distance.
        ranked: list[tuple[float, int, Match, Claim | None]] = []
        for (record, _, source), judgement in zip(candidates, judgements, strict=True):
            if max_distance is not None and judgement.distance > max_distance:
                continue
            record = in_flight_records.get(record.entity_id, record)
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
            ranked.append((-judgement.score, judgement.distance, match, source))
        ranked.sort(key=lambda item: (item[0], item[1], item[2].entity_id))
        return [(match, claim) for _, _, match, claim in ranked]


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
