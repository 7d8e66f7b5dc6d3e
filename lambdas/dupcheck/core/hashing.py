"""Image bytes -> decoded, normalised image -> fingerprint, through exactly one pipeline.

A pipeline is named by `algo` (stored on every record as `hash_algo`): the same name always
means the same decode, normalisation and hash, so an indexed hash is only ever compared with
a query hash from the same code. Changing any step means a new name, and `reindex` re-hashes.

The default, `dualphash128-v1`, was chosen by measurement (docs/evaluation.md):
* the indexed vector is two 64-bit DCT hashes, one of the whole picture and one of the picture
  with uniform borders trimmed, each taken through a centre-weighted window. Hamming distance
  over the pair ranks candidates: a padded or framed copy keeps the trimmed half close, a copy
  with a badge over the border keeps the whole-picture half close, and the window makes both
  tolerant of crops and of rotated corners, which only touch the borders;
* at query time the mirrored pair is searched too, and a pair whose whole-picture half is taken
  with 10% of the query's mean grey added on every side: a cropped copy, padded back towards
  the layout of the picture it was cut from (10-15% crops: 68% -> 84% found first). Query-only
  hashes can change without a new `algo`: stored records are unaffected;
* the verdict is taken on the closer half, and only after the candidate passes two checks on
  signals stored with the record: a colour check (the same product in another colour is
  another SKU) and a 20x20 structure thumbnail for ranking.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
from PIL import Image

from dupcheck.core.imaging import decode_image
from dupcheck.core.matching import Verdict, verdict_for
from dupcheck.core.models import Fingerprint, HashRecord, HashValue


@dataclass(frozen=True, slots=True)
class Judgement:
    """A candidate's verdict. `distance` is out of `bits` (what match_percent is computed on);
    `similarity` (higher is closer) orders candidates with the same verdict and distance."""

    distance: int
    verdict: Verdict
    bits: int
    similarity: float = 0.0


class HashPipeline(Protocol):
    algo: str
    bits: int

    def fingerprint(self, image: Image.Image, *, for_query: bool = True) -> Fingerprint:
        """`for_query=False` skips the query-only hashes: what registering an image needs."""
        ...

    def fingerprint_bytes(self, data: bytes, *, max_pixels: int, for_query: bool = True) -> Fingerprint: ...

    def candidate_pool(self, top: int) -> int:
        """How many index candidates to fetch so that `top` survive verification."""
        ...

    def judge(self, query: Fingerprint, candidate: HashRecord, distance: int) -> Judgement: ...


# -- shared image steps -------------------------------------------------------------------------


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II: `D @ X @ D.T` equals scipy's dctn(X, norm="ortho"), without scipy."""
    k = np.arange(n)[:, None]
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    return matrix


def dct_hash(gray: np.ndarray, size: int = 32, keep: int = 8) -> np.ndarray:
    """pHash bits: the `keep`x`keep` lowest DCT frequencies of a `size`x`size` copy, vs their median."""
    small = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    matrix = _dct_matrix(size)
    coefficients = (matrix @ np.asarray(small, dtype=np.float64) @ matrix.T)[:keep, :keep].ravel()
    return coefficients > np.median(coefficients[1:])


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def centre_weighted(gray: np.ndarray) -> np.ndarray:
    """Fade the picture towards its mean with a Hann window: borders, what crops remove and
    rotations fill, count least. A stronger window (power 2, 3) measured worse."""
    height, width = gray.shape
    weight = np.outer(np.hanning(height + 2)[1:-1], np.hanning(width + 2)[1:-1])
    return gray * weight + gray.mean() * (1.0 - weight)


def pad_with_mean(gray: np.ndarray, share: float) -> np.ndarray:
    """Add `share` of each side back around a picture, in its mean grey."""
    height, width = gray.shape
    rows, cols = round(height * share), round(width * share)
    return np.pad(gray, ((rows, rows), (cols, cols)), constant_values=float(gray.mean()))


# Trim: a border is "uniform" when most of the outer ring is within TRIM_TOLERANCE of its median
# colour; rows and columns holding fewer off-colour pixels than TRIM_MIN_FILL of the fullest row
# (column) are cut, so a small badge or a rotated corner does not hold the box open, and padding
# (which widens every row) does not move it. Repeated: a frame, then the shot's own margin.
TRIM_TOLERANCE = 32
TRIM_MIN_FILL = 0.15
TRIM_PASSES = 3


