"""A picture's stored views, and the query's views at each angle it is turned by.

Every record stores two small views of its picture, the whole one and the border-trimmed one:
luma at 32x32 and CIELAB a*, b* at 16x16 (policy.LUMA_GRID, CHROMA_GRID; 3 KB raw, under 900
bytes compact: views_codec.py). They are what verification aligns (alignment.py) and what a
catalog-wide duplicate check hashes again (core/fingerprint/hashing.py, stored_query_codes). The query is
seen the same way: its `Probe` holds its working copy and makes its views, at each angle the
turning asks for, in the forms the alignment compares (`QueryViews`); its pictures (the working
copy turned, the detail picture) are those of `ProbePictures`, the class it is built on.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from dupcheck.core.limits.policy import (
    CHROMA_GRID,
    COARSE,
    EDGE_AGREE,
    EDGE_FIT,
    EDGE_MIN_ROWS,
    EDGE_ROWS,
    EDGE_STRAIGHT,
    FINE,
    GREY_CHROMA,
    LUMA_GRID,
    MARK_EXTENT,
    MAX_ANGLE,
    MIN_STEP,
    OVERLAY_SHARE,
    PASTED_SIDE,
    QUERY_DETAIL_SIDE,
    ROTATION_SIZE,
    VIEWS,
)
from dupcheck.core.models import HashRecord
from dupcheck.core.pictures.arrays import halve, median, regions, sampler, unit
from dupcheck.core.pictures.pixels import cielab_ab, luma, off_colour, rgb_from_luma_ab, ring_colour, trim_box
from dupcheck.core.stored import views_codec

Box = tuple[float, float, float, float]  # top, bottom, left, right, as shares of a picture's sides
WHOLE: Box = (0.0, 1.0, 0.0, 1.0)
_RAW_BYTES = VIEWS * (LUMA_GRID * LUMA_GRID + 2 * CHROMA_GRID * CHROMA_GRID)


@dataclass(frozen=True, slots=True)
class Views:
    """A picture's stored views: luma (2, 32, 32) and a*, b* (2, 2, 16, 16), float32."""

    luma: np.ndarray
    chroma: np.ndarray

    def encode(self) -> bytes:
        """The compact form a record stores (views_codec.py)."""
        return views_codec.encode(self.luma, self.chroma)

    @classmethod
    def decode_many(cls, encoded: Sequence[bytes]) -> list[Views | None]:
        """Each of `encoded` (what `encode` wrote) as Views, or None for bytes that are not:
        one damaged record costs its own verification, never the query's."""
        try:
            lumas, chromas = views_codec.decode_many(encoded)
        except views_codec.CodecError:
            return [cls.decode(data) for data in encoded]
        return [cls(luma, chroma) for luma, chroma in zip(lumas, chromas, strict=True)]

    @staticmethod
    def decode_luma_many(encoded: Sequence[bytes]) -> list[np.ndarray | None]:
        """The luma (2, 32, 32) of each of `encoded`, or None for bytes that are not views: what
        the views' hashes need, for every record of a catalog (colour is not inflated)."""
        try:
            return list(views_codec.decode_luma_many(encoded))
        except views_codec.CodecError:
            return [views_codec.decode_luma_many([data])[0] if _decodes(data) else None for data in encoded]

    @classmethod
    def decode(cls, data: bytes) -> Views | None:
        """What `encode` wrote as Views, or None for bytes that are not."""
        try:
            luma, chroma = views_codec.decode(data)
        except views_codec.CodecError:
            return None
        return cls(luma, chroma)

    @classmethod
    def from_raw(cls, raw: bytes) -> Views | None:
        """The uncompressed form of `dualphash128-v2` records (uint8 luma, int8 a*b*), or None."""
        if len(raw) != _RAW_BYTES:
            return None
        split = VIEWS * LUMA_GRID * LUMA_GRID
        luma_grid = np.frombuffer(raw[:split], dtype=np.uint8).reshape(VIEWS, LUMA_GRID, LUMA_GRID)
        chroma = np.frombuffer(raw[split:], dtype=np.int8).reshape(VIEWS, 2, CHROMA_GRID, CHROMA_GRID)
        return cls(luma_grid.astype(np.float32), chroma.astype(np.float32))

    def picture(self, side: int) -> np.ndarray:
        """A `side` px RGB picture with the whole view's luma and colour: a stored record seen
        again, for what verification does to a query's picture (turning it)."""
        a_star, b_star = (
            _resized(Image.fromarray(plane.astype(np.float32), mode="F"), LUMA_GRID, np.float32)
            for plane in self.chroma[0]
        )
        rgb = rgb_from_luma_ab(self.luma[0].astype(np.float64), a_star, b_star)
        return np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC))


