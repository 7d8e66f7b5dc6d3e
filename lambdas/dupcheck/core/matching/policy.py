"""Every limit, tier and tunable of the matching engine, and what chose each one.

One place answers "where is this decided": the algorithm modules import their numbers from here
and hold none of their own. Each is grouped by the step that reads it, with what it means and
the measurement that set it (docs/evaluation.md holds the experiments, docs/benchmarks.md the
timings). A change here changes answers (but TOGETHER_MAX, speed only): measure it with
`python -m dupcheck evaluate` against main before and after.

Left beside their code, as formats rather than choices: the stored views' codec steps
(views_codec.STEPS: a record names its step by index) and the thumbnail's header
(thumbnails.py); the hashing pipelines' own sizes (core/hashing.py: the working size, the
query's padding, which name a fingerprint). The small numerical guards (1e-6 against a
division by zero, a Lucas-Kanade ridge) are arithmetic, not policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dupcheck.core.models import Verdict

# -- stored views (views.py, views_codec.py) -------------------------------------------------------

LUMA_GRID = 32  # stored luma per view, a side
CHROMA_GRID = 16  # stored a*, b* per view: colour needs less detail than structure
VIEWS = 2  # whole picture, border-trimmed picture
# At most this many bytes of compact views: with the record's other fields (~250 bytes) a record
# stays under 1.5 KB in SQLite and DynamoDB (docs/benchmarks.md, "Record size").
MAX_BYTES = 1250

# -- alignment (alignment.py) ----------------------------------------------------------------------

COARSE = 8  # side of the first, exhaustive alignment search
FINE = 24  # side at which an alignment is refined and judged
WIDTHS = (1.0, 0.9, 0.8, 0.72)  # window sides searched (a 14% crop per side keeps 72%)
OFFSET_STEP = 0.05  # between the coarse search's window starts, as a share of a side
REFINE_STEPS = (0.02, 0.01)  # then refined at FINE: neighbours this far, twice...
REFINE_MIN = 0.75  # ...when the coarse correlation is at least this (copies score 0.9 and more)
LUMA_TOLERANCE = 20.0  # luma levels (0-255) a pixel may differ, after gain and offset, and agree
COLOUR_TOLERANCE = 12.0  # CIELAB a*b* units a pixel may differ, after the saturation scale
# Luma levels from a plain background's (half that in a*b*): what is not the product, in the
# views (alignment._product) and in the look-alike check's patch (photograph._shown) alike.
BACKGROUND_TOLERANCE = 12.0
GREY_CHROMA = 4.0  # a view whose 99th-percentile chroma is below this is grayscale
PLAIN_STD = 2.0  # luma levels: a view flatter than this is a plain picture
LAYOUT_FREQUENCIES = 8  # the aligned pHash: signs of the 8x8 lowest frequencies (63 without DC)
LAYOUT_BITS = LAYOUT_FREQUENCIES * LAYOUT_FREQUENCIES - 1
MIN_SATURATION = 0.3  # the strongest desaturation a copy may have
MAX_SATURATION = 2.0  # ...and the strongest saturation
# Luma levels (query, predicted): a query pixel at or past the first whose prediction is at or
# past the second was clipped to white (black) by brightening (darkening), and does not differ.
CLIPPED_WHITE, CLIPPED_BLACK = (250, 245), (5, 10)
BRIGHTENINGS = (1.1, 1.2, 1.3, 1.4)  # brightness factors whose clipping a brighter query may show
# ...tried only where the colour can matter: a candidate less alike than this passes no tier (the
# least correlation of ALIGNED_DUAL_PHASH.near, below) and is not `similar`
# (SIMILAR_MIN_SIMILARITY), so its colour changes no verdict, score or edit. (Trying every judged
# candidate tripled a copy's verification.)
BRIGHTENING_MIN_SIMILARITY = 0.8
# Speed only, no answer depends on it: pictures x channels whose nine shifts
# alignment._tolerant_residual takes in one pass (equal cost at 4 pictures of 2 channels).
TOGETHER_MAX = 8

# -- turning (alignment.py: verify, _Turning) ------------------------------------------------------

# When no candidate passes upright, the ROTATED_CANDIDATES most alike whose colour mostly agrees
# are turned at ROTATION_SIZE px by the angle their aligned pair says is left (`residual_turn`),
# ~1.4 ms an angle. Four keep every rotation recall target; fewer lose rotated copies that are
# not the most alike upright (docs/evaluation.md, "What turning fewer candidates keeps").
ROTATED_CANDIDATES = 4
ROTATION_SIZE = 80  # px: the views are 32 px, and a smaller picture is 4x cheaper to turn and trim
ROTATION_MIN_SIMILARITY = 0.2  # a copy turned with `expand` has fill corners: 0.2-0.6 upright
ROTATION_COLOUR = 0.2  # share of colour off a turned candidate may have (the fill)
ROTATION_STEPS = 3  # turns at most, each by the angle still left
ROTATION_LOSS = 0.05  # ...ended when a turn makes the pair this much less alike than the best
# ...and ended after the first turn (tried both ways) unless it made the pair this much more
# alike, passes the target, or was under PROMISE_MIN_TURN degrees: on the dev benchmark copies
# that line up at a second turn gained 0.096-0.40 on the first, 581 of 627 look-alikes less than
# 0.05 (docs/evaluation.md, "Turning a new product less"; docs/benchmarks.md, "A new product's
# turning").
TURN_PROMISE = 0.05
PROMISE_MIN_TURN = 1.0
MIN_STEP = 0.3  # degrees: a smaller turn left is no turn
MAX_ANGLE = 7.0  # degrees: turned no further (the benchmark's copies are turned up to 5)
# A turn is one more freedom of the alignment, so a turned candidate must also keep its layout
# (looser than upright: a copy turned within its frame keeps fill corners, 6-10 bits) and turn as
# one piece: the turn left in each half of the pair within TURN_SPREAD degrees of the others
# (another picture in the same pose lines up by a turn too, its parts disagreeing).
TURNED_MAX_LAYOUT = 10
TURN_SPREAD = 4.0
TURN_GAIN = 0.01  # ...and line up better than upright by this (a look-alike gains next to nothing)

# -- the look-alike check (photograph.py) ----------------------------------------------------------

LOOKALIKE_SIZE = 64  # side of the aligned comparison (and of the tint, at any turn)
# A turned alignment's luma is looked at twice as fine: a turn lets another photo in the same
# pose line up, and one did where 64 px could not tell (magento_0063/0060: docs/evaluation.md,
# "Leave-one-out"); at 128 px a face and a neckline are seen at about the thumbnail's resolution.
LOOKALIKE_TURNED_SIZE = 128
LUCAS_KANADE_STEPS = (20, 15)  # Gauss-Newton steps at 32 px, then at 64
LUCAS_KANADE_BLUR = (0.7, 0.5)  # Gaussian sigma (px) of each level: the last pixel of aliasing
TILE = 8  # pixels per side of a tile the structure correlates
TEXTURED = 6.0  # luma std of a tile with detail in it
STRONG_EDGE = 16.0  # luma levels per pixel: an edge the missing-detail share counts
LUMA_SLACK = 15.0  # luma levels a pixel may be off the clipped tone line
TONE_FIT_KEPT = 20.0  # luma levels off the tone line a pixel may be and still fit it
TINT_SLACK = 8.0  # sRGB levels a pixel's tint may be off the one fitted tint scale: a faint recolour
TINT_STRONG = 16.0  # ...and off by more than this: a recolour no copy's noise comes near
MAX_TINT_FACTOR = 2.5  # the strongest tint scale (saturation) a copy's edit may apply
SOLID = 6  # of a differing pixel's 3x3 neighbourhood that must differ too: a region, not an edge
MIN_FITTED = 50  # pixels a tone or tint fit needs (fewer: the last fit stands)
# sRGB levels: a pixel this near black or white is clipped (left out of the tint, which a clip
# turns); luma levels a tone line is fitted between, here and in the edits' (a plain background
# would take most of the fit, and what brightening pushes past them is on no line).
TINT_CLIPPED_DARK, TINT_CLIPPED_BRIGHT = 5, 250
TONE_DARK, TONE_BRIGHT = 8, 247
# JPEG at 160 px: ~5.7 KB median (150 bench photos), 0.2 ms to encode, 0.5 to decode.
THUMBNAIL_QUALITY = 85

# -- edits (edits.py): the smallest changes docs/evaluation.md, "Naming the edits", tells from noise

MIN_SIDE = 0.02  # a side cropped by less than this is not named
MIN_BORDER = 0.03  # padding: the border share of the query, per side
MIN_ROTATED = 1.5  # degrees; below, a copy that lined up upright is not called rotated
MIN_GAIN = 0.08  # brightness or contrast: the luma line's slope off 1 by at least this
BRIGHTNESS_PIVOT = 48.0  # luma level: a line pivoting below this scales levels (brightness)
SATURATION_EDIT = (0.8, 1.25)  # colour scale relative to the luma slope outside this: saturation
COLOURED = 8.0  # a*b* units: a catalog picture with this much chroma (90th percentile) has colour
OVERLAY_SHARE = 0.008  # share of the aligned picture that differs in one patch: text or a badge
OVERLAY_DENSITY = 0.5  # ...and those pixels fill at least this much of the patch's box
RECOLOURED_SHARE = 0.02  # share of the aligned picture whose colour differs: another colour
BOX_SEARCH = np.arange(-8, 9) / 128  # a trimmed view's box edges, refined this far (of a side)
BOX_MIN_WIDTH = 0.2  # ...to a window at least this share of a side
# The tone line through matching quantiles: of the query's luma, those pushed past these levels
# are left out (half clipped); fewer pixels, a narrower range of levels, or quantiles closer
# than this in the catalog picture leave no line (1, 0).
TONE_LINE_KEPT = (12, 235)
TONE_LINE_MIN_PIXELS = 32
TONE_LINE_MIN_RANGE = 30.0
TONE_LINE_MIN_APART = 4.0

# -- verdicts and match percentages (verdicts.py; docs/evaluation.md, "Verdicts, match percentages
# and edits") ---------------------------------------------------------------------------------------

# [low, high) of the match percentage for each verdict (a duplicate can score 100).
BANDS: dict[Verdict, tuple[float, float]] = {
    Verdict.DUPLICATE: (90.0, 100.0),
    Verdict.SIMILAR: (60.0, 90.0),
    Verdict.DIFFERENT: (0.0, 60.0),
}
TOP = 0.1  # a band's score stays this far below the next one: one decimal never reaches it
# `similar`: the aligned structure agrees (colour variants align at 0.95 and above with 0-8
# layout bits off; products without a relative in the catalog reach 0.85 with 12-36 bits off).
SIMILAR_MIN_SIMILARITY = 0.85
SIMILAR_MAX_LAYOUT_OFF = 12
# A candidate without evidence (no views, or not among those verified) is `similar` only when its
# hashes are this close (of 64 bits): a plain pHash-64 that close called no held-out picture a
# duplicate on the benchmark.
SIMILAR_HASH_DISTANCE = 4
HASH_WEIGHT = 0.5  # of the hashes' closeness in the likeness of pictures that are not the same

# The baseline pipeline, PHash64 (core/hashing.py), decides on hash distance alone: <= 4 keeps
# distinct pictures out (0%) but calls 68% of colour variants duplicates; <= 10 (a common choice)
# calls 14% of distinct ones (docs/evaluation.md, "Results").
PHASH_DUPLICATE_MAX = 4
PHASH_SIMILAR_MAX = 12


# -- what a tier and the look-alike check's limits test ---------------------------------------------


class Measured(Protocol):
    """What a tier reads of a candidate's evidence (alignment.Evidence says what each means)."""

    @property
    def similarity(self) -> float: ...
    @property
    def luma_off(self) -> float: ...
    @property
    def colour_off(self) -> float: ...
    @property
    def layout_off(self) -> int: ...
    @property
    def colour_seen(self) -> bool: ...
    @property
    def colour_missing(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When evidence says "the same picture"."""

    min_similarity: float
    max_luma_off: float
    max_colour_off: float
    max_layout_off: int = LAYOUT_BITS
    needs_colour: bool = False  # only when colour could be compared
    max_colour_missing: float = 1.0

    def passes(self, evidence: Measured) -> bool:
        return (
            evidence.similarity >= self.min_similarity
            and evidence.luma_off <= self.max_luma_off
            and evidence.colour_off <= self.max_colour_off
            and evidence.layout_off <= self.max_layout_off
            and evidence.colour_missing <= self.max_colour_missing
            and (evidence.colour_seen or not self.needs_colour)
        )

    def open_on_colour(self, evidence: Measured) -> bool:
        """Whether `evidence` meets every threshold but colour's (colour off, colour missing):
        whether its colour can decide a pass."""
        return (
            evidence.similarity >= self.min_similarity
            and evidence.luma_off <= self.max_luma_off
            and evidence.layout_off <= self.max_layout_off
            and (evidence.colour_seen or not self.needs_colour)
        )


@dataclass(frozen=True, slots=True)
class Tier:
    """Evidence passes a tier when it meets any of its thresholds."""

    options: tuple[Thresholds, ...]

    def __init__(self, *options: Thresholds) -> None:
        object.__setattr__(self, "options", options)

    def passes(self, evidence: Measured) -> bool:
        return any(option.passes(evidence) for option in self.options)

    def open_on_colour(self, evidence: Measured) -> bool:
        return any(option.open_on_colour(evidence) for option in self.options)

    @property
    def max_colour_off(self) -> float:
        return max(option.max_colour_off for option in self.options)


class Seen(Protocol):
    """What the look-alike check's limits read of what it saw (photograph.Detail says what each means)."""

    @property
    def structure(self) -> float: ...
    @property
    def missing(self) -> float: ...
    @property
    def recoloured(self) -> float: ...
    @property
    def overlap(self) -> float: ...
    @property
    def retinted(self) -> float: ...
    @property
    def repainted(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """When a candidate the views pass is also the same picture at a finer look: its structure
    agrees, it has the candidate's detail, and no region of it was recoloured (in luma, in a
    faint tint over a large part, or in a strong one over a small part); or structure and detail
    both only fairly (two weaker signs together refute it)."""

    min_structure: float
    max_missing: float
    max_recoloured: float
    fair_structure: float  # below this structure...
    fair_missing: float  # ...and above this share missing: refuted too
    min_overlap: float = 0.5  # less overlap than this: too little to judge, the views decide
    max_retinted: float = 1.0  # the share off by TINT_SLACK (1: not checked)
    max_repainted: float = 1.0  # the share off by TINT_STRONG (1: not checked)

    def passes(self, detail: Seen) -> bool:
        if detail.overlap < self.min_overlap:
            return True
        return (
            detail.structure >= self.min_structure
            and detail.missing <= self.max_missing
            and detail.recoloured <= self.max_recoloured
            and detail.retinted <= self.max_retinted
            and detail.repainted <= self.max_repainted
            and not (detail.structure < self.fair_structure and detail.missing > self.fair_missing)
        )


# -- the tiers of AlignedDualPHash (judge.py) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """How a pipeline judges its candidates (judge.py): how many are aligned and verified, and
    what each must pass to be a duplicate."""

    screened: int  # the first candidates by index distance, aligned coarsely (cheap)...
    verified: int  # ...and the most alike of them, judged
    close_distance: int  # index distance (of 64 bits) up to which a candidate is `near`
    near: Tier
    far: Tier
    far_looked: Tier  # a far candidate passes this too, when its thumbnail was looked at and agrees
    lookalike: Limits  # the look-alike check, asked of every candidate whose views pass

    def tier(self, distance: int) -> Tier:
        """The tier a candidate at this hash distance must pass."""
        return self.near if distance <= self.close_distance else self.far


ALIGNED_DUAL_PHASH = Policy(
    # Judging the 12 most alike of the first 32 calls as many copies duplicates as judging all 32
    # (0.2 points more than the first 16), for 0.3-0.5 ms more than 16; each 4 more cost ~0.4 ms
    # (docs/evaluation.md, "Experiments, in order": 24i-24j).
    screened=32,
    verified=12,
    close_distance=16,
    # Close hashes: the aligned pictures agree and the query has every colour of the candidate's
    # product (a sibling in another colour can differ by a waistband, a few tenths of a percent
    # of the picture: experiment 24l).
    near=Tier(Thresholds(min_similarity=0.8, max_luma_off=0.08, max_colour_off=0.02, max_colour_missing=0.003)),
    # Far ones (big crops, rotations; another product on the same model can come close): they
    # agree almost everywhere, or are more alike still with the same layout and colours (a
    # grayscale query cannot show that a black shirt is not its red twin).
    far=Tier(
        Thresholds(min_similarity=0.85, max_luma_off=0.01, max_colour_off=0.01),
        Thresholds(min_similarity=0.95, max_luma_off=0.08, max_colour_off=0.01, max_layout_off=6, needs_colour=True),
    ),
    # Resampled 10-15% crops reach correlation 0.94-0.97 with 1-3% of luma off; other pictures
    # that come this close are the look-alikes the check refutes (docs/evaluation.md, "Colour
    # variants: a tint no one edit explains").
    far_looked=Tier(
        Thresholds(min_similarity=0.94, max_luma_off=0.03, max_colour_off=0.015, max_layout_off=10, needs_colour=True)
    ),
    # Structure and missing detail: docs/evaluation.md, "How: a finer look at the candidates the
    # views pass". A tint no one edit explains: faint over a tenth of the picture (copies reach
    # 5.4%, lilac leggings made from purple ones 19%), or strong over half a percent (copies 0.4%,
    # a mint waistband made cyan 0.7%).
    lookalike=Limits(
        min_structure=0.75,
        max_missing=0.12,
        max_recoloured=0.015,
        fair_structure=0.85,
        fair_missing=0.06,
        max_retinted=0.10,
        max_repainted=0.005,
    ),  # fmt: skip
)
