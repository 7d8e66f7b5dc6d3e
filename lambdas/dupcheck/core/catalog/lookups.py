"""Finding the catalog's pictures most like a query: find_similar's path, which the duplicate
gate walks too (service.py's `Registrar`), over the service's parts (parts.py), through ports only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from dupcheck.core.catalog.parts import (
    METRIC_FETCH_FAILURES,
    METRIC_HASHES,
    METRIC_INDEX_LATENCY,
    METRIC_MATCHES,
    METRIC_THUMBNAIL_FAILURES,
    CatalogParts,
    log,
)
from dupcheck.core.errors import InvalidRequest, StoreUnavailable
from dupcheck.core.ids import MAX_ID_LENGTH, id_problem
from dupcheck.core.matching.judge import as_match, judge_candidates
from dupcheck.core.matching.verdicts import Judgement
from dupcheck.core.models import (
    MAX_TOP,
    Claim,
    Entry,
    FindResult,
    Fingerprint,
    HashRecord,
    IndexHit,
    Marks,
    Match,
    reviewed_among,
)

MAX_URL_LENGTH = 2048
PICTURE = "\x00picture:"  # a picture's key while it is judged beside no catalog (judge_pictures)

Candidate = tuple[HashRecord, int, "Claim | None"]  # a record to judge, its distance, the claim it came from
ThumbnailReader = Callable[[Sequence[str]], Mapping[str, bytes]]


@dataclass
class CatalogLookups:
    """Find the catalog's pictures most like a query: by URL, by bytes, by fingerprint."""

    parts: CatalogParts

    def find_similar(
        self, image_url: str, top: int | None = None, max_distance: int | None = None, *, entity_id: str | None = None,
        marks: Marks | None = None,
    ) -> FindResult:  # fmt: skip
        data = self.fetch(image_url)
        return self.find_similar_bytes(data, top, max_distance, image_url=image_url, entity_id=entity_id, marks=marks)

    def find_similar_bytes(
        self,
        data: bytes,
        top: int | None = None,
        max_distance: int | None = None,
        *,
        image_url: str | None = None,
        entity_id: str | None = None,
        marks: Marks | None = None,
    ) -> FindResult:
        """The catalog pictures most like `data`, best first. `entity_id`: the catalog item the
        picture is for; a match it was marked not a duplicate of comes back `reviewed`. `marks`:
        what a mark on the product means (None: the service's)."""
        top = self._check_top(top)
        if entity_id is not None:
            check_id(entity_id)
        bits = self.parts.pipeline.distance_bits
        if max_distance is not None and not 0 <= max_distance <= bits:
            raise InvalidRequest(f"max_distance must be between 0 and {bits}")
        query = self.fingerprint(data)
        matches = self._matches(query, top, max_distance, entity_id=entity_id, marks=marks)
        return FindResult(query_hash=query.hash, algorithm=query.algo, matches=matches, image_url=image_url)

    def find_similar_query(self, query: Fingerprint, top: int | None = None, marks: Marks | None = None) -> FindResult:
        """find_similar for a picture already fingerprinted (a check job's row: its query and the
        entry kept of it come from one hashing, `Registrar.query_entry`)."""
        matches = self._matches(query, self._check_top(top), None, marks=marks)
        return FindResult(query_hash=query.hash, algorithm=query.algo, matches=matches)

    def _matches(
        self, query: Fingerprint, top: int, max_distance: int | None, *, entity_id: str | None = None,
        marks: Marks | None = None,
    ) -> list[Match]:  # fmt: skip
        """The catalog's best `top` matches of a query: the one path of find_similar and the gate
        (`entity_id`: the item it is for, whose reviewed pairs are marked)."""
        # max_distance applies to the judged distance, which is not the index's (see HashPipeline).
        matches = [match for match, _ in self.judge(query, self.search(query, top), max_distance, marks=marks)[:top]]
        if entity_id is not None:
            matches = self._reviewed(entity_id, matches)
        self.parts.observe(METRIC_MATCHES, float(len(matches)))
        return matches

    def fetch(self, image_url: str) -> bytes:
        check_url(image_url)
        try:
            return self.parts.fetcher.fetch(image_url)
        except Exception:
            self.parts.observe(METRIC_FETCH_FAILURES, 1.0)
            raise

    def fingerprint(self, data: bytes) -> Fingerprint:
        """A query's fingerprint: every search hash and the verification probe."""
        fp = self.parts.pipeline.fingerprint_bytes(check_image(data), max_pixels=self.parts.max_pixels)
        self.parts.observe(METRIC_HASHES, 1.0)
        return fp

    def _check_top(self, top: int | None) -> int:
        top = self.parts.default_top if top is None else top
        if not 1 <= top <= MAX_TOP:
            raise InvalidRequest(f"top must be between 1 and {MAX_TOP}")
        return top

    def _thumbnails_of(self, entity_ids: Sequence[str]) -> Mapping[str, bytes]:
        """The candidates' thumbnails, for the look-alike check. Unreadable ones cost the check
        (those candidates keep the verdict of their views), never the query: logged and counted."""
        if self.parts.thumbnails is None or not entity_ids:
            return {}
        try:
            return self.parts.thumbnails.get_many(entity_ids)
        except StoreUnavailable as exc:
            log.warning("thumbnails not read, the look-alike check is skipped: %s", exc.message)
            self.parts.observe(METRIC_THUMBNAIL_FAILURES, 1.0)
            return {}

    def _reviewed(self, entity_id: str, matches: list[Match]) -> list[Match]:
        """`matches` with `reviewed` set where the pair (entity_id, match) was marked not duplicates."""
        if self.parts.decisions is None or not matches:
            return matches
        marked = reviewed_among(self.parts.decisions.involving(entity_id), entity_id, [m.entity_id for m in matches])
        return [replace(m, reviewed=True) if m.entity_id in marked else m for m in matches]

    def search(self, query: Fingerprint, top: int) -> list[IndexHit]:
        """The index's candidates for the best `top` matches (HashPipeline.candidate_pool, part_pool)."""
        pipeline = self.parts.pipeline
        started = time.perf_counter()
        hits = self.parts.index.search(
            query.search_hashes, pipeline.candidate_pool(top), part_hashes=pipeline.part_hashes(query),
            part_k=pipeline.part_pool,
        )  # fmt: skip
        self.parts.observe(METRIC_INDEX_LATENCY, (time.perf_counter() - started) * 1000.0)
        return hits

    def _candidates(
        self, hits: list[IndexHit], near: Sequence[tuple[Claim, int]]
    ) -> tuple[list[Candidate], ThumbnailReader, dict[str, HashRecord]]:
        """The index's hits (records read from the store) and the claims near the query as the gate
        gives them (`Gate.claimed`); how to read their thumbnails; and the pending claims' records
        by their keys."""
        reads = self.parts.pipeline.reads  # a hash from another pipeline means nothing here (reindex upgrades it)
        claimed = self.parts.gate.claimed(near, reads)
        wanted = [h.entity_id for h in hits if h.entity_id not in claimed.committed]
        stored = self.parts.store.get_many(wanted) if wanted else {}
        candidates: list[Candidate] = [
            (record, hit.distance, None)
            for hit in hits
            if (record := stored.get(hit.entity_id)) is not None and record.hash_algo in reads
        ]
        candidates += claimed.pending + list(claimed.committed.values())

        def thumbnails_of(keys: Sequence[str]) -> Mapping[str, bytes]:
            found = dict(self._thumbnails_of([k for k in keys if not claimed.holds(k)]))
            found.update((k, claimed.thumbnails[k]) for k in keys if claimed.thumbnails.get(k))
            return found

        return candidates, thumbnails_of, claimed.records

    def judge(
        self, query: Fingerprint, hits: list[IndexHit], max_distance: int | None,
        near: Sequence[tuple[Claim, int]] = (), *, marks: Marks | None = None,
    ) -> list[tuple[Match, Claim | None]]:  # fmt: skip
        """Judge the candidates (`_candidates`), best first, each with the claim it came from, a
        mark on the product read as `marks` says (None: the service's setting)."""
        candidates, thumbnails_of, in_flight_records = self._candidates(hits, near)
        judgements = judge_candidates(self.parts.pipeline, query, [(r, d) for r, d, _ in candidates], thumbnails_of,
                                      self.parts.marks if marks is None else marks)  # fmt: skip
        return self._ranked(candidates, judgements, max_distance, in_flight_records)

    def judge_pictures(
        self, query: Fingerprint, pictures: Sequence[tuple[Entry, int]], marks: Marks | None = None
    ) -> list[Match]:
        """Pictures that are not in the catalog (a check job's earlier rows, core/jobs/import_runs.py),
        each with its hash distance to the query, judged as find_similar judges the catalog's
        candidates; best first, each named by its own record."""
        reads = self.parts.pipeline.reads
        keyed = {f"{PICTURE}{i}": entry for i, (entry, _) in enumerate(pictures) if entry.record.hash_algo in reads}
        distance = {f"{PICTURE}{i}": d for i, (_, d) in enumerate(pictures)}
        candidates: list[Candidate] = [(replace(entry.record, entity_id=key), distance[key], None)
                                       for key, entry in keyed.items()]  # fmt: skip

        def thumbnails_of(keys: Sequence[str]) -> Mapping[str, bytes]:
            return {key: keyed[key].thumbnail for key in keys if key in keyed and keyed[key].thumbnail}

        judgements = judge_candidates(self.parts.pipeline, query, [(r, d) for r, d, _ in candidates], thumbnails_of,
                                      self.parts.marks if marks is None else marks)  # fmt: skip
        ranked = self._ranked(candidates, judgements, None, {key: entry.record for key, entry in keyed.items()})
        return [match for match, _ in ranked]

    def _ranked(
        self, candidates: Sequence[Candidate], judgements: Sequence[Judgement], max_distance: int | None,
        records: Mapping[str, HashRecord],
    ) -> list[tuple[Match, Claim | None]]:  # fmt: skip
        """The judged candidates as matches, best first, each with the claim it came from; a
        candidate judged under a key of its own is named by its record in `records`."""
        # Best first by the score, banded by verdict (core/matching/verdicts.py): every duplicate, then
        # every similar picture, each band by how much of the pictures agrees; then hash distance.
        ranked: list[tuple[float, int, str, Match, Claim | None]] = []
        for (record, _, source), judgement in zip(candidates, judgements, strict=True):
            # A candidate nothing lined up was not judged: it is not called different, it is not listed.
            if not judgement.judged or (max_distance is not None and judgement.distance > max_distance):
                continue
            match = as_match(records.get(record.entity_id, record), judgement)
            ranked.append((-judgement.score, judgement.distance, match.entity_id, match, source))
        ranked.sort(key=lambda item: item[:3])
        return [(match, claim) for *_, match, claim in ranked]


def check_image(data: bytes) -> bytes:
    if not data:
        raise InvalidRequest("the image is empty")
    return data


def check_id(entity_id: str) -> str:
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


def check_url(image_url: str) -> None:
    if not isinstance(image_url, str) or not image_url.strip():
        raise InvalidRequest("image_url is required")
    if len(image_url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"image_url is longer than {MAX_URL_LENGTH} characters")