def _decodes(data: bytes) -> bool:
    try:
        views_codec.decode_luma_many([data])
    except views_codec.CodecError:
        return False
    return True


def views_of(
    rgb: np.ndarray, box: tuple[int, int, int, int] | None = None, picture: Image.Image | None = None
) -> Views:
    """The stored views of a working-size RGB picture (`box`: its `trim_box`, and `picture`: the
    same pixels as a Pillow image, when the caller has them). Index and query sides both come
    through here."""
    box = trim_box(rgb) if box is None else box
    picture = Image.fromarray(rgb) if picture is None else picture
    top, bottom, left, right = box
    trimmed = (left, top, right, bottom)
    # Luma once for the whole picture; the trimmed view's is a Pillow crop of it (the same values).
    gray = Image.fromarray(luma(rgb, np.float32), mode="F")
    lumas = np.stack([_resized(view, LUMA_GRID, np.float32) for view in (gray, gray.crop(trimmed))])
    # Colour of the 16x16 box averages: enough for a product's colour, and 100x cheaper. Both
    # views in one call: each pixel's colour is computed alone, so the same numbers as one by one.
    smalls = np.stack([_resized(view, CHROMA_GRID, np.uint8) for view in (picture, picture.crop(trimmed))])
    return Views(lumas, np.stack(cielab_ab(smalls), axis=1).astype(np.float32))


def _resized(image: Image.Image, side: int, dtype: type[np.generic]) -> np.ndarray:
    return np.asarray(image.resize((side, side), Image.Resampling.BOX), dtype=dtype)


def stored_views(records: Sequence[HashRecord], compact: Collection[str], raw: str) -> list[Views | None]:
    """Each record's views (None where missing or damaged): those of a `compact` pipeline name
    decoded together, those of the `raw` one (`from_raw`) one by one."""
    found: list[Views | None] = [None] * len(records)
    coded = [i for i, r in enumerate(records) if r.hash_algo in compact and r.features.get("views")]
    for i, views in zip(coded, Views.decode_many([records[i].features["views"] for i in coded]), strict=True):
        found[i] = views
    for i, record in enumerate(records):
        if record.hash_algo == raw:
            found[i] = Views.from_raw(record.features.get("views", b""))
    return found


def stored_lumas(records: Sequence[HashRecord], compact: Collection[str], raw: str) -> list[np.ndarray | None]:
    """Each record's luma views (None where missing or damaged), as `stored_views` has them,
    without the colour."""
    found: list[np.ndarray | None] = [None] * len(records)
    coded = [i for i, r in enumerate(records) if r.hash_algo in compact and r.features.get("views")]
    decoded = Views.decode_luma_many([records[i].features["views"] for i in coded])
    for i, grid in zip(coded, decoded, strict=True):
        found[i] = grid
    for i, record in enumerate(records):
        if record.hash_algo == raw and (views := Views.from_raw(record.features.get("views", b""))):
            found[i] = views.luma
    return found


@dataclass(slots=True)
class QueryViews:
    """The query at one rotation: 4 views, (whole, trimmed) x (upright, mirrored)."""

    angle: float  # degrees the query was turned by
    whole: Box  # where the whole view lies in the (turned) picture: all of it, upright
    trimmed: Box  # where the trimmed view lies in the (turned) picture
    coarse: np.ndarray  # (4, 8, 8) luma, zero mean and unit norm
    fine: np.ndarray  # (4, 24, 24) luma
    fine_unit: np.ndarray  # (4, 24, 24) luma, zero mean and unit norm
    chroma: np.ndarray  # (4, 2, 24, 24) a*, b*
    grey: np.ndarray  # (4,) bool: no colour anywhere (a grayscale copy)