def trim_uniform_border(rgb: np.ndarray) -> np.ndarray:
    for _ in range(TRIM_PASSES):
        height, width = rgb.shape[:2]
        ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
        background = np.median(ring, axis=0)
        if (np.abs(ring - background).max(axis=1) <= TRIM_TOLERANCE).mean() < 0.5:
            break
        off = np.abs(rgb.astype(np.int16) - background).max(axis=2) > TRIM_TOLERANCE
        row_fill, col_fill = off.sum(axis=1), off.sum(axis=0)
        rows = np.flatnonzero(row_fill > TRIM_MIN_FILL * row_fill.max())
        cols = np.flatnonzero(col_fill > TRIM_MIN_FILL * col_fill.max())
        if len(rows) < height * 0.2 or len(cols) < width * 0.2:
            break  # almost nothing inside: trimming would keep noise, not the subject
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if (top, bottom, left, right) == (0, height, 0, width):
            break
        rgb = rgb[top:bottom, left:right]
    return rgb


# sRGB (D65) -> XYZ, and the D65 white point, for CIELAB.
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def cielab_ab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB a*, b* of sRGB pixels, in numpy (Pillow's LAB builds a colour transform per call)."""
    linear = rgb.astype(np.float64) / 255.0
    linear = np.where(linear > 0.04045, ((linear + 0.055) / 1.055) ** 2.4, linear / 12.92)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), xyz * (24389 / 27 / 116) + 16 / 116)
    return 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])


def foreground_chroma(rgb: np.ndarray) -> tuple[float, float]:
    """Mean CIELAB (a*, b*) of the pixels that differ from the border colour (all pixels when
    nearly none do): the colour of the product, not of its background. (A median resists
    stickers better but let 41% of colour variants through instead of 16%: docs/evaluation.md.)"""
    small = np.asarray(Image.fromarray(rgb).resize((48, 48), Image.Resampling.BILINEAR))
    a_star, b_star = cielab_ab(small)
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
    off = np.abs(small.astype(np.int16) - np.median(ring, axis=0)).max(axis=2) > TRIM_TOLERANCE
    if off.mean() < 0.05:
        off[:] = True
    return float(a_star[off].mean()), float(b_star[off].mean())


def hue_distance(first: tuple[float, float], second: tuple[float, float], neutral: float) -> float:
    """Distance between chroma directions (0..2). Saturation changes scale chroma, so only its
    direction counts; when either side is nearly grey (a grayscale copy) colour says nothing."""
    m1, m2 = float(np.hypot(*first)), float(np.hypot(*second))
    if min(m1, m2) < neutral:
        return 0.0
    return float(np.hypot(first[0] / m1 - second[0] / m2, first[1] / m1 - second[1] / m2))


def _pack(bits: np.ndarray) -> HashValue:
    return HashValue(np.packbits(bits).tobytes())


# -- pipelines ----------------------------------------------------------------------------------


class PHash64:
    """Plain 64-bit DCT pHash (imagehash) of the whole image: the baseline to measure against."""

    algo = "phash64-v1"
    bits = 64
    # JPEG decodes at the smallest DCT scale that keeps >= 256 px: pHash looks at 32x32.
    draft_size = 256
    # docs/evaluation.md: on ../shared/bench, <= 4 keeps distinct pictures out (0%) but already
    # calls 68% of colour variants duplicates; <= 10 (a common choice) calls 14% of distinct ones.
    duplicate_max = 4
    similar_max = 12

    def fingerprint(self, image: Image.Image, *, for_query: bool = True) -> Fingerprint:
        import imagehash  # the baseline only: the default pipeline needs neither it nor scipy

        value = HashValue.from_hex(str(imagehash.phash(image, hash_size=8)))
        return Fingerprint(algo=self.algo, hash=value)

    def fingerprint_bytes(self, data: bytes, *, max_pixels: int, for_query: bool = True) -> Fingerprint:
        image = decode_image(data, max_pixels=max_pixels, draft_size=self.draft_size)
        return self.fingerprint(image, for_query=for_query)

    def candidate_pool(self, top: int) -> int:
        return top

    def judge(self, query: Fingerprint, candidate: HashRecord, distance: int) -> Judgement:
        verdict = verdict_for(distance, duplicate_max=self.duplicate_max, similar_max=self.similar_max)
        return Judgement(distance, verdict, self.bits)


