"""Image bytes -> decoded, normalised image -> fingerprint, through exactly one pipeline.

A fingerprint is what a record stores and a query searches with: the hashes the index compares,
the features verification reads (the default's views), the thumbnail kept beside the record, and
for a query its working copy (`Fingerprint.probe`). That is all a pipeline does: judging the
candidates a query's hashes find is the matching engine's (core/matching/judge.py,
`judge_candidates`); a pipeline only declares how its candidates are judged (`judging`:
core/limits/judging.py), and with which policy.

A pipeline is named by `algo` (stored on every record as `hash_algo`): the same name always
means the same decode, normalisation, hash and stored features, so an indexed hash is only ever
compared with a query hash from the same code. Changing any step means a new name, and
`reindex` upgrades: it re-hashes from the image, or, where only the stored form changed,
converts the record (`upgrade`). A pipeline `reads` the records of such earlier names, so a
catalog keeps answering between a deployment and its reindex.

The default's fingerprint (`dualphash128-v5`; v4's, v3's and v2's are the same hashes and views)
was chosen by measurement (docs/lab/evaluation.md):
* the indexed vector is two 64-bit DCT hashes, one of the whole picture and one of the picture
  with uniform borders trimmed, each taken through a centre-weighted window. Hamming distance
  over the pair ranks candidates: a padded or framed copy keeps the trimmed half close, a copy
  with a badge over the border keeps the whole-picture half close, and the window makes both
  tolerant of crops and of rotated corners, which only touch the borders;
* at query time the mirrored pair is searched too, and a pair whose whole-picture half is taken
  with 10% of the query's mean grey added on every side: a cropped copy, padded back towards
  the layout of the picture it was cut from. Query-only hashes can change without a new
  `algo`: stored records are unaffected;
* hashes only find candidates: every record also stores two small views of its picture
  (core/stored/views.py), which verification aligns with the query's; `distance` stays the
  hash distance of the closer half, out of 64 bits;
* v3 stores the views compressed (core/stored/views_codec.py: under 900 bytes, was 3,072 raw
  and 4 KB of base64 in v2); hashes and views are v2's, so v2 records are read as they are and
  `reindex` converts them without downloading anything;
* v5 keeps the picture itself beside each record, at 384 px (core/stored/thumbnails.py), for
  the same-photograph test (core/matching/photograph.py), and decodes a JPEG at half its size or
  more (v4 kept its 160 px working copy, at a quarter): its hashes and views are v4's, but v4
  records need their image again for the larger picture (`reindex`); until then the test
  compares them at 160 px.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Protocol

import numpy as np
from PIL import Image

from dupcheck.core.limits.judging import ByDistance, Judging, Verified
from dupcheck.core.limits.policy import (
    ALIGNED_DUAL_PHASH,
    FINE_CHROMA_STEP,
    KEPT_SIDE,
    PHASH_DUPLICATE_MAX,
    PHASH_SIMILAR_MAX,
    WORK_SIDE,
)
from dupcheck.core.models import Fingerprint, HashPart, HashRecord, HashValue
from dupcheck.core.pictures.arrays import hann, odd_median, odd_medians, sampler
from dupcheck.core.pictures.imaging import CHROMA_STEP, decode_image
from dupcheck.core.pictures.pixels import cosine_matrix, crop, low_frequencies, luma, planar, trim_box
from dupcheck.core.stored.thumbnails import Thumbnail, probe_of_kept, thumbnail_bytes
from dupcheck.core.stored.views import Probe, stored_lumas, stored_views, views_of


class HashPipeline(Protocol):
    """One named way from image bytes to fingerprints, which declares how their candidates are
    judged (`judging`).

    Two widths, one meaning each: `index_bits` is the vector the index stores and searches;
    `distance_bits` is what a judged `distance` (and so `max_distance`) is
    out of. They differ when the indexed vector concatenates hashes (the default: two halves).
    `candidate_pool` is the one place that decides how many index candidates a query judges.
    """

    algo: str
    index_bits: int
    distance_bits: int
    keeps_thumbnails: bool  # its records come with a thumbnail (Fingerprint.thumbnail) kept beside them
    # Every `hash_algo` whose records this pipeline compares with its queries: its own, and
    # earlier names whose hashes it shares (their features may be in an older stored form).
    reads: frozenset[str]

    def fingerprint(self, image: Image.Image, *, for_query: bool = True, with_thumbnail: bool = False) -> Fingerprint:
        """`for_query=False` skips the query-only hashes: what registering an image needs.
        `with_thumbnail` gives a query the record's thumbnail too: a picture checked and then
        registered (the duplicate gate) is hashed once."""
        ...

    def fingerprint_bytes(
        self, data: bytes, *, max_pixels: int, for_query: bool = True, with_thumbnail: bool = False
    ) -> Fingerprint: ...

    def candidate_pool(self, top: int) -> int:
        """How many index candidates to fetch so that `top` survive verification."""
        ...

    def part_hashes(self, query: Fingerprint) -> tuple[HashValue, ...]:
        """What each of `index_parts` is searched with, on its own, for `part_pool` more
        candidates a part (HashIndex.search's `part_hashes`); none without parts."""
        ...

    @property
    def index_parts(self) -> tuple[HashPart, ...]:
        """The spans of the indexed hash that the index also searches on their own, in the order
        their candidates are added (none: the whole hash alone)."""
        ...

    @property
    def part_pool(self) -> int:
        """How many candidates each of `index_parts` adds, beyond those already found."""
        ...

    @property
    def judging(self) -> Judging:
        """How its candidates are judged: what core/matching/judge.py's `judge_candidates` reads."""
        ...

    def upgrade(self, record: HashRecord) -> HashRecord | None:
        """A record of an older name this pipeline reads, converted to its own without the image
        (a new stored form of the same features), or None when only re-hashing can do it."""
        ...

    # A stored record as a query: how the catalog is checked against itself (the duplicate
    # report) from what records store, without their images.

    def stored_query_codes(self, records: Sequence[HashRecord]) -> tuple[np.ndarray, np.ndarray]:
        """Each record's query hashes (`Fingerprint.query_hashes`) from its stored features, in
        one batch: (records, query hashes, index_bits // 8) packed bytes, and (records,) bool:
        which records' features gave them (missing or damaged views do not)."""
        ...

    def stored_query(
        self, record: HashRecord, query_hashes: tuple[HashValue, ...], thumbnail: bytes = b""
    ) -> Fingerprint | None:
        """The record as `judge_candidates` takes a query (`query_hashes` from stored_query_codes; its
        `thumbnail`, when the pipeline keeps one, gives the query its picture), or None when its
        features cannot make one."""
        ...


# -- shared image steps -------------------------------------------------------------------------


def dct_hash(gray: np.ndarray, size: int = 32, keep: int = 8) -> np.ndarray:
    """pHash bits: the `keep`x`keep` lowest DCT frequencies of a `size`x`size` copy, vs their median."""
    small = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    coefficients = low_frequencies(np.asarray(small, dtype=np.float64), keep)
    return coefficients > odd_median(coefficients[1:])


@lru_cache(maxsize=8)  # the whole picture's shape repeats across a catalog; 400 KB at most each
def _window(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The Hann weights of a height x width picture, and 1 - weights."""
    weight = np.outer(hann(height), hann(width))
    rest = 1.0 - weight
    weight.flags.writeable = rest.flags.writeable = False
    return weight, rest


def centre_weighted(gray: np.ndarray) -> np.ndarray:
    """Fade the picture towards its mean with a Hann window: borders, what crops remove and
    rotations fill, count least. A stronger window (power 2, 3) measured worse. (Pictures on
    the last two axes: a stack is weighted picture by picture.)"""
    weight, rest = _window(*gray.shape[-2:])
    faded = gray * weight
    faded += _means(gray) * rest
    return faded


def pad_with_mean(gray: np.ndarray, share: float) -> np.ndarray:
    """Add `share` of each side back around a picture, in its mean grey (each of a stack in its own)."""
    height, width = gray.shape[-2:]
    rows, cols = round(height * share), round(width * share)
    padded = np.empty((*gray.shape[:-2], height + 2 * rows, width + 2 * cols), dtype=np.float64)
    padded[...] = _means(gray)
    padded[..., rows : rows + height, cols : cols + width] = gray
    return padded


def _means(gray: np.ndarray) -> np.ndarray | float:
    """Each picture's mean; one picture's exactly as `gray.mean()` sums it (a stored hash must
    not move by a rounding difference at its median)."""
    return float(gray.mean()) if gray.ndim == 2 else gray.mean(axis=(-2, -1), keepdims=True)


def imagehash_phash(image: Image.Image) -> HashValue:
    """`imagehash.phash(image)` bit for bit (tests compare them), without imagehash or scipy,
    so the Lambda bundle leaves out ~100 MB the default pipeline never uses."""
    small = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    matrix = cosine_matrix(32)
    low = (matrix @ small @ matrix.T)[:8, :8]
    # A plain picture's AC coefficients are 0 in exact arithmetic: keep float noise out of the
    # comparison with their median (0), as scipy's transform does.
    low[np.abs(low) < 1e-9 * np.abs(low).max(initial=0.0)] = 0.0
    return _pack(low > np.median(low))


def _pack(bits: np.ndarray) -> HashValue:
    return HashValue(np.packbits(bits).tobytes())


@cache
def _views_hash_matrices(side: int, pad: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What stored_query_codes hashes a record's luma views with: (side * side, 64) float32
    matrices from a flattened view to the 8x8 lowest DCT frequencies of the view taken as
    `fingerprint` takes a picture (centre weighted), and of the view padded back as a cropped
    copy's would be (padded with its mean, weighted, resampled back to `side`); and the signs
    that turn frequencies into the mirrored picture's. Each step is linear in the pixels (the
    mean too), so a matrix is the steps applied to every basis picture. (Unlike `dct_hash`
    nothing is rounded to bytes: these hashes are only compared with each other.)"""
    basis = np.eye(side * side).reshape(side * side, side, side)
    padded = centre_weighted(pad_with_mean(basis, pad))
    resample = sampler(padded.shape[-1], side, 0.0, 1.0).astype(np.float64)
    padded = resample @ padded @ resample.T
    mirror = np.tile((-1.0) ** np.arange(8), 8)  # frequency (u, v) at u * 8 + v: odd v change sign
    return (
        low_frequencies(centre_weighted(basis), 8).astype(np.float32),
        low_frequencies(padded, 8).astype(np.float32),
        mirror.astype(np.float32),
    )


# -- pipelines ----------------------------------------------------------------------------------


class PHash64:
    """Plain 64-bit DCT pHash (imagehash's) of the whole image: the baseline to measure against."""

    algo = "phash64-v1"
    reads = frozenset({algo})
    index_bits = distance_bits = 64
    keeps_thumbnails = False
    # JPEG decodes at the smallest DCT scale that keeps >= 256 px: pHash looks at 32x32.
    draft_size = 256
    # Its verdicts by distance (the limits: core/limits/policy.py).
    judging = ByDistance(duplicate_max=PHASH_DUPLICATE_MAX, similar_max=PHASH_SIMILAR_MAX, bits=distance_bits)

    def fingerprint(self, image: Image.Image, *, for_query: bool = True, with_thumbnail: bool = False) -> Fingerprint:
        return Fingerprint(algo=self.algo, hash=imagehash_phash(image))  # no query-only hashes, no thumbnail

    def fingerprint_bytes(
        self, data: bytes, *, max_pixels: int, for_query: bool = True, with_thumbnail: bool = False
    ) -> Fingerprint:
        image = decode_image(data, max_pixels=max_pixels, draft_size=self.draft_size)
        return self.fingerprint(image, for_query=for_query)

    def candidate_pool(self, top: int) -> int:
        return top

    def part_hashes(self, query: Fingerprint) -> tuple[HashValue, ...]:
        return ()

    index_parts: tuple[HashPart, ...] = ()
    part_pool = 0

    def upgrade(self, record: HashRecord) -> HashRecord | None:
        return None

    def stored_query_codes(self, records: Sequence[HashRecord]) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(records), 0, self.index_bits // 8), dtype=np.uint8), np.ones(len(records), dtype=bool)

    def stored_query(
        self, record: HashRecord, query_hashes: tuple[HashValue, ...], thumbnail: bytes = b""
    ) -> Fingerprint | None:
        return Fingerprint(algo=self.algo, hash=record.hash)


class AlignedDualPHash:
    """Whole-picture and border-trimmed centre-weighted pHash to find candidates, and the views
    and kept picture that verification aligns to decide which are duplicates (its `judging`:
    core/matching/judge.py; see module)."""

    algo = "dualphash128-v5"
    small_kept = "dualphash128-v4"  # the same record, its 160 px working copy kept beside it
    compact = "dualphash128-v3"  # the same record, nothing kept beside it
    legacy = "dualphash128-v2"  # the same hashes and views, the views stored raw
    reads = frozenset({algo, small_kept, compact, legacy})
    with_compact_views = (algo, small_kept, compact)  # the names whose views are stored compact
    keeps = frozenset({algo, small_kept})  # the names whose records have a picture beside them
    index_bits = 128  # the whole-picture and the trimmed hash, concatenated
    distance_bits = 64  # a judged distance is the closer half's
    # Both halves, each searched on its own too: a copy whose border changed keeps one half near
    # where the other moved, and a padded or framed record's trimmed half is its original's whole
    # half (`part_hashes`).
    index_parts = (HashPart("whole", 0, 64), HashPart("trimmed", 64, 64))
    # The 4 nearest on each half miss fewer records of a photograph stored several times than the
    # whole half's 8 (docs/lab/evaluation.md, "Candidates by either half"); the 8 they add are the
    # judge's `policy.by_part`, all screened.
    part_pool = 4
    keeps_thumbnails = True  # the picture, for the same-photograph test (core/matching/photograph.py)
    # JPEG decodes at the smallest DCT scale that keeps the short side >= this: the kept picture
    # and the test's compared patch need the detail (v4: 256, a quarter of a 1024 px picture).
    draft_size = KEPT_SIDE
    work_size = WORK_SIDE  # the hashes and views see the same <= 160 px picture, whatever arrived
    query_pad = 0.10  # share of each side re-added to query pictures (one pad as good as two)
    # How its candidates are judged: how many verified, which looked at, the views-only tiers.
    policy = ALIGNED_DUAL_PHASH

    def fingerprint(self, image: Image.Image, *, for_query: bool = True, with_thumbnail: bool = False) -> Fingerprint:
        """(A query's probe keeps `image` for the same-photograph test: do not change it after.)"""
        return self._fingerprint(image, for_query, with_thumbnail)

    def fingerprint_bytes(
        self, data: bytes, *, max_pixels: int, for_query: bool = True, with_thumbnail: bool = False
    ) -> Fingerprint:
        image = decode_image(data, max_pixels=max_pixels, draft_size=self.draft_size)
        return self._fingerprint(image, for_query, with_thumbnail)

    def _fingerprint(self, picture: Image.Image, for_query: bool, with_thumbnail: bool = False) -> Fingerprint:
        if picture.mode != "RGB":
            picture = picture.convert("RGB")
        # The working copy is made from a copy: the picture itself is what the same-photograph
        # test looks at (the query's, reduced only if a candidate is looked at; the one kept
        # beside a record).
        image = picture.copy()
        image.thumbnail((self.work_size, self.work_size), Image.Resampling.BILINEAR)
        rgb = planar(np.asarray(image))
        box = trim_box(rgb)
        # The trimmed picture's luma is the whole one's, cut: sliced, not computed again. A
        # contiguous copy, as luma(trimmed) was: its mean sums the same values in the same order.
        gray = luma(rgb)
        gray_trimmed = np.ascontiguousarray(crop(gray, box))
        whole, cut = centre_weighted(gray), centre_weighted(gray_trimmed)
        cut_bits = dct_hash(cut)
        views = views_of(rgb, box, image)
        hash_value = _pack(np.concatenate([dct_hash(whole), cut_bits]))
        # Made before any probe is judged (which may reduce the picture it holds).
        thumbnail = (
            thumbnail_bytes(hash_value, picture, box, rgb.shape, _chroma_step(picture))
            if with_thumbnail or not for_query
            else b""
        )
        if not for_query:
            return Fingerprint(algo=self.algo, hash=hash_value, features={"views": views.encode()}, thumbnail=thumbnail)
        probe = Probe(rgb, views, box, source=picture, colours_kept=_colours_kept(picture))
        return Fingerprint(
            algo=self.algo,
            hash=hash_value,
            query_hashes=self._query_hashes(gray, whole, cut, cut_bits) + _turned_back(probe),
            features={"views": views.encode()},
            thumbnail=thumbnail,
            probe=probe,
        )

    def _query_hashes(
        self, gray: np.ndarray, whole: np.ndarray, cut: np.ndarray, cut_bits: np.ndarray
    ) -> tuple[HashValue, ...]:
        """The mirrored pair, and the pair with the picture padded back as if it had been cropped."""
        cut_mirrored = dct_hash(cut[:, ::-1])
        uncropped = centre_weighted(pad_with_mean(gray, self.query_pad))
        return (
            _pack(np.concatenate([dct_hash(whole[:, ::-1]), cut_mirrored])),
            _pack(np.concatenate([dct_hash(uncropped), cut_bits])),
            _pack(np.concatenate([dct_hash(uncropped[:, ::-1]), cut_mirrored])),
        )

    def candidate_pool(self, top: int) -> int:
        return max(top, self.policy.screened)

    def part_hashes(self, query: Fingerprint) -> tuple[HashValue, ...]:
        """Both halves of every query hash, searched against both halves of the records. A copy
        whose border changed (padded, framed, turned with a fill, cropped) keeps its whole-picture
        half where the trimmed one moved; a photograph cropped to its content hashes, trimmed, as
        the photograph does whole; and a padded or framed record's trimmed half is its original's
        whole half: the 128 bits together then rank it past the first candidates
        (docs/lab/evaluation.md, "Candidates by one half", "Candidates by either half")."""
        return tuple(dict.fromkeys(half for value in query.search_hashes for half in value.parts(2)))

    @property
    def judging(self) -> Verified:
        """Verified under `policy` (read when judged: a test may swap the policy)."""
        return Verified(
            policy=self.policy, bits=self.distance_bits, compact=self.with_compact_views, raw=self.legacy,
            keeps=self.keeps,
        )  # fmt: skip

    def upgrade(self, record: HashRecord) -> HashRecord | None:
        return None  # an older record lacks its picture at 384 px, which only the image can give

    def stored_query_codes(self, records: Sequence[HashRecord]) -> tuple[np.ndarray, np.ndarray]:
        """The query hashes `fingerprint` takes from a picture, for stored records, which keep
        their hash (from the whole <= 160 px picture) and 32 px views: each hash with the bits
        flipped that mirroring (padding back) flips in the views' own hashes. Wherever the views
        hash a bit differently from the picture, the stored bit is kept, so a record's mirrored
        hash lies about as close to a mirrored copy's stored hash as the picture's own would
        (docs/lab/evaluation.md, "Catalog-wide duplicates")."""
        codes = np.zeros((len(records), 3, self.index_bits // 8), dtype=np.uint8)
        found = stored_lumas(records, self.with_compact_views, self.legacy)
        usable = np.array(
            [grid is not None and r.hash.bits == self.index_bits for r, grid in zip(records, found, strict=True)],
            dtype=bool,
        )
        rows = np.flatnonzero(usable)
        if not len(rows):
            return codes, usable
        lumas = np.stack([grid for i in rows.tolist() if (grid := found[i]) is not None]).reshape(len(rows), 2, -1)
        # The steps before the median are linear in the pixels: a batch is two matrix products
        # (_views_hash_matrices). A mirrored picture's frequencies are its own with the odd
        # horizontal ones negated (the weighting and the padding are symmetric).
        weighted, padded, mirror = _views_hash_matrices(int(np.sqrt(lumas.shape[-1])), self.query_pad)
        low = lumas @ weighted  # (n, 2, 64): whole and cut
        low_padded = lumas[:, 0] @ padded
        views_hashes = {
            name: values > odd_medians(values[..., 1:])
            for name, values in (
                ("whole", low[:, 0]), ("cut", low[:, 1]), ("whole mirrored", low[:, 0] * mirror),
                ("cut mirrored", low[:, 1] * mirror), ("padded", low_padded), ("padded mirrored", low_padded * mirror),
            )
        }  # fmt: skip
        own_whole, own_cut = views_hashes["whole"], views_hashes["cut"]
        flip_whole, flip_cut = own_whole ^ views_hashes["whole mirrored"], own_cut ^ views_hashes["cut mirrored"]
        unchanged = np.zeros_like(flip_cut)
        flips = np.stack([
            np.concatenate([flip_whole, flip_cut], axis=1),  # mirrored
            np.concatenate([own_whole ^ views_hashes["padded"], unchanged], axis=1),  # padded back (cut half as stored)
            np.concatenate([own_whole ^ views_hashes["padded mirrored"], flip_cut], axis=1),  # both
        ], axis=1)  # fmt: skip
        stored = np.frombuffer(b"".join(records[i].hash.data for i in rows.tolist()), dtype=np.uint8)
        codes[rows] = stored.reshape(len(rows), 1, -1) ^ np.packbits(flips, axis=2)
        return codes, usable

    def stored_query(
        self, record: HashRecord, query_hashes: tuple[HashValue, ...], thumbnail: bytes = b""
    ) -> Fingerprint | None:
        """With the record's kept picture, the query a new upload of its picture would make (its
        working copy made from the kept picture, which is also its detail); without, one whose
        picture is rebuilt from the views when it is turned."""
        views = stored_views([record], self.with_compact_views, self.legacy)[0]
        if views is None:
            return None
        kept = Thumbnail.decode(thumbnail) if thumbnail else None
        own = kept is not None and kept.hash == record.hash
        probe = probe_of_kept(views, kept) if kept is not None and own else Probe.of_views(views)
        # Its kept picture goes with it: judged the other way round, the record is the catalog
        # picture it is (judge.py).
        return Fingerprint(algo=self.algo, hash=record.hash, query_hashes=query_hashes, features=record.features,
                           thumbnail=thumbnail if own else b"", probe=probe)  # fmt: skip


PIPELINES: dict[str, type[HashPipeline]] = {PHash64.algo: PHash64, AlignedDualPHash.algo: AlignedDualPHash}
DEFAULT_ALGO = AlignedDualPHash.algo


def get_pipeline(algo: str = DEFAULT_ALGO) -> HashPipeline:
    try:
        return PIPELINES[algo]()
    except KeyError:
        raise ValueError(f"unknown hash pipeline {algo!r}; known: {', '.join(PIPELINES)}") from None


def _turned_back(probe: Probe) -> tuple[HashValue, ...]:
    """The hash of a query whose own borders show a turn (a copy turned on a fill:
    `Probe.border_turn`) as it was before the turn, searched beside its others. A turn of a few
    degrees moves the low frequencies little, but the fill's corners, and padding turned with
    the picture, move its trimmed box and so its hash (docs/lab/evaluation.md, "A turned query
    searched for turned back"). A photo shows such a turn seldom: one hash more to search."""
    angle = probe.border_turn()
    if angle is None:
        return ()
    rgb = probe.turned(angle)
    gray = luma(rgb)
    cut = centre_weighted(np.ascontiguousarray(crop(gray, trim_box(rgb))))
    return (_pack(np.concatenate([dct_hash(centre_weighted(gray)), dct_hash(cut)])),)


def _chroma_step(picture: Image.Image) -> int | None:
    """The chroma step of the JPEG `picture` was decoded from (imaging.py), None for other formats."""
    step = picture.info.get(CHROMA_STEP)
    return step if isinstance(step, int) else None


def _colours_kept(picture: Image.Image) -> bool:
    """Whether the query's own encoding kept its colours: a JPEG whose chroma step is at most
    FINE_CHROMA_STEP. Other formats do not say what they lost (a lossy WebP, a PNG of a JPEG)."""
    step = _chroma_step(picture)
    return step is not None and step <= FINE_CHROMA_STEP