def query_views(views: Sequence[Views], angles: Sequence[float], boxes: Sequence[tuple[Box, Box]]) -> list[QueryViews]:
    """The query's views at each of `angles` (`boxes`: where its whole and trimmed views lie in
    the picture turned by it), made together: the same numbers as one at a time (each view's
    are its own), for a third of the small calls when the turning asks for several angles."""
    identity_coarse = sampler(LUMA_GRID // 2, COARSE, 0.0, 1.0)
    identity_fine = sampler(LUMA_GRID, FINE, 0.0, 1.0)
    identity_chroma = sampler(CHROMA_GRID, FINE, 0.0, 1.0)
    luma_views, chroma_views = np.stack([v.luma for v in views]), np.stack([v.chroma for v in views])
    lumas = np.concatenate([luma_views, luma_views[..., ::-1]], axis=1)  # (angles, 4, 32, 32)
    chroma = identity_chroma @ np.concatenate([chroma_views, chroma_views[..., ::-1]], axis=1) @ identity_chroma.T
    fine = identity_fine @ lumas @ identity_fine.T
    coarse = unit(identity_coarse @ halve(lumas) @ identity_coarse.T)
    fine_unit = unit(fine)
    grey = greyish(np.hypot(chroma[:, :, 0], chroma[:, :, 1]).reshape(len(views) * 2 * VIEWS, -1))
    grey = grey.reshape(len(views), 2 * VIEWS)
    return [
        QueryViews(
            angle=angle,
            whole=whole,
            trimmed=trimmed,
            coarse=coarse[k],
            fine=fine[k],
            fine_unit=fine_unit[k],
            chroma=chroma[k],
            grey=grey[k],
        )  # fmt: skip
        for k, (angle, (whole, trimmed)) in enumerate(zip(angles, boxes, strict=True))
    ]


PART_SIDES = ("top", "bottom", "left", "right")  # a part of the query: it without a strip of one


def part_box(side: int, share: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """((top, bottom), (left, right)): the shares of a box `Probe.without(side, share)` cuts."""
    top, bottom, left, right = (share if k == side else 0.0 for k in range(len(PART_SIDES)))
    return (top, bottom), (left, right)


def coarse_views(views: Sequence[Views]) -> np.ndarray:
    """(pictures, 4, 8, 8): `query_views`' coarse views upright (angle 0) of each of `views`,
    the same numbers, without the finer views and colour a coarse search does not read."""
    identity_coarse = sampler(LUMA_GRID // 2, COARSE, 0.0, 1.0)
    lumas = np.stack([v.luma for v in views])
    lumas = np.concatenate([lumas, lumas[..., ::-1]], axis=1)
    return unit(identity_coarse @ halve(lumas) @ identity_coarse.T)


def greyish(chroma: np.ndarray) -> np.ndarray:
    """(n,) bool: `np.percentile(chroma, 99, axis=1) < GREY_CHROMA` for (n, pixels) chroma.
    The percentile lies between the sorted values at `rank` and `rank + 1`: both are under the
    limit when at most `pixels - rank - 2` values are not, neither when more than
    `pixels - rank - 1` are, and np.percentile itself decides only a row where exactly that
    many are (a count is a tenth of a partition's time, np.percentile's overhead was a tenth of
    a turned candidate's judgement)."""
    rank = int(0.99 * (chroma.shape[1] - 1))  # the percentile's place: between these two
    over = (~(chroma < GREY_CHROMA)).sum(axis=1)  # (NaN counted over, as a partition sorts it last)
    below = over <= chroma.shape[1] - rank - 2
    unsure = over == chroma.shape[1] - rank - 1
    if unsure.any():
        below[unsure] = np.percentile(chroma[unsure], 99, axis=1) < GREY_CHROMA
    return below


def a_mark(patch: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether a patch of (row, column) pixels off a picture's backdrop may be a badge or a logo
    on it: at least OVERLAY_SHARE of the picture, and MARK_EXTENT of a side at most each way."""
    height, width = shape[:2]
    tall, wide = np.ptp(patch[:, 0]) + 1, np.ptp(patch[:, 1]) + 1
    return len(patch) >= OVERLAY_SHARE * height * width and tall <= height * MARK_EXTENT and wide <= width * MARK_EXTENT


@dataclass(slots=True)
class ProbePictures:
    """The state a Probe holds, and its pictures: the working copy (rebuilt from the upright views
    when it has none), turned, and the detail picture, for a look at more than the views hold;
    with the turn its straight borders show. Probe, built on it, makes the views and retrims."""

    rgb: np.ndarray | None
    upright: Views | None = None
    box: tuple[int, int, int, int] | None = None
    detail: np.ndarray | None = field(default=None, repr=False)
    source: Image.Image | None = field(default=None, repr=False)  # the decoded picture: `detail` made from it
    # (left, right, top, bottom): the query's share outside this picture (`inside_border`), else 0.
    outer: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    # The picture's encoding kept its colours to a level or two (a JPEG at a fine chroma step, a
    # kept picture): a faint recolour can show (one_edit.py).
    colours_kept: bool = False
    # The decoded picture's pixels per pixel of `detail` (over 1 where `detailed` reduced it):
    # how finely the query itself holds what the test compares.
    detail_scale: float = 1.0
    _by_angle: dict[float, QueryViews] = field(default_factory=dict, repr=False)
    _to_turn: tuple[Image.Image, tuple[int, ...]] | None = field(default=None, repr=False)
    _detail_by_angle: dict[float, np.ndarray] = field(default_factory=dict, repr=False)
    _grey_by_angle: dict[float, Image.Image] = field(default_factory=dict, repr=False)
    _border_turn: tuple[float | None] | None = field(default=None, repr=False)

    def turned(self, angle: float) -> np.ndarray:
        """The working copy turned as `at(angle)` turns its smaller copy (the same fill), for a
        look at more detail than the views hold (photograph.py)."""
        if not angle:
            return self.picture()
        _, fill = self._turning()
        return np.asarray(
            Image.fromarray(self.picture()).rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill)
        )

    def detailed(self, angle: float) -> np.ndarray:
        """The detail picture (the working copy without one) turned as `at(angle)` turns its
        smaller copy, with the same fill: what the same-photograph test cuts its patch from."""
        if angle not in self._detail_by_angle:
            if self.detail is None and self.source is not None:
                reduced = self.source.copy()
                reduced.thumbnail((QUERY_DETAIL_SIDE, QUERY_DETAIL_SIDE), Image.Resampling.BILINEAR)
                self.detail_scale = self.source.width / reduced.width
                self.detail, self.source = np.asarray(reduced), None
            picture = self.detail if self.detail is not None else self.picture()
            if angle:
                _, fill = self._turning()
                turned = Image.fromarray(picture).rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill)
                picture = np.asarray(turned)
            self._detail_by_angle[angle] = picture
        return self._detail_by_angle[angle]

    def detailed_grey(self, angle: float) -> Image.Image:
        """`detailed(angle)`'s luma (a mode F picture), made once: the test cuts a patch of it
        at each side it compares, for each candidate."""
        if angle not in self._grey_by_angle:
            self._grey_by_angle[angle] = Image.fromarray(luma(self.detailed(angle), np.float32), mode="F")
        return self._grey_by_angle[angle]

    def border_turn(self) -> float | None:
        """The turn (degrees, as `at` takes it) that sets the picture's straight borders upright:
        a copy turned with a fill meets it along straight lines at its angle (policy.EDGE_ROWS).
        None for a picture without two such sides, sides already upright (under MIN_STEP) or
        turned past MAX_ANGLE, or a probe without its picture."""
        if self.rgb is None:
            return None
        if self._border_turn is None:
            self._border_turn = (_border_angle(self.rgb),)
        angle = self._border_turn[0]
        # (Straight sides upright are no turn; one past MAX_ANGLE is no turn a copy was given.)
        return None if angle is None or not MIN_STEP <= abs(angle) <= MAX_ANGLE else -angle

    def _turning(self) -> tuple[Image.Image, tuple[int, ...]]:
        if self._to_turn is None:
            image = Image.fromarray(self.picture())
            image.thumbnail((ROTATION_SIZE, ROTATION_SIZE), Image.Resampling.BILINEAR)
            self._to_turn = image, tuple(int(v) for v in ring_colour(np.asarray(image))[0])
        return self._to_turn

    def picture(self) -> np.ndarray:
        """The working copy (rebuilt from the upright views for a probe made `of_views`)."""
        if self.rgb is None:
            if self.upright is None:
                raise ValueError("a probe needs a picture or its views")
            self.rgb = self.upright.picture(ROTATION_SIZE)
        return self.rgb


@dataclass(slots=True)
class Probe(ProbePictures):
    """Query-side state: the working copy (`box`: its trim box, `upright`: its views, when the
    caller has them), its views at each rotation tried (upright first), and `detail`, the same
    picture larger (up to policy.QUERY_DETAIL_SIDE px), for the same-photograph test. A stored
    picture without its kept picture has no working copy (`rgb` None, `of_views`): one is rebuilt
    from its upright views the first time it is needed, which most queries never are."""

    def at(self, angle: float) -> QueryViews:
        return self.at_many([angle])[0]

    def at_many(self, angles: Sequence[float]) -> list[QueryViews]:
        """The query's views at each angle (the turning's lockstep asks for several), those not
        made before made together."""
        new = [angle for angle in dict.fromkeys(angles) if angle not in self._by_angle]
        if new:
            made = [self._views_at(angle) for angle in new]
            for angle, query in zip(new, query_views([m[0] for m in made], new, [m[1] for m in made]), strict=True):
                self._by_angle[angle] = query
        return [self._by_angle[angle] for angle in angles]

    def views_at(self, angle: float) -> Views:
        """The query's stored-form views turned by `angle` (as a record of it turned would store)."""
        return self.upright if not angle and self.upright is not None else self._views_at(angle)[0]

    def _views_at(self, angle: float) -> tuple[Views, tuple[Box, Box]]:
        """The query's views turned by `angle`, and where its whole and trimmed views lie."""
        if angle:
            # Turned at half size (the views are 32 px: 80 is plenty, and 4x cheaper to trim),
            # filled with the border colour so the turned corners trim away like a border.
            image, fill = self._turning()
            turned = np.asarray(image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill))
            # Only the box the picture held before an `expand` turn (see _unturned_box): the
            # "whole" view of a turned query.
            left, top, right, bottom = _unturned_box((turned.shape[1], turned.shape[0]), angle)
            inner = turned[top:bottom, left:right]
            whole = _relative((top, bottom, left, right), turned.shape)
            cut = trim_box(inner)
            box = (top + cut[0], top + cut[1], left + cut[2], left + cut[3])
            views = views_of(inner, cut)
        else:
            turned, whole = self.picture(), WHOLE
            box = self.box if self.box is not None else trim_box(turned)
            views = self.upright if self.upright is not None else views_of(turned, box)
        return views, (whole, _relative(box, turned.shape))

    def retrimmed(self) -> list[Probe]:
        """The same query trimmed otherwise, for when no candidate lines up as it is trimmed
        (judge.py): `unmarked`, then `first_border`, then `pasted`, each only where it changes
        the box; then `inside_border`."""
        found: dict[tuple[int, int, int, int] | None, Probe] = {}
        for probe in (self.unmarked(), self.first_border(), self.pasted()):
            if probe is not None:
                found.setdefault(probe.box, probe)
        inside = self.inside_border()
        return [*found.values(), *([inside] if inside is not None else [])]

    def on_query(self, shares: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """(left, right, top, bottom) shares of this picture's sides as shares of the query's
        (the same but for a picture `inside_border`)."""
        left, right, top, bottom = self.outer
        across, down = 1.0 - left - right, 1.0 - top - bottom
        return left + shares[0] * across, right + shares[1] * across, top + shares[2] * down, bottom + shares[3] * down

    def inside_border(self) -> Probe | None:
        """The picture inside its outer uniform border as a query of its own, when a turn shows
        there: a copy turned on a fill, then padded or framed. Turned back whole, its padding
        turns too and hides the fill's edges from the trim; inside it, the fill is the border,
        as on a copy turned and not padded. None otherwise. (Its `outer`: where it lies on the
        query, for the edits.)

        The turn is read again on the detail picture: a turn of 1-2 degrees leaves a fill 2-4
        px wide at the working copy's 160 px, which a JPEG's blur and the trim's pixel of
        rounding swallow (or read a few tenths of a degree off through the padding), and five
        times that at 768. Only where a turned photo may be: the working copy shows a turn
        inside the border or through it, or the box inside it is a photo's (`_a_photo`; a
        product on its backdrop touches its box at a few places). (The detail picture is made
        for nothing else in most queries: a new product on a white backdrop.)"""
        if self.rgb is None:
            return None
        height, width = self.rgb.shape[:2]
        top, bottom, left, right = trim_box(self.rgb, passes=1)
        if (top, bottom, left, right) == (0, height, 0, width):
            return None
        inside = np.ascontiguousarray(self.rgb[top:bottom, left:right])
        inner = Probe(
            inside,
            outer=(left / width, (width - right) / width, top / height, (height - bottom) / height),
            colours_kept=self.colours_kept,
        )
        if (
            inner.border_turn() is None
            and self.border_turn() is None
            and not _a_photo(inside, (ring_colour(self.rgb)[0],) * 4)
        ):
            return None
        detail = self.detailed(0.0)  # the same picture larger: cut alike, for the turn and the test
        inner.detail_scale = self.detail_scale
        rows, cols = detail.shape[0] / height, detail.shape[1] / width
        inner.detail = np.ascontiguousarray(
            detail[round(top * rows) : round(bottom * rows), round(left * cols) : round(right * cols)]
        )
        # (The border's edge, a pixel of the working copy, is a few of the detail's: trimmed again.)
        inner_top, inner_bottom, inner_left, inner_right = trim_box(inner.detail, passes=1)
        finer = _border_angle(inner.detail[inner_top:inner_bottom, inner_left:inner_right])
        if finer is not None:
            inner._border_turn = (finer,)
        return inner if inner.border_turn() is not None else None

    def unmarked(self) -> Probe | None:
        """The same query trimmed without a mark on its border: a badge beside the product that
        the query's trim keeps (its rows hold enough pixels), where the catalog picture's trim,
        without it, is smaller, so the views cannot line the two up. Every compact patch off the
        border's colour but the largest (the subject), of at least OVERLAY_SHARE of the picture,
        is painted over with that colour before trimming. None when that changes nothing."""
        if self.rgb is None or self.box is None:
            return None
        colour, uniform = ring_colour(self.rgb)
        if uniform < 0.5:
            return None
        # Only what the trim kept can widen it: the patches that reach into its box, each
        # repainted whole (where the trim cut a badge's last rows, repainting only its rows inside
        # the box lets the new trim take those back).
        top, bottom, left, right = self.box
        cleaned = None
        for patch in regions(off_colour(self.rgb, colour))[1:]:
            inside = (patch[:, 0] >= top) & (patch[:, 0] < bottom) & (patch[:, 1] >= left) & (patch[:, 1] < right)
            if inside.any() and a_mark(patch, self.rgb.shape[:2]):
                cleaned = self.rgb.copy() if cleaned is None else cleaned
                cleaned[patch[:, 0], patch[:, 1]] = colour
        box = trim_box(cleaned) if cleaned is not None else self.box
        return self._trimmed_to(box)

    def pasted(self) -> Probe | None:
        """The same query trimmed to a photo pasted on padding, without a badge that overhangs
        the photo's side onto the padding: the badge and the photo are one patch, so `unmarked`
        cannot lift it off, and the trim keeps its overhang. On each side, the lines the trim
        kept beyond the photo are cut where each holds one run off the padding's colour (the
        line just outside the box), MARK_EXTENT of the line at most (a badge, as `a_mark`).
        What is left must be a photo: a rectangle whose four sides are each PASTED_SIDE off the
        padding (the side's first line, or the next after a line blended by resampling). A
        product shot on a backdrop is not: its box's sides touch the product at a few places.
        None when no side is cut or what is left is no such rectangle."""
        if self.rgb is None or self.box is None:
            return None
        top, bottom, left, right = self.box
        height, width = self.rgb.shape[:2]
        outside = (
            self.rgb[top - 1, left:right] if top else None,
            self.rgb[bottom, left:right] if bottom < height else None,
            self.rgb[top:bottom, left - 1] if left else None,
            self.rgb[top:bottom, right] if right < width else None,
        )
        if not any(line is not None for line in outside):
            return None  # (a photo not padded: its box is the whole picture)
        ring = ring_colour(self.rgb)[0]
        padding = [ring_colour(line[None]) if line is not None else (ring, 0.0) for line in outside]
        cut = [
            _overhang(lines, colour) if uniform >= 0.5 else 0
            for lines, (colour, uniform) in zip(_from_each_side(self.rgb[top:bottom, left:right]), padding, strict=True)
        ]
        if not any(cut):
            return None
        box = (top + cut[0], bottom - cut[1], left + cut[2], right - cut[3])
        colours = tuple(colour if uniform >= 0.5 else ring for colour, uniform in padding)
        return self._trimmed_to(box) if _a_photo(self.rgb[box[0] : box[1], box[2] : box[3]], colours) else None

    def first_border(self) -> Probe | None:
        """The same query with only its outer uniform border trimmed. Padding or a frame an edit
        added is one border of one colour, and the first trim takes it off exactly, leaving the
        catalog picture whole; the trim goes on into the picture's own margin (a sky, a road),
        which the catalog picture's trim, on other pixels, may read otherwise. None when the
        trim took one border only."""
        if self.rgb is None or self.box is None:
            return None
        return self._trimmed_to(trim_box(self.rgb, passes=1))

    def _trimmed_to(self, box: tuple[int, int, int, int]) -> Probe | None:
        if box == self.box:
            return None
        return Probe(
            self.rgb, None, box, self.detail, self.source,
            colours_kept=self.colours_kept, detail_scale=self.detail_scale,
        )  # fmt: skip

    def without(self, side: int, share: float) -> Probe | None:
        """The query without `share` of its trimmed box on one side (of PART_SIDES): a copy that
        lost another side than the catalog picture did holds the catalog picture's photograph but
        for that strip (two crops of one photo). None without a picture or where nothing is cut."""
        if self.rgb is None or self.box is None:
            return None
        (top_cut, bottom_cut), (left_cut, right_cut) = part_box(side, share)
        top, bottom, left, right = self.box
        height, width = bottom - top, right - left
        box = (top + round(height * top_cut), bottom - round(height * bottom_cut),
               left + round(width * left_cut), right - round(width * right_cut))  # fmt: skip
        return self._trimmed_to(box)

    @classmethod
    def of_views(cls, views: Views) -> Probe:
        """A stored picture as a query without its picture: its views upright, and a picture
        rebuilt from them when one is needed (to turn it)."""
        return cls(None, upright=views)


def _from_each_side(rgb: np.ndarray) -> tuple[np.ndarray, ...]:
    """The picture's lines from each side in (top, bottom, left, right), each (n, length, 3)."""
    across = rgb.transpose(1, 0, 2)
    return rgb, rgb[::-1], across, across[::-1]


def _a_photo(rgb: np.ndarray, padding: Sequence[np.ndarray]) -> bool:
    """Whether a box holds a photo pasted on padding: each of its sides (top, bottom, left,
    right) PASTED_SIDE off that side's `padding` colour, on its first line or the next (after a
    line blended by resampling)."""
    return all(
        off_colour(lines[:2], colour).mean(axis=1).max() >= PASTED_SIDE
        for lines, colour in zip(_from_each_side(rgb), padding, strict=True)
    )


def _overhang(lines: np.ndarray, padding: np.ndarray) -> int:
    """How many of `lines` (a box's lines from one side in) a badge overhanging a pasted photo
    fills, each one run off the `padding` colour at most MARK_EXTENT of the line long, up to
    MARK_EXTENT of the box: see `Probe.pasted`. Fewer than two is none (one is a line blended by
    resampling)."""
    off = off_colour(lines[: int(len(lines) * MARK_EXTENT) + 2], padding)
    length = off.shape[1]
    count = off.sum(axis=1)
    first, last = off.argmax(axis=1), length - 1 - off[:, ::-1].argmax(axis=1)
    one_run = (count == 0) | ((last - first + 1 == count) & (count <= length * MARK_EXTENT))
    n = len(off) - 2 if one_run[:-2].all() else int(np.argmin(one_run[:-2]))
    return n if n >= 2 else 0


def _border_angle(rgb: np.ndarray) -> float | None:
    """Degrees (anticlockwise) the picture's content lies turned within a uniform fill: each
    side's first pixel off the fill's colour, row by row, fitted by a line; the median of the
    sides that are straight, when two of them agree (policy.EDGE_*). A turn's fill is a wedge,
    under a pixel wide near one end of each side (a quarter of a 110 px side turned 2 degrees):
    the rows there show no fill, and count for the line where it is under a pixel."""
    colour, uniform = ring_colour(rgb)
    if uniform < 0.5:
        return None
    off = off_colour(rgb, colour)
    # Each side seen as the left one: its first off pixel's column, row by row; a side's slope
    # turns the way the picture does on the left and bottom sides, the other way on the others.
    sides = ((1.0, off), (-1.0, off[:, ::-1]), (-1.0, off.T), (1.0, off[::-1].T))
    angles = []
    for sign, side in sides:
        rows = np.arange(*(round(share * side.shape[0]) for share in EDGE_ROWS))
        first = np.argmax(side[rows], axis=1)
        reached = side[rows].any(axis=1)
        kept = reached & (first > 0)  # (a side the picture reaches has no line)
        if kept.sum() < EDGE_MIN_ROWS:
            continue
        line = _straight(rows[kept].astype(np.float64), first[kept].astype(np.float64))
        if line is None:
            continue
        slope, at = line
        narrow = reached & (first == 0) & (slope * rows + at < 1.0)  # the wedge's thin end
        if (kept | narrow).mean() >= EDGE_STRAIGHT:
            angles.append(sign * math.degrees(math.atan(slope)))
    if len(angles) < 2:
        return None
    middle = float(np.median(angles))
    return middle if sum(abs(a - middle) <= EDGE_AGREE for a in angles) >= 2 else None


def _straight(ys: np.ndarray, xs: np.ndarray) -> tuple[float, float] | None:
    """The line x = slope y + at (slope, at) when most points lie on it (within EDGE_FIT px: the
    median of the slopes between each point and the one half the run later, then least squares
    over those on it), else None."""
    half = len(ys) // 2
    slope = float(median((xs[half : 2 * half] - xs[:half]) / (ys[half : 2 * half] - ys[:half])))
    on = np.abs(xs - float(median(xs - slope * ys)) - slope * ys) <= EDGE_FIT
    if on.mean() < EDGE_STRAIGHT:
        return None
    slope, at = np.polyfit(ys[on], xs[on], 1)
    return float(slope), float(at)


def _relative(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> Box:
    """A (top, bottom, left, right) pixel box as shares of a picture's sides."""
    height, width = shape[:2]
    return (box[0] / height, box[1] / height, box[2] / width, box[3] / width)


def _unturned_box(size: tuple[int, int], angle: float) -> tuple[int, int, int, int]:
    """The centred box of a picture turned back by `angle` that held the picture before it was
    turned with `expand` (the fill of both turns lies outside it): for a copy turned with
    `expand` its own content, for one turned within its frame a few percent less (a crop, which
    the alignment's windows absorb)."""
    width, height = size
    cos, sin = math.cos(math.radians(abs(angle))), math.sin(math.radians(abs(angle)))
    inner_w = (width * cos - height * sin) / (cos * cos - sin * sin)
    inner_h = (height * cos - width * sin) / (cos * cos - sin * sin)
    left, top = math.ceil((width - inner_w) / 2), math.ceil((height - inner_h) / 2)
    return left, top, max(left + 1, math.floor((width + inner_w) / 2)), max(top + 1, math.floor((height + inner_h) / 2))
