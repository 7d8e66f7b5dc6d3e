"""The use cases: find similar catalog images, register one, look one up, remove one.

`DupcheckService` is what the API, the handlers and the tools call: it composes the use cases over
one set of parts (parts.py), and a caller names the one it calls: `lookups` (lookups.py: find
similar), `records` (records.py: look up, list, store, remove) and `registrar` (here: registration
through the duplicate gate, which judges with the lookups and stores with the records).

Everything here talks to ports only, so the same code runs on Lambda (DynamoDB + OpenSearch)
and on one machine (SQLite + in-process index).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dupcheck.core.catalog.gate import (
    CHECKS,
    SETTLE_S,
    Found,
    Passage,
    Registration,
    expired,
    nearest_claims,
)
from dupcheck.core.catalog.kept_images import rendition
from dupcheck.core.catalog.lookups import CatalogLookups, check_image, new_item_id
from dupcheck.core.catalog.parts import METRIC_HASHES, CatalogParts
from dupcheck.core.catalog.records import CatalogRecords, entry_of
from dupcheck.core.errors import DuplicateImage, IndexUnavailable
from dupcheck.core.models import (
    Claim,
    ClaimState,
    Entry,
    Fingerprint,
    HashRecord,
    HashValue,
    IndexHit,
    Marks,
    Match,
    OnDuplicate,
    Verdict,
)
from dupcheck.core.ports import FollowsStore, LoadingIndex

if TYPE_CHECKING:
    from dupcheck.core.catalog.kept_images import KeptImageLifecycle


class DupcheckService:
    """The use cases (module docstring), built once over one set of parts: every one shares its
    ports, its gate and its id locks."""

    def __init__(self, parts: CatalogParts) -> None:
        self.parts = parts
        self.lookups = CatalogLookups(parts)
        self.records = CatalogRecords(parts, self.lookups)
        self.registrar = Registrar(parts, self.lookups, self.records)


@dataclass
class Registrar:
    """Register pictures through the duplicate gate: its lookups judge them, its records store them."""

    parts: CatalogParts
    lookups: CatalogLookups
    records: CatalogRecords

    def register(self, entity_id: str, sku: str, image_url: str) -> HashRecord:
        new_item_id(entity_id)  # before the download: a bad request must cost nothing
        data = self.lookups.fetch(image_url)
        return self.register_bytes(entity_id=entity_id, sku=sku, image_url=image_url, data=data)

    def register_bytes(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> HashRecord:
        """Register without a check (`allow`): a demo, an evaluation, a test's catalog."""
        return self.register_checked(entity_id=entity_id, sku=sku, image_url=image_url, data=data,
                                     on_duplicate=OnDuplicate.ALLOW).record  # fmt: skip

    def register_url_checked(
        self, entity_id: str, sku: str, image_url: str, *, on_duplicate: OnDuplicate | None = None,
        marks: Marks | None = None,
    ) -> Registration:  # fmt: skip
        """`register_checked` of the picture at `image_url`."""
        new_item_id(entity_id)  # before the download: a bad request must cost nothing
        data = self.lookups.fetch(image_url)
        return self.register_checked(entity_id=entity_id, sku=sku, image_url=image_url, data=data,
                                     on_duplicate=on_duplicate, marks=marks)  # fmt: skip

    def register_checked(
        self, *, entity_id: str, sku: str, image_url: str, data: bytes, on_duplicate: OnDuplicate | None = None,
        place: Callable[[Entry], Entry] | None = None, marks: Marks | None = None,
    ) -> Registration:  # fmt: skip
        """Register through the duplicate gate (core/catalog/gate.py): checked by `on_duplicate` (None: the
        service's default; `marks` reads a mark on the product, None the service's), then stored.
        `place` may change the entry between the check and the write (the API keeps an upload's
        picture there): a refused picture leaves nothing behind.
        A write that passed but whose claim another one fenced before it was stored (that one came
        first) is checked again, so its answer names what was stored, or it is stored if nothing was."""
        parts = self.parts
        policy = parts.on_duplicate if on_duplicate is None else on_duplicate
        if not policy.rule.checks:
            entry, query = self.records.entry_for(entity_id=entity_id, sku=sku, image_url=image_url, data=data), None
        else:
            entry, query = self.query_entry(entity_id=entity_id, sku=sku, image_url=image_url, data=data)
        for attempt in range(CHECKS):
            passage = self.admit(entry, policy, query, marks=marks)
            if not passage.passed:
                raise DuplicateImage(
                    f"{entity_id!r} was not stored: its picture duplicates {_names(passage.duplicates)} "
                    f"(on_duplicate={policy.value})",
                    [match.to_dict() for match in passage.duplicates],
                )
            if entry.product_vector is None and parts.embedder is not None and parts.products is not None:
                # Only a write that passed needs it (a refused copy would pay ~18 ms of the model for nothing).
                entry = replace(entry, product_vector=parts.embedder.embed_bytes(data, max_pixels=parts.max_pixels))
            try:
                stored = self.records.save(entry, passage.claim, place=place)
            except DuplicateImage:
                if attempt == CHECKS - 1:
                    raise
                continue
            return Registration(stored.record, policy, checked=passage.checked, duplicates=self._named(passage))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def register_kept(
        self, *, entity_id: str, sku: str, data: bytes, pictures: KeptImageLifecycle, base_url: str,
        on_duplicate: OnDuplicate | None = None, marks: Marks | None = None,
    ) -> Registration:  # fmt: skip
        """Register a picture that has no address of its own (an upload without `image_url`, a file
        on this machine): the service keeps a rendition (core/catalog/kept_images.py) and hashes that, so
        re-hashing the kept image gives this record; the record's image_url is where the API
        serves it (`base_url`/images/...). Kept only once the gate let it through (a refused picture
        is not kept), while the write holds the kept images: no delete falls between keep and write."""
        new_item_id(entity_id)
        data = rendition(data, max_pixels=self.parts.max_pixels)

        def place(entry: Entry) -> Entry:
            return replace(entry, record=replace(entry.record, image_url=pictures.keep(data, base_url)))

        return self.register_checked(entity_id=entity_id, sku=sku, image_url="", data=data, on_duplicate=on_duplicate,
                                     place=place, marks=marks)  # fmt: skip

    def query_entry(self, *, entity_id: str, sku: str, image_url: str, data: bytes) -> tuple[Entry, Fingerprint]:
        """The entry registering would store and the query that checks it, from one hashing; without
        its product vector (the gate does not judge by it: `register_checked` adds it once it passed)."""
        new_item_id(entity_id)
        parts = self.parts
        query = parts.pipeline.fingerprint_bytes(check_image(data), max_pixels=parts.max_pixels, with_thumbnail=True)
        parts.observe(METRIC_HASHES, 1.0)
        entry = entry_of(query, data, entity_id=entity_id, sku=sku, image_url=image_url, max_pixels=parts.max_pixels)
        return entry, query

    def admit(
        self, entry: Entry, policy: OnDuplicate, query: Fingerprint | None = None, *, settle_s: float = SETTLE_S,
        marks: Marks | None = None,
    ) -> Passage:  # fmt: skip
        """The gate for one write (core/catalog/gate.py): claim it, find its duplicates among the catalog and
        the writes in flight, decide by `policy`. `query`: the picture hashed as a query; None for
        one hashed only for storing (an import's row), made a query as the duplicate report does.
        The passage's claim goes with the write (`save`); a refused write stored nothing.

        A write refused only for writes still in flight waits up to `settle_s` for them to settle:
        its answer names the one stored; if none was (each lost to a write that is not this one's
        duplicate), it is checked again. A batch whose rows commit together passes 0 (its answer
        then names a write in flight)."""
        if not policy.rule.checks:
            return Passage(True, checked=False)
        if query is None:
            query = self._stored_query(entry)
            if query is None:  # views the pipeline cannot search with: nothing to compare
                return Passage(True, checked=False)
        for _ in range(CHECKS):
            passage = self._admit_once(entry, policy, query, marks)
            if passage.passed or not passage.in_flight or settle_s <= 0:
                break
            stored, running = self.parts.gate.standing(passage.in_flight, settle_s)
            if stored or running:
                passage = replace(passage, duplicates=stored or running, in_flight=())
                break
        return replace(passage, duplicates=passage.duplicates[: self.parts.default_top])

    def _named(self, passage: Passage) -> list[Match]:
        """The duplicates a stored write's answer names: of the writes in flight it found (a `warn`),
        waited for now that its own is committed (so none waits on it), those stored or still running."""
        if not passage.in_flight:
            return passage.duplicates
        stored, running = self.parts.gate.standing(passage.in_flight, SETTLE_S)
        dropped = {id(match) for _, match in passage.in_flight} - {id(match) for match in stored + running}
        return [match for match in passage.duplicates if id(match) not in dropped]

    def _admit_once(self, entry: Entry, policy: OnDuplicate, query: Fingerprint, marks: Marks | None) -> Passage:
        claim = self.parts.gate.open(entry, policy)
        try:
            found = self._gate_check(query, entry.record.entity_id, claim, policy, marks)
        except IndexUnavailable:
            # The index cannot be asked (still loading at start, or out of reach): `warn` stores the
            # write unchecked, and says so, rather than lose it; a gate that refuses cannot promise.
            if not policy.rule.stores:
                self.parts.gate.withdraw(claim)
                raise
            return Passage(True, checked=False, claim=claim)
        except BaseException:
            self.parts.gate.withdraw(claim)
            raise
        return self.parts.gate.decide(policy, claim, found)

    def duplicates_of(self, query: Fingerprint, *, exclude: str = "") -> list[Match]:
        """The catalog's duplicates of a query (find_similar's matches with the verdict duplicate),
        at most `default_top`, without the record `exclude`."""
        hits = self.lookups.search(query, self.parts.default_top + 1)
        return [found.match for found in self._found(query, exclude, hits)][: self.parts.default_top]

    def _gate_check(
        self, query: Fingerprint, exclude: str, own: Claim | None, policy: OnDuplicate, marks: Marks | None = None
    ) -> list[Found]:
        """The duplicates of a claimed write among the catalog and, read after its claim, the writes
        in flight and those the index may not show yet (read before the index, so a write is in one
        or the other). A write that gives way is judged against what would be stored before it, the
        earliest claim first, and stops at the first duplicate (it lost); only then against the
        claims it would fence, every one (gate.Gate.split)."""
        version, index, gate = None, self.parts.index, self.parts.gate
        if isinstance(index, FollowsStore):
            if not isinstance(index, LoadingIndex) or index.ready:  # loading: its search says so
                index.catch_up()  # what other writers logged is searched, not read beside the index
            version = index.source_version
        live = gate.live(own, version)
        hits = self.lookups.search(query, self.parts.default_top + 1)
        now = gate.clock()
        near = self._near(query, [c for c in live if not expired(c, now)], hits)
        if policy.rule.stores:  # a warn names no write whose lease passed (it fences nothing either)
            return self._found(query, exclude, hits, near, marks)
        # Those are judged to be fenced, apart: dead writers' claims never crowd a running one out.
        near += self._near(query, [c for c in live if expired(c, now)], hits)
        first, later = gate.split(own, [claim for claim, _ in near])
        before = {c.claim_id for c in first}
        stored = [(c, d) for c, d in near if c.claim_id in before and c.state is ClaimState.COMMITTED]
        found = self._found(query, exclude, hits, stored, marks)
        in_flight = sorted(((c, d) for c, d in near if c.claim_id in before and c.state is ClaimState.PENDING),
                           key=lambda pair: pair[0].claim_id)  # fmt: skip
        for pair in in_flight:
            if found:
                break
            found = self._found(query, exclude, [], [pair], marks)
        if found:
            return found
        fenced = {c.claim_id for c in later}
        return self._found(query, exclude, [], [(c, d) for c, d in near if c.claim_id in fenced], marks)

    def _found(self, query: Fingerprint, exclude: str, hits: list[IndexHit],
               near: Sequence[tuple[Claim, int]] = (), marks: Marks | None = None) -> list[Found]:  # fmt: skip
        """The duplicates among these candidates (index hits, claims), each with its claim while it
        is in flight: every one of them (the gate must see each claim to decide)."""
        if not hits and not near:
            return []
        return [Found(match, claim if claim is not None and claim.state is ClaimState.PENDING else None)
                for match, claim in self.lookups.judge(query, hits, None, near, marks=marks)
                if match.verdict is Verdict.DUPLICATE and match.entity_id != exclude]  # fmt: skip

    def _near(self, query: Fingerprint, live: Sequence[Claim], hits: Sequence[IndexHit]) -> list[tuple[Claim, int]]:
        """The live claims a search would have found had they been indexed: among the nearest
        (gate.nearest_claims), those no farther than the index's farthest when its pool was full."""
        if not live:
            return []
        pipeline = self.parts.pipeline
        pool = pipeline.candidate_pool(self.parts.default_top + 1)
        near = nearest_claims(live, query.search_hashes, pool, pipeline.part_hashes(query), pipeline.part_pool,
                              pipeline.index_parts)  # fmt: skip
        if len(hits) >= pool:
            farthest = max(hit.distance for hit in hits)
            near = [(claim, distance) for claim, distance in near if distance <= farthest]
        return near

    def _stored_query(self, entry: Entry) -> Fingerprint | None:
        """A picture hashed only for storing, made the query a new upload of it would make (the
        duplicate report's way: HashPipeline.stored_query, the thumbnail as the query's picture)."""
        record = entry.record
        codes, usable = self.parts.pipeline.stored_query_codes([record])
        hashes = tuple(HashValue(code.tobytes()) for code in codes[0]) if usable[0] else ()
        return self.parts.pipeline.stored_query(record, hashes, entry.thumbnail)


def _names(matches: Sequence[Match]) -> str:
    return ", ".join(repr(m.entity_id) for m in matches)