class DualPHash:
    """Whole-picture and border-trimmed centre-weighted pHash, verified by colour (see module)."""

    algo = "dualphash128-v1"
    bits = 128
    half = 64
    draft_size = 256
    work_size = 160  # every later step sees the same <= 160 px picture, whatever arrived
    thumb_size = 20
    # Calibrated on ../shared/bench (docs/evaluation.md, "chosen default"): the largest distance
    # that keeps distinct pictures called duplicate under 2% (1.1% at 4; 4.4% at 6).
    duplicate_max = 4
    similar_max = 12
    structure_similar = 0.8  # thumbnail correlation that still reads as "similar"
    hue_max = 0.1  # chroma-direction distance above which colours differ (colour variants)
    neutral_chroma = 4.0  # below this CIELAB chroma a picture has no colour to compare
    pool = 50  # candidates re-judged per query: holds the true match for 91% of 15% crops
    query_pad = 0.10  # share of each side re-added to query pictures (one pad as good as two)

    def fingerprint(self, image: Image.Image, *, for_query: bool = True) -> Fingerprint:
        image = image.copy()
        image.thumbnail((self.work_size, self.work_size), Image.Resampling.BILINEAR)
        rgb = np.asarray(image.convert("RGB"))
        trimmed = trim_uniform_border(rgb)
        gray, gray_trimmed = luma(rgb), luma(trimmed)
        whole, cut = centre_weighted(gray), centre_weighted(gray_trimmed)
        cut_bits = dct_hash(cut)
        indexed = np.concatenate([dct_hash(whole), cut_bits])
        thumbs = np.concatenate([self._thumb(gray), self._thumb(gray_trimmed)])
        a_star, b_star = foreground_chroma(trimmed)
        return Fingerprint(
            algo=self.algo,
            hash=_pack(indexed),
            query_hashes=self._query_hashes(gray, whole, cut, cut_bits) if for_query else (),
            features={
                "thumbs": base64.b64encode(thumbs.tobytes()).decode(),
                "chroma": f"{a_star:.1f},{b_star:.1f}",
            },
        )

    def fingerprint_bytes(self, data: bytes, *, max_pixels: int, for_query: bool = True) -> Fingerprint:
        image = decode_image(data, max_pixels=max_pixels, draft_size=self.draft_size)
        return self.fingerprint(image, for_query=for_query)

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
        return max(top, self.pool)

    def judge(self, query: Fingerprint, candidate: HashRecord, distance: int) -> Judgement:
        stored = int(candidate.hash, 16)
        mask = (1 << self.half) - 1
        closest = min(
            min(((stored >> self.half) ^ (q >> self.half)).bit_count(), ((stored ^ q) & mask).bit_count())
            for q in (int.from_bytes(h.data, "big") for h in query.search_hashes)
        )
        similarity = self._structure(query.features, candidate.features)
        colour_ok = self._colour_matches(query.features, candidate.features)
        if closest <= self.duplicate_max and colour_ok:
            verdict = Verdict.DUPLICATE
        elif closest <= self.similar_max or similarity >= self.structure_similar:
            verdict = Verdict.SIMILAR
        else:
            verdict = Verdict.DIFFERENT
        return Judgement(closest, verdict, self.half, similarity)

    def _thumb(self, gray: np.ndarray) -> np.ndarray:
        small = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))
        return np.asarray(small.resize((self.thumb_size, self.thumb_size), Image.Resampling.BOX)).ravel()

    def _thumbs(self, features: Mapping[str, str]) -> list[np.ndarray]:
        raw = base64.b64decode(features.get("thumbs", ""))
        cells = self.thumb_size * self.thumb_size
        if len(raw) != 2 * cells:
            return []
        out = []
        for part in np.frombuffer(raw, dtype=np.uint8).reshape(2, self.thumb_size, self.thumb_size):
            centred = part.astype(np.float64) - part.mean()
            norm = np.linalg.norm(centred)
            out.append(centred / norm if norm > 1e-6 else centred)
        return out

    def _structure(self, query: Mapping[str, str], candidate: Mapping[str, str]) -> float:
        """Best normalised correlation of the 20x20 thumbnails (whole or trimmed, mirrored or not)."""
        theirs = self._thumbs(candidate)
        mine = [view for thumb in self._thumbs(query) for view in (thumb, thumb[:, ::-1])]
        if not mine or not theirs:
            return 0.0
        return max(float((q * c).sum()) for q in mine for c in theirs)

    def _colour_matches(self, query: Mapping[str, str], candidate: Mapping[str, str]) -> bool:
        first, second = _chroma(query), _chroma(candidate)
        if first is None or second is None:
            return True  # a record without the signal (older pipeline) is judged on structure alone
        return hue_distance(first, second, self.neutral_chroma) <= self.hue_max


def _chroma(features: Mapping[str, str]) -> tuple[float, float] | None:
    try:
        a_star, b_star = (float(v) for v in features.get("chroma", "").split(","))
    except ValueError:
        return None
    return a_star, b_star


PIPELINES: dict[str, type[HashPipeline]] = {PHash64.algo: PHash64, DualPHash.algo: DualPHash}
DEFAULT_ALGO = DualPHash.algo


def get_pipeline(algo: str = DEFAULT_ALGO) -> HashPipeline:
    try:
        return PIPELINES[algo]()
    except KeyError:
        raise ValueError(f"unknown hash pipeline {algo!r}; known: {', '.join(PIPELINES)}") from None
